"""Markdown and HTML reports of an evaluation: the metrics table and the worst examples.

The HTML is one self-contained file (inline CSS, no scripts, every value escaped), so it
opens from disk and can be attached to a review. Its plots (model vs baseline per metric with
the bootstrap intervals; the run's training and eval loss curves) are inline SVG from
:mod:`curate.plots`.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from curate import plots

from ._loss_history import loss_curves
from .results import EvalResult, MetricResult

__all__ = ["format_interval", "render_html", "render_markdown", "write_report"]


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def format_interval(value: float | None, low: float | None, high: float | None) -> str:
    """``value [low, high]`` with 4 significant digits; ``–`` when there is no value."""
    if value is None:
        return "–"
    return f"{_num(value)} [{_num(low)}, {_num(high)}]"


def _rows(result: EvalResult) -> list[list[str]]:
    rows = []
    for m in result.metrics:
        row = [m.name, format_interval(m.value, m.low, m.high)]
        if result.baseline is not None:
            row += [format_interval(m.baseline, m.baseline_low, m.baseline_high), format_interval(m.diff, m.diff_low, m.diff_high), m.verdict]
        rows.append(row)
    return rows


def _header(result: EvalResult) -> list[str]:
    conf = result.config.get("bootstrap", {}).get("confidence", 0.95)
    cols = ["metric", f"{result.model} [{conf:.0%} CI]"]
    if result.baseline is not None:
        cols += [f"baseline {result.baseline}", "difference", "verdict"]
    return cols


def _setup_lines(result: EvalResult) -> list[tuple[str, str]]:
    lines = [
        ("model", result.model),
        ("dataset", f"{result.dataset} ({result.kind}), split `{result.split}`, {result.n_examples} rows"),
    ]
    if result.baseline:
        lines.append(("baseline", result.baseline))
    if result.created:
        lines.append(("time", result.created))
    return lines


def _example_fields(example: dict[str, Any]) -> list[tuple[str, str]]:
    order = ["prompt", "reference", "prediction", "baseline_prediction", "chosen", "rejected", "label", "predicted_label"]
    out = [(k, str(example[k])) for k in order if example.get(k) not in (None, "")]
    scores = ", ".join(
        f"{k}={_num(v)}" for k, v in example.items() if k not in order and k != "id" and isinstance(v, int | float)
    )
    if scores:
        out.append(("scores", scores))
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: EvalResult, *, worst: int = 50) -> str:
    """The report as Markdown: setup, metrics table, details, notes and the ``worst`` examples."""
    out = [f"# Evaluation of {result.model} on {result.dataset}", ""]
    out += [f"- **{k}**: {v}" for k, v in _setup_lines(result)] + [""]
    header = _header(result)
    out += ["## Metrics", "", "| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in _rows(result)]
    out.append("")
    for title, lines in _details(result):
        out += [f"## {title}", "", *lines, ""]
    if result.notes:
        out += ["## Notes", "", *[f"- {n}" for n in result.notes], ""]
    examples = result.worst(worst)
    if examples:
        out += [f"## {len(examples)} worst examples" + (f" by {result.worst_by}" if result.worst_by else ""), ""]
        for i, ex in enumerate(examples, 1):
            out.append(f"### {i}. `{ex.get('id', '')}`")
            out.append("")
            for k, v in _example_fields(ex):
                quoted = "\n> ".join(v.splitlines() or [""])
                out.append(f"**{k}**\n> {quoted}\n")
    return "\n".join(out).rstrip() + "\n"


def _details(result: EvalResult) -> list[tuple[str, list[str]]]:
    """Extra sections as Markdown lines (the HTML renders the same content from the same data)."""
    sections: list[tuple[str, list[str]]] = []
    cm = result.details.get("confusion_matrix")
    if cm:
        labels = cm["labels"]
        lines = ["rows: true label, columns: predicted label", "", "| | " + " | ".join(map(_md_cell, labels)) + " |"]
        lines.append("|" + "---|" * (len(labels) + 1))
        lines += [f"| {_md_cell(t)} | " + " | ".join(str(c) for c in row) + " |" for t, row in zip(labels, cm["counts"], strict=True)]
        sections.append(("Confusion matrix", lines))
    wr = result.details.get("win_rate")
    if wr:
        r = wr["win_rate"]
        sections.append(
            (
                "Pairwise win rate",
                [
                    f"{result.model} vs {result.baseline}: {format_interval(r['value'], r['low'], r['high'])}; "
                    f"{wr['wins']} wins, {wr['ties']} ties, {wr['losses']} losses "
                    f"({wr['inconsistent_after_swap']} verdicts flipped with the order and count as ties)."
                ],
            )
        )
    fg = result.details.get("forgetting")
    if fg:
        lines = [
            f"**{'REGRESSED' if fg['regressed'] else 'no regression'}** (tolerance {fg['tolerance']}) on "
            f"{fg['n_prompts']} general prompts, {fg['n_references']} with reference answers."
        ]
        if fg.get("perplexity_tuned") is not None:
            d = fg["loss_diff"]
            lines.append(
                f"- reference perplexity: tuned {_num(fg['perplexity_tuned'])} vs base {_num(fg['perplexity_base'])} "
                f"(ratio {_num(fg['perplexity_ratio'])}; loss difference {format_interval(d['value'], d['low'], d['high'])})"
            )
        if fg.get("win_rate"):
            w = fg["win_rate"]
            r = w["win_rate"]
            lines.append(f"- judged win rate of tuned vs base: {format_interval(r['value'], r['low'], r['high'])}")
        sections.append(("Forgetting check", lines))
    return sections


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.better{color:#176b1c;font-weight:600}td.worse{color:#a11;font-weight:600}
.example{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.example pre{white-space:pre-wrap;background:#fafafa;padding:.4rem;margin:.2rem 0 .6rem}
.flag{color:#a11;font-weight:700}.ok{color:#176b1c;font-weight:700}
"""


