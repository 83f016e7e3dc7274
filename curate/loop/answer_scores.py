"""How unsure the current causal LM is of each production answer, in [0, 1], for the loop's *select* step.

A generative loop has no class probabilities to read, so it scores the answer that was served:

* by default, the current run's **mean token log-probability** ``lp`` of the answer given the
  prompt (both through the tokenizer's chat template, as the DPO / reward trainers tokenise them):
  uncertainty ``1 - exp(lp)``, one minus the geometric mean of the answer's token probabilities.
  An answer the model would write itself scores near 0; one it finds surprising, near 1.
* with ``select.reward_model``, a **reward run's score** ``r`` of the whole conversation:
  uncertainty ``1 - sigmoid(r)`` (a reward of 0 is 0.5; a well-rewarded answer is near 0).

Both lie in [0, 1], so ``select.min_uncertainty`` keeps one meaning. A row without an answer
(empty ``completion``) is 1.0: nothing was served that the model could vouch for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate.errors import CurateError

__all__ = ["answer_uncertainty", "logprob_uncertainty", "reward_uncertainty"]


def _turns(rows: pl.DataFrame) -> tuple[list[list[dict]], list[list[dict]]]:
    """(prompt, answer) message lists per feedback row; the answer is the completion's last message."""
    prompts = [[dict(m) for m in p or []] for p in rows.get_column("prompt").to_list()]
    answers = [[dict(m) for m in c or []][-1:] for c in rows.get_column("completion").to_list()]
    return prompts, answers


def logprob_uncertainty(rows: pl.DataFrame, *, model: Any, tokenizer: Any, batch_size: int = 8) -> np.ndarray:
    """``1 - exp(mean token log-probability)`` of each row's answer under ``model`` (see the module docstring)."""
    from curate.evaluate.preference import completion_logprobs

    prompts, answers = _turns(rows)
    has = [i for i, a in enumerate(answers) if a and a[0].get("content")]
    out = np.ones(rows.height)
    if has:
        lp = completion_logprobs(model, tokenizer, [prompts[i] for i in has], [answers[i] for i in has],
                                 batch_size=batch_size, mean=True)  # fmt: skip
        out[has] = [1.0 - math.exp(v) if math.isfinite(v) else 1.0 for v in lp]
    return out


def reward_uncertainty(rows: pl.DataFrame, *, model: Any, tokenizer: Any, batch_size: int = 8) -> np.ndarray:
    """``1 - sigmoid(reward)`` of each row's conversation (prompt + answer) under a reward ``model``."""
    from curate.evaluate.preference import reward_scores

    prompts, answers = _turns(rows)
    has = [i for i, a in enumerate(answers) if a and a[0].get("content")]
    out = np.ones(rows.height)
    if has:
        scores = reward_scores(model, tokenizer, [prompts[i] + answers[i] for i in has], batch_size=batch_size)
        out[has] = [1.0 - 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, r)))) for r in scores]
    return out


def answer_uncertainty(
    rows: pl.DataFrame,
    *,
    run: str | Path | None,
    reward_model: str | Path | None = None,
    runs_root: str | Path = "runs",
    device: str | None = None,
) -> np.ndarray | None:
    """Per feedback row, the uncertainty of its production answer in [0, 1].

    Parameters
    ----------
    rows
        ``feedback`` rows (``prompt``, ``completion``).
    run
        The current causal LM (run id, run folder or model folder) whose log-probabilities are read;
        ``None``: no current model.
    reward_model
        A ``reward`` run that scores the answers instead; ``None``: use ``run``.
    runs_root
        Where run ids are looked up.
    device
        Where the model runs; ``None``: CUDA when available.

    Returns
    -------
    An array of ``rows.height`` values, or ``None`` when there is no model to ask (no reward
    model, and ``run`` is ``None`` or not a causal LM).
    """
    from curate.evaluate.models import load_model, resolve_target

    if reward_model is not None:
        ref = resolve_target(reward_model, runs_root=runs_root)
        if ref.role != "reward":
            raise CurateError(
                f"select.reward_model {reward_model} is a {ref.role.replace('_', ' ')}, not a reward run; train one "
                "with method `reward` or remove `reward_model` to use the current run's log-probabilities."
            )
        return reward_uncertainty(rows, **_pair(load_model(ref, device=device)))
    if run is None:
        return None
    ref = resolve_target(run, runs_root=runs_root)
    if ref.role != "causal_lm":
        return None
    return logprob_uncertainty(rows, **_pair(load_model(ref, device=device)))


def _pair(loaded: Any) -> dict[str, Any]:
    return {"model": loaded.model, "tokenizer": loaded.tokenizer}
