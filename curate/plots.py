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

__all__ = ["figure", "line_chart", "to_svg"]

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