def _md_inline_to_html(line: str) -> str:
    """Escape, then render the two inline marks ``_details`` uses (``**bold**`` and list dashes)."""
    text = html.escape(line)
    parts = text.split("**")
    text = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    return text


def render_html(result: EvalResult, *, worst: int = 50) -> str:
    """The report as one self-contained HTML page (same content as :func:`render_markdown`)."""
    e = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Evaluation of {e(result.model)} on {e(result.dataset)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Evaluation of {e(result.model)} on {e(result.dataset)}</h1>",
        "<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in _setup_lines(result)) + "</ul>",
        '<h2>Metrics</h2><table id="metrics"><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in _header(result)) + "</tr></thead><tbody>",
    ]
    for m, row in zip(result.metrics, _rows(result), strict=True):
        cells = "".join(
            f'<td class="{e(_verdict_class(m))}">{e(c)}</td>' if i == 4 else f"<td>{e(c)}</td>" for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    figures = _plots(result)
    if figures:
        out.append('<h2>Plots</h2><div id="plots">' + "".join(f"<figure>{svg}</figure>" for svg in figures) + "</div>")
    cm = result.details.get("confusion_matrix")
    for title, lines in _details(result):
        out.append(f"<h2>{e(title)}</h2>")
        if title == "Confusion matrix" and cm:
            out.append('<p>rows: true label, columns: predicted label</p><table id="confusion"><tr><th></th>')
            out.append("".join(f"<th>{e(label)}</th>" for label in cm["labels"]) + "</tr>")
            for t, row in zip(cm["labels"], cm["counts"], strict=True):
                out.append(f"<tr><th>{e(t)}</th>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
            out.append("</table>")
            continue
        items = [ln for ln in lines if ln]
        out.append("<ul>" + "".join(f"<li>{_md_inline_to_html(ln.removeprefix('- '))}</li>" for ln in items) + "</ul>")
    if result.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in result.notes) + "</ul>")
    examples = result.worst(worst)
    if examples:
        by = f" by {e(result.worst_by)}" if result.worst_by else ""
        out.append(f'<h2>{len(examples)} worst examples{by}</h2><div id="worst">')
        for i, ex in enumerate(examples, 1):
            out.append(f'<div class="example"><h3>{i}. <code>{e(str(ex.get("id", "")))}</code></h3>')
            for k, v in _example_fields(ex):
                out.append(f"<b>{e(k)}</b><pre>{e(v)}</pre>")
            out.append("</div>")
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _plots(result: EvalResult) -> list[str]:
    """SVG plots: metrics in [0, 1] side by side, each other metric alone (scales differ), then the loss curves."""
    unit = [m for m in result.metrics if 0 <= m.low <= m.high <= 1]
    groups = [unit] if unit else []
    groups += [[m] for m in result.metrics if m not in unit]
    conf = result.config.get("bootstrap", {}).get("confidence", 0.95)
    out = []
    for metrics in groups:
        series = {result.model: [m.value for m in metrics]}
        errors = {result.model: ([m.low for m in metrics], [m.high for m in metrics])}
        if result.baseline is not None and all(m.baseline is not None for m in metrics):
            series[result.baseline] = [m.baseline for m in metrics]
            errors[result.baseline] = ([_or_nan(m.baseline_low) for m in metrics], [_or_nan(m.baseline_high) for m in metrics])
        title = f"{' / '.join(m.name for m in metrics) if len(metrics) == 1 else 'metrics'} ({conf:.0%} bootstrap interval)"
        out.append(plots.grouped_bars([m.name for m in metrics], series, title=title, errors=errors))
    curves = loss_curves(result.run)
    if curves:
        out.append(plots.line_chart(curves, title="Loss during training", xlabel="step", ylabel="loss"))
    return out


def _or_nan(x: float | None) -> float:
    return math.nan if x is None else x


def _verdict_class(m: MetricResult) -> str:
    return {"better": "better", "worse": "worse"}.get(m.verdict, "")


def write_report(result: EvalResult, out_dir: str | Path, *, stem: str | None = None, worst: int = 50) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.html`` into ``out_dir``; returns both paths.

    ``stem`` defaults to the dataset reference with ``@`` kept (``support@3``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or result.dataset.replace("/", "_")
    md, page = out_dir / f"{stem}.md", out_dir / f"{stem}.html"
    md.write_text(render_markdown(result, worst=worst), encoding="utf-8")
    page.write_text(render_html(result, worst=worst), encoding="utf-8")
    return md, page
