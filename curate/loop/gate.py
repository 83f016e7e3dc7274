"""Step 7, *gate*: promote the new run only when it fixes failures without losing ground on the held-out split.

Both runs are evaluated on (a) the training version's ``test`` split and (b) a held-out slice of
the labeled failures, with the current run as the baseline, so each headline metric carries the
new run's value, the current run's value and the bootstrap interval of each. The rule:

* (b) improves: the new run's value is above the current run's on the failures slice;
* (a) does not regress beyond its bootstrap interval: the new run's value is not below the lower
  end of the current run's interval on the held-out split.

Without a current run (the loop's first model), the new run is promoted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.evaluate.results import EvalResult

__all__ = ["GateDecision", "decide"]


@dataclass(frozen=True)
class GateDecision:
    """Whether the new run is promoted, and why (one sentence per check)."""

    promoted: bool
    reasons: list[str]
    heldout: dict[str, Any] | None
    failures: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _numbers(result: EvalResult, metric: str) -> dict[str, Any]:
    m = result.metric(metric)
    return {"dataset": result.dataset, "split": result.split, "n": m.n, "new": m.value, "new_low": m.low,
            "new_high": m.high, "current": m.baseline, "current_low": m.baseline_low, "current_high": m.baseline_high}  # fmt: skip


def decide(heldout: EvalResult | None, failures: EvalResult | None, *, metric: str) -> GateDecision:
    """The gate's decision from the two evaluations of the new run against the current one.

    Parameters
    ----------
    heldout
        The new run on the version's held-out ``test`` split, with the current run as baseline;
        ``None`` when there is no current run.
    failures
        The same on the held-out slice of labeled failures; ``None`` when there is no current run.
    metric
        The headline metric compared (higher is better, e.g. ``label_accuracy``).
    """
    if heldout is None or failures is None or heldout.metric(metric).baseline is None:
        return GateDecision(True, ["there is no current run: the first run is promoted"], None, None)
    a, b = _numbers(heldout, metric), _numbers(failures, metric)
    improves = b["new"] > b["current"]
    holds = a["new"] >= a["current_low"]
    reasons = [
        f"held-out failures ({b['n']} rows): {metric} {b['new']:.3f} vs {b['current']:.3f} now: "
        + ("improves" if improves else "does not improve"),
        f"held-out test split ({a['n']} rows): {metric} {a['new']:.3f} vs {a['current']:.3f} now (interval "
        f"{a['current_low']:.3f}-{a['current_high']:.3f}): " + ("within or above the interval" if holds else "regresses below it"),
    ]
    return GateDecision(improves and holds, reasons, a, b)
