"""The result of one evaluation: headline metrics with intervals, comparisons, examples; saved as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .bootstrap import Interval

__all__ = ["EvalResult", "MetricResult"]

LOWER_IS_BETTER = frozenset({"loss", "perplexity"})
"""Metrics where a smaller value is better; every other headline metric is higher-is-better."""


@dataclass
class MetricResult:
    """One headline metric of the evaluated model, its baseline's value and the paired difference."""

    name: str
    value: float
    low: float
    high: float
    n: int
    baseline: float | None = None
    baseline_low: float | None = None
    baseline_high: float | None = None
    diff: float | None = None  # model - baseline
    diff_low: float | None = None
    diff_high: float | None = None

    @property
    def higher_is_better(self) -> bool:
        """False for loss and perplexity."""
        return self.name not in LOWER_IS_BETTER

    @property
    def significant(self) -> bool:
        """The paired difference's interval excludes 0."""
        if self.diff_low is None or self.diff_high is None:
            return False
        return self.diff_low > 0 or self.diff_high < 0

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` (interval of the difference excludes 0) or ``no clear difference``."""
        if self.diff is None:
            return ""
        if not self.significant:
            return "no clear difference"
        up = self.diff > 0
        return "better" if up == self.higher_is_better else "worse"

    @classmethod
    def of(cls, name: str, interval: Interval, *, baseline: Interval | None = None, diff: Interval | None = None) -> MetricResult:
        """Build from intervals."""
        return cls(
            name=name,
            value=interval.value,
            low=interval.low,
            high=interval.high,
            n=interval.n,
            baseline=baseline.value if baseline else None,
            baseline_low=baseline.low if baseline else None,
            baseline_high=baseline.high if baseline else None,
            diff=diff.value if diff else None,
            diff_low=diff.low if diff else None,
            diff_high=diff.high if diff else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the derived verdict."""
        return {**asdict(self), "higher_is_better": self.higher_is_better, "verdict": self.verdict}


def _clean(value: Any) -> Any:
    """NaN and infinities become None so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass
class EvalResult:
    """Everything one ``curate eval`` produced.

    ``examples`` holds one dict per scored row (id, prompt, reference, prediction, the
    baseline's prediction, per-example scores); ``worst`` orders them for manual review.
    """

    model: str
    dataset: str
    split: str
    kind: str
    n_examples: int
    baseline: str | None = None
    run: str | None = None
    metrics: list[MetricResult] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # confusion matrix, win-rate counts, forgetting...
    notes: list[str] = field(default_factory=list)  # skipped metrics and why
    examples: list[dict[str, Any]] = field(default_factory=list)
    worst_by: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def metric(self, name: str) -> MetricResult:
        """A headline metric by name."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"no metric {name!r} in this result; it has {[m.name for m in self.metrics]}")

    def worst(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` examples that score worst on ``worst_by`` (highest loss, lowest score)."""
        if not self.worst_by:
            return self.examples[:n]
        key = self.worst_by
        lower_better = key.removeprefix("example_") in LOWER_IS_BETTER or key == "loss"
        scored = [e for e in self.examples if isinstance(e.get(key), int | float) and math.isfinite(e[key])]
        return sorted(scored, key=lambda e: -e[key] if lower_better else e[key])[:n]

    def summary(self) -> dict[str, Any]:
        """The compact form stored in a run's ``manifest.json``: headline metrics, no examples."""
        return _clean(
            {
                "dataset": self.dataset,
                "split": self.split,
                "model": self.model,
                "baseline": self.baseline,
                "n_examples": self.n_examples,
                "metrics": {m.name: m.to_dict() for m in self.metrics},
                "forgetting": self.details.get("forgetting"),
                "created": self.created,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Full JSON-ready form."""
        data = asdict(self)
        data["metrics"] = [m.to_dict() for m in self.metrics]
        return _clean(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        metrics = []
        for m in data.pop("metrics", []):
            m = {k: v for k, v in m.items() if k not in ("higher_is_better", "verdict")}
            metrics.append(MetricResult(**{k: (float("nan") if v is None and k in ("value", "low", "high") else v) for k, v in m.items()}))
        return cls(metrics=metrics, **data)

    def save(self, path: str | Path) -> Path:
        """Write the full result as JSON (parent folders are created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvalResult:
        """Read a result written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
