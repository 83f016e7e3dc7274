"""The one plotting module: matplotlib figures rendered offline as inline SVG for every report.

Dataset reports, evaluation reports and loop reports draw through the functions here, so a
plot looks the same everywhere and no report carries its own plotting code. Each function
returns an SVG string (no XML declaration, no external fonts or images) that can be pasted into
an HTML page as it is, or written to a ``.svg`` file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["bar_chart", "figure", "grouped_bars", "histograms", "line_chart", "to_svg"]

WIDTH_IN, HEIGHT_IN = 6.4, 3.6


@contextmanager
def figure(*, width: float = WIDTH_IN, height: float = HEIGHT_IN) -> Iterator[tuple[Any, Any]]:
    """A ``(figure, axes)`` pair on the non-interactive Agg backend, closed on exit."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    try:
        yield fig, ax
    finally:
        plt.close(fig)


def to_svg(fig: Any) -> str:
    """Render ``fig`` as a self-contained SVG string (text kept as text, no XML declaration)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "curate"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def line_chart(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    bands: Mapping[str, Sequence[float]] | None = None,
) -> str:
    """Lines ``name -> (xs, ys)``, optionally with a shaded ±band per line (e.g. one sd over seeds).

    Parameters
    ----------
    series
        One line per name, drawn in insertion order.
    title, xlabel, ylabel
        Labels; empty means none.
    bands
        ``name -> half-widths`` aligned with that line's ``ys``; ``None`` draws no bands.
    """
    with figure() as (fig, ax):
        for name, (xs, ys) in series.items():
            (line,) = ax.plot(list(xs), list(ys), marker="o", markersize=3, label=name)
            if bands and name in bands:
                half = list(bands[name])
                ax.fill_between(
                    list(xs),
                    [y - h for y, h in zip(ys, half, strict=True)],
                    [y + h for y, h in zip(ys, half, strict=True)],
                    color=line.get_color(),
                    alpha=0.2,
                    linewidth=0,
                )
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(frameon=False)
        return to_svg(fig)


def _labels(ax: Any, *, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def bar_chart(
    values: Mapping[str, float],
    *,
    title: str = "",
    xlabel: str = "",
    colors: Mapping[str, str] | None = None,
) -> str:
    """Horizontal bars ``name -> value`` top to bottom in insertion order (a funnel, seconds per stage).

    Parameters
    ----------
    values
        One bar per name; each bar is annotated with its value.
    title, xlabel
        Labels; empty means none.
    colors
        ``name -> matplotlib colour`` for some bars; ``None`` or a missing name uses the default colour.
    """
    names = list(values)
    height = max(HEIGHT_IN * 0.6, 0.3 * len(names) + 1.0)
    with figure(height=height) as (fig, ax):
        ys = range(len(names))
        palette = [(colors or {}).get(n, "C0") for n in names]
        bars = ax.barh(list(ys), [values[n] for n in names], color=palette)
        ax.bar_label(bars, labels=[f"{values[n]:.4g}" for n in names], padding=2, fontsize=8)
        ax.set_yticks(list(ys), names)
        ax.invert_yaxis()
        ax.margins(x=0.15)
        _labels(ax, title=title, xlabel=xlabel, ylabel="")
        return to_svg(fig)


def histograms(
    samples: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    xlabel: str = "",
    bins: int = 30,
    density: bool = True,
) -> str:
    """Overlaid histograms ``name -> values`` on shared bins (e.g. words per turn, kept vs removed).

    Parameters
    ----------
    samples
        One semi-transparent histogram per name; an empty sequence is skipped.
    title, xlabel
        Labels; empty means none.
    bins
        Number of shared bins over the range of all values.
    density
        Scale each histogram to unit area, so groups of different sizes compare; ``False`` draws counts.
    """
    import numpy as np

    present = {name: np.asarray(list(v), dtype=float) for name, v in samples.items() if len(v)}
    with figure() as (fig, ax):
        if present:
            edges = np.histogram_bin_edges(np.concatenate(list(present.values())), bins=bins)
            for name, values in present.items():
                ax.hist(values, bins=edges, alpha=0.5, density=density, label=f"{name} ({len(values)})")
            ax.legend(frameon=False)
        _labels(ax, title=title, xlabel=xlabel, ylabel="share" if density else "rows")
        return to_svg(fig)


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    ylabel: str = "",
    errors: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> str:
    """Bars per group, one bar per series side by side (labels before/after, base vs tuned per metric).

    Parameters
    ----------
    groups
        The x-axis categories, in order.
    series
        ``name -> values`` aligned with ``groups``; a ``nan`` value draws no bar.
    title, ylabel
        Labels; empty means none.
    errors
        ``name -> (lows, highs)`` absolute interval ends aligned with ``groups`` (e.g. a bootstrap
        interval), drawn as error bars; ``None`` draws none.
    """
    import numpy as np

    n = max(len(series), 1)
    width = 0.8 / n
    xs = np.arange(len(groups))
    with figure(width=max(3.5, min(12.0, 0.6 * len(groups) * n + 2.0))) as (fig, ax):
        for i, (name, values) in enumerate(series.items()):
            ys = np.asarray(list(values), dtype=float)
            yerr = None
            if errors and name in errors:
                lows, highs = (np.asarray(list(v), dtype=float) for v in errors[name])
                yerr = np.vstack([np.clip(ys - lows, 0, None), np.clip(highs - ys, 0, None)])
            ax.bar(xs + (i - (n - 1) / 2) * width, ys, width, label=name, yerr=yerr, capsize=3)
        ax.set_xticks(xs, list(groups), rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center")
        _labels(ax, title=title, xlabel="", ylabel=ylabel)
        if len(series) > 1:
            ax.legend(frameon=False)
        return to_svg(fig)
