"""Step 7, *gate*: promote the new run only when it fixes failures without losing ground on the held-out split.

Both runs are evaluated on (a) the training version's ``test`` split and (b) a held-out slice of
the labeled failures, with the current run as the baseline, so each headline metric carries the
new run's value, the current run's value and the bootstrap interval of each. The rule:

* (b) improves: the new run's value is above the current run's on the failures slice;
* (a) does not regress beyond its bootstrap interval: the new run's value is not below the lower
  end of the current run's interval on the held-out split.

Without a current run (the loop's first model), the new run is promoted.

A causal LM's ``preference_accuracy`` and ``dpo_margin`` (dpo / kto loops) are *paired* already:
the evaluator scores the new run with the current run as the DPO reference, so each pair's
implicit reward margin says whether the new run moved toward the chosen answer compared with the
current one, and the metric has no separate value for the current run. Its no-change point
(0.5 accuracy, 0 margin) stands in for the current run's value: (b) improves when the new value
is above it, and (a) holds when the upper end of the new value's interval reaches it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.evaluate.results import EvalResult

__all__ = ["PAIRED", "GateDecision", "decide"]

# metrics that compare the new run with the current one by themselves, and their value when nothing changed
PAIRED = {"preference_accuracy": 0.5, "dpo_margin": 0.0}


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
    if m.baseline is None:  # paired (see the module docstring): the no-change point stands for the current run
        same = PAIRED[metric]
        return {"dataset": result.dataset, "split": result.split, "n": m.n, "new": m.value, "new_low": m.low,
                "new_high": m.high, "current": same, "current_low": same, "current_high": same, "paired": True}  # fmt: skip
    return {"dataset": result.dataset, "split": result.split, "n": m.n, "new": m.value, "new_low": m.low,
            "new_high": m.high, "current": m.baseline, "current_low": m.baseline_low, "current_high": m.baseline_high}  # fmt: skip


def _paired(result: EvalResult, metric: str) -> bool:
    """The metric compares with the current run by itself (no baseline value, though a baseline was evaluated)."""
    return result.baseline is not None and metric in PAIRED and result.metric(metric).baseline is None


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
    paired = heldout is not None and _paired(heldout, metric)
    if heldout is None or failures is None or (heldout.metric(metric).baseline is None and not paired):
        return GateDecision(True, ["there is no current run: the first run is promoted"], None, None)
    a, b = _numbers(heldout, metric), _numbers(failures, metric)
    improves = b["new"] > b["current"]
    if paired:
        holds = a["new_high"] >= a["current"]
        now = f"{a['current']:.3f} for no change against the current run"
        held = f"held-out test split ({a['n']} rows): {metric} {a['new']:.3f} [{a['new_low']:.3f}, {a['new_high']:.3f}] vs {now}: "
        held += "not below it" if holds else "regresses below it"
    else:
        holds = a["new"] >= a["current_low"]
        held = (f"held-out test split ({a['n']} rows): {metric} {a['new']:.3f} vs {a['current']:.3f} now (interval "
                f"{a['current_low']:.3f}-{a['current_high']:.3f}): ")  # fmt: skip
        held += "within or above the interval" if holds else "regresses below it"
    now_b = f"{b['current']:.3f} for no change" if paired else f"{b['current']:.3f} now"
    reasons = [
        f"held-out failures ({b['n']} rows): {metric} {b['new']:.3f} vs {now_b}: " + ("improves" if improves else "does not improve"),
        held,
    ]
    return GateDecision(improves and holds, reasons, a, b)
