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


def _gate_plot(gate: dict[str, Any]) -> str | None:
    """New vs current run on both gate checks with their bootstrap intervals (None before a current run)."""
    from curate.plots import grouped_bars

    checks = [name for name in ("heldout", "failures") if gate.get(name)]
    if not checks:
        return None
    series, errors = {}, {}
    for who in ("new", "current"):
        series[who] = [gate[c][who] for c in checks]
        errors[who] = ([gate[c][f"{who}_low"] for c in checks], [gate[c][f"{who}_high"] for c in checks])
    return grouped_bars(checks, series, errors=errors, title="Gate: new run vs current run", ylabel="headline metric")


def _learning_curve(it: IterationState, gate: dict[str, Any]) -> str | None:
    """The new run's held-out and failure scores over every iteration gated so far, this one included
    (``gate``; its step file is written after the report); None for fewer than two iterations."""
    import json

    from curate.plots import line_chart

    points: dict[str, tuple[list[float], list[float]]] = {"heldout": ([], []), "failures": ([], [])}
    earlier = [p for p in it.folder.parent.iterdir() if p.name.isdigit() and p != it.folder] if it.folder.parent.is_dir() else []
    folders = sorted([*earlier, it.folder], key=lambda p: int(p.name) if p.name.isdigit() else it.number)
    for folder in folders:
        gate_file = folder / "gate.json"
        if folder == it.folder:
            outputs = gate
        elif gate_file.is_file():
            outputs = json.loads(gate_file.read_text(encoding="utf-8")).get("outputs", {})
        else:
            continue
        for check, (xs, ys) in points.items():
            if outputs.get(check):
                xs.append(float(folder.name))
                ys.append(outputs[check]["new"])
    series = {check: xy for check, xy in points.items() if len(xy[0]) >= 2}
    if not series:
        return None
    return line_chart(series, title="New run per iteration", xlabel="iteration", ylabel="headline metric")


def write_report(it: IterationState, gate: dict[str, Any]) -> None:
    """Write ``report.md`` of an iteration from its step records and the gate's outputs."""
    collect, select = it.outputs("collect"), it.outputs("select")
    propose, push, label, merge = it.outputs("propose"), it.outputs("push"), it.outputs("label"), it.outputs("merge")
    counts = select.get("counts", {})
    train = it.outputs("train")
    if "generators" in propose:  # a generative loop
        proposed = (f"- propose: {propose.get('to_label')} pairs to rank (production answer vs "
                    f"{', '.join(f'`{g}`' for g in propose['generators'])}), {propose.get('corrections')} corrections "
                    f"used as labeled rows, not proposed {propose.get('not_proposed') or 'none'}")  # fmt: skip
    else:
        proposed = f"- propose: {propose.get('to_label')} rows to label, {propose.get('corrections')} corrections used as labels"
    trained = f"- train: run `{train.get('run')}`"
    if train.get("resumed"):
        trained += f" (resumed the unfinished run `{train['resumed']}` that an interrupted call left)"
    lines = [
        f"# Loop iteration {it.number}", "", "## Decision", "", *_decision(gate), "", "## Steps", "",
        f"- collect: {collect.get('rows')} new rows -> `{collect.get('feedback')}` "
        f"(from {collect.get('files') or collect.get('dataset')}; ts {collect.get('ts_range')})",
        f"- select (training `{select.get('training')}`, current run `{select.get('current_run')}`): "
        + ", ".join(f"{k} {v}" for k, v in counts.items()),
        proposed,
        f"- push: {push.get('created')} records created in Argilla dataset `{push.get('dataset')}` ({push.get('existing')} already there)",
        f"- label: {label.get('answered')} answered, removed {label.get('removed') or 'none'}",
        f"- merge: {merge.get('labeled_rows')} labeled rows -> `{merge.get('labeled')}`; training version `{merge.get('training')}`",
        trained,
    ]  # fmt: skip
    for name in ("heldout", "failures"):
        numbers = gate.get(name)
        if numbers:
            current = (f"{numbers['current']:.3f} for no change (paired: the current run is the reference)" if numbers.get("paired")
                       else f"current {numbers['current']:.3f} [{numbers['current_low']:.3f}, {numbers['current_high']:.3f}]")  # fmt: skip
            lines.append(f"- gate on {name} ({numbers['dataset']} {numbers['split']}, {numbers['n']} rows): new "
                         f"{numbers['new']:.3f} [{numbers['new_low']:.3f}, {numbers['new_high']:.3f}], {current}")  # fmt: skip
    for name, svg in (("gate.svg", _gate_plot(gate)), ("learning.svg", _learning_curve(it, gate))):
        if svg is not None:
            it.path(name).write_text(svg, encoding="utf-8")
            lines += ["", f"![{name[:-4]}]({name})"]
    it.path("report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
