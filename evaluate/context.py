"""What every evaluator works on: the loaded model(s), the held-out rows, the config and the result being filled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.store import Store

from .bootstrap import bootstrap_ci
from .config import EvaluateConfig
from .models import LoadedModel
from .results import EvalResult, MetricResult

__all__ = ["EvalContext", "IndexStat", "mean_stat", "show_prompt"]

IndexStat = Callable[[np.ndarray], float]
"""A statistic of the rows at the given indices (bootstrap resamples of the held-out rows)."""


def mean_stat(values: list[float]) -> IndexStat:
    """The mean of per-row ``values`` over the resampled rows."""
    arr = np.asarray(values, dtype=float)
    return lambda i: float(arr[i].mean())


def show_prompt(prompt: list[dict[str, Any]]) -> str:
    """A prompt as shown in reports: the text of a single turn, else ``[role] text`` lines."""
    if len(prompt) == 1:
        return prompt[0]["content"]
    return "\n".join(f"[{m['role']}] {m['content']}" for m in prompt)


@dataclass
class EvalContext:
    """One evaluation in progress: evaluators read the rows and models here and add to ``result``."""

    config: EvaluateConfig
    result: EvalResult
    rows: list[dict[str, Any]]  # the held-out split, as dicts
    model: LoadedModel
    base: LoadedModel | None  # the baseline, None when there is none
    store: Store
    runs_root: Path  # where judge / baseline run ids are looked up
    device: str | None

    @property
    def causal(self) -> bool:
        """The evaluated model is a causal LM (it can generate and has a token loss)."""
        return self.model.ref.role == "causal_lm"

    @property
    def base_causal(self) -> bool:
        """There is a baseline and it is a causal LM."""
        return self.base is not None and self.base.ref.role == "causal_lm"

    @property
    def bootstrap(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~.bootstrap.bootstrap_ci` from the config: the same resamples everywhere."""
        b = self.config.bootstrap
        return {"resamples": b.resamples, "confidence": b.confidence, "seed": b.seed}

    def note(self, text: str) -> None:
        """Add a sentence to the result's notes (a skipped metric, a caveat)."""
        self.result.notes.append(text)

    def add(self, name: str, model: IndexStat, base: IndexStat | None = None) -> MetricResult:
        """Add a headline metric: intervals for the model, the baseline and their paired difference."""
        idx = np.arange(len(self.rows))

        def as_int(stat: IndexStat) -> IndexStat:
            return lambda i: stat(i.astype(int))

        mi = bootstrap_ci(idx, statistic=as_int(model), **self.bootstrap)
        if base is None:
            metric = MetricResult.of(name, mi)
        else:
            bi = bootstrap_ci(idx, statistic=as_int(base), **self.bootstrap)
            di = bootstrap_ci(idx, statistic=as_int(lambda i: model(i) - base(i)), **self.bootstrap)
            metric = MetricResult.of(name, mi, baseline=bi, diff=di)
        self.result.metrics.append(metric)
        return metric

    def judge(self) -> Any:
        """The configured judge (reward model or LLM), loaded on the evaluation's device."""
        from .judges import load_judge

        j = self.config.judge
        assert j is not None  # guaranteed by EvaluateConfig's validator when win_rate is asked for
        return load_judge(j, runs_root=self.runs_root, device=self.device, batch_size=self.config.batch_size)
