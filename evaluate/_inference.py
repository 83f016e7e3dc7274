"""Run a model for scoring: eval mode and no gradients, then back to how it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def inference(model: Any) -> Iterator[None]:
    """``model.eval()`` under ``torch.no_grad()``; restores the model's training flag afterwards."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
