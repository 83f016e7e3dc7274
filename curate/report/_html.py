"""The page shell every curate HTML report shares: inline CSS, no scripts, fonts or images, text escaped."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["details", "escape", "page", "pre", "section", "table"]

escape = html.escape

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:76rem;color:#222;line-height:1.4;padding:0 1rem}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;margin:0;font-size:.85rem;max-width:36rem}
section{margin:2rem 0}figure{margin:.5rem 0}figure svg{max-width:100%;height:auto}
details{margin:.3rem 0}summary{cursor:pointer}.muted{color:#666}
.added{color:#176b1c}.removed{color:#a11}.moved{color:#8a5a00}
"""


def page(title: str, body: Iterable[str]) -> str:
    """A complete HTML document: ``title`` (escaped here) and ``body`` parts (already HTML)."""
    head = f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
    return "\n".join([head, f"<style>{_CSS}</style></head><body>", f"<h1>{escape(title)}</h1>", *body, "</body></html>"]) + "\n"


def section(title: str, *parts: str, anchor: str = "") -> str:
    """A titled ``<section>``; ``parts`` are HTML (an SVG plot, a table)."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{escape(title)}</h2>" + "".join(parts) + "</section>"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], *, raw: Sequence[int] = ()) -> str:
    """A table; every cell is escaped except the column indices in ``raw`` (cells already HTML).

    A header of empty names draws no header row (a two-column list of facts).
    """
    names = "".join(f"<th>{escape(h)}</th>" for h in header)
    head = f"<thead><tr>{names}</tr></thead>" if any(header) else ""
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if i in raw:
                cells.append(f"<td>{cell}</td>")
            elif isinstance(cell, int | float) and not isinstance(cell, bool):
                cells.append(f'<td class="num">{cell:.4g}</td>' if isinstance(cell, float) else f'<td class="num">{cell}</td>')
            else:
                cells.append(f"<td>{escape(str(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


def details(summary: str, inner: str) -> str:
    """A collapsed ``<details>`` block; ``summary`` is escaped, ``inner`` is HTML."""
    return f"<details><summary>{escape(summary)}</summary>{inner}</details>"


def pre(text: str) -> str:
    """Escaped preformatted text."""
    return f"<pre>{escape(text)}</pre>"
