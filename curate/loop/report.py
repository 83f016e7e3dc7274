"""The iteration's report: ``loops/<name>/<iteration>/report.md``, what each step did and what the gate decided."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.loop.state import IterationState

__all__ = ["write_report"]


def _decision(gate: dict[str, Any]) -> list[str]:
    new, current = gate.get("new_run"), gate.get("current")
    if gate.get("promoted"):
        head = f"**Promoted** `{new}`" + (f" over `{current}`." if current else " (there was no current run).")
    elif new:
        head = f"**Not promoted**: `{new}` stays a candidate; `{current}` keeps serving."
    else:
        head = f"**Not promoted**: no new run; `{current}` keeps serving."
    return [head, "", *[f"- {reason}" for reason in gate.get("reasons", [])]]


def write_report(it: IterationState, gate: dict[str, Any]) -> None:
    """Write ``report.md`` of an iteration from its step records and the gate's outputs."""
    collect, select = it.outputs("collect"), it.outputs("select")
    propose, push, label, merge = it.outputs("propose"), it.outputs("push"), it.outputs("label"), it.outputs("merge")
    counts = select.get("counts", {})
    lines = [
        f"# Loop iteration {it.number}", "", "## Decision", "", *_decision(gate), "", "## Steps", "",
        f"- collect: {collect.get('rows')} new rows -> `{collect.get('feedback')}` "
        f"(from {collect.get('files') or collect.get('dataset')}; ts {collect.get('ts_range')})",
        f"- select (training `{select.get('training')}`, current run `{select.get('current_run')}`): "
        + ", ".join(f"{k} {v}" for k, v in counts.items()),
        f"- propose: {propose.get('to_label')} rows to label, {propose.get('corrections')} corrections used as labels",
        f"- push: {push.get('created')} records created in Argilla dataset `{push.get('dataset')}` ({push.get('existing')} already there)",
        f"- label: {label.get('answered')} answered, removed {label.get('removed') or 'none'}",
        f"- merge: {merge.get('labeled_rows')} labeled rows -> `{merge.get('labeled')}`; training version `{merge.get('training')}`",
        f"- train: run `{it.outputs('train').get('run')}`",
    ]  # fmt: skip
    for name in ("heldout", "failures"):
        numbers = gate.get(name)
        if numbers:
            lines.append(f"- gate on {name} ({numbers['dataset']} {numbers['split']}, {numbers['n']} rows): new "
                         f"{numbers['new']:.3f} [{numbers['new_low']:.3f}, {numbers['new_high']:.3f}], current "
                         f"{numbers['current']:.3f} [{numbers['current_low']:.3f}, {numbers['current_high']:.3f}]")  # fmt: skip
    it.path("report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
