"""``curate datasets diff A B``: rows added, removed and moved between splits from version A to B, by content id."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from curate.report._html import page, section, table
from curate.store import Store

__all__ = ["DatasetDiff", "RowChange", "diff_versions", "render_diff_html", "render_diff_text"]


@dataclass(frozen=True)
class RowChange:
    """One content id whose status differs between A and B.

    ``split_a`` / ``split_b`` are ``None`` where the row is not kept; ``stage`` / ``reason`` say
    where B removed it (``None`` when B keeps it, ``"absent"`` when B never read it).
    """

    id: str
    split_a: str | None
    split_b: str | None
    stage: str | None
    reason: str | None


@dataclass
class DatasetDiff:
    """Kept rows added, removed and moved between splits from version ``a`` to version ``b``."""

    a: str
    b: str
    added: list[RowChange] = field(default_factory=list)
    removed: list[RowChange] = field(default_factory=list)
    moved: list[RowChange] = field(default_factory=list)


def _status(store: Store, ref: str) -> pl.DataFrame:
    """One row per content id: its split when a copy is kept, else the stage and reason of the copy removed last.

    Exact duplicates share an id; the copy that got furthest through the pipeline speaks for it.
    """
    order = {s.stage: i for i, s in enumerate(store.info(ref).stages)}
    rows = store.read(ref).with_columns(
        __reached=pl.when(pl.col("split").is_not_null())
        .then(len(order))
        .otherwise(pl.col("removed_by").replace_strict(order, default=-1, return_dtype=pl.Int64))
    )
    return (
        rows.sort("__reached", descending=True, maintain_order=True)
        .group_by("id", maintain_order=True)
        .agg(pl.col("split").first(), pl.col("removed_by").first(), pl.col("reason").first())
    )


def diff_versions(store: Store, a: str, b: str) -> DatasetDiff:
    """Compare two versions (``NAME@N``, possibly of different datasets) row by row on the content ``id``.

    Parameters
    ----------
    store
        The dataset store holding both.
    a, b
        The old and the new version.

    Returns
    -------
    ``added``: kept in B, not kept in A (absent or removed there); ``removed``: kept in A, not
    kept in B, with B's stage and reason; ``moved``: kept in both, in different splits. Each
    list is sorted by stage, reason and id.
    """
    name_a, version_a = store.resolve(a)
    name_b, version_b = store.resolve(b)
    ref_a, ref_b = f"{name_a}@{version_a}", f"{name_b}@{version_b}"
    joined = _status(store, ref_a).join(_status(store, ref_b), on="id", how="full", coalesce=True, suffix="_b")
    columns = joined.select("id", "split", "split_b", "removed_by_b", "reason_b")
    changes = [
        RowChange(id=i, split_a=sa, split_b=sb, stage=None if sb else (stage or "absent"),
                  reason=None if sb else (reason or "absent"))
        for i, sa, sb, stage, reason in columns.iter_rows()
        if sa != sb
    ]  # fmt: skip
    key = lambda c: (c.stage or "", c.reason or "", c.id)  # noqa: E731
    return DatasetDiff(
        a=ref_a,
        b=ref_b,
        added=sorted((c for c in changes if c.split_a is None), key=key),
        removed=sorted((c for c in changes if c.split_b is None), key=key),
        moved=sorted((c for c in changes if c.split_a and c.split_b), key=lambda c: (c.split_a, c.split_b, c.id)),
    )


def _counts(diff: DatasetDiff) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for c in diff.removed:
        out[(c.stage or "", c.reason or "")] = out.get((c.stage or "", c.reason or ""), 0) + 1
    return out


def render_diff_text(diff: DatasetDiff, *, limit: int | None = 50) -> str:
    """Plain text: the counts, removed rows per stage and reason, then up to ``limit`` rows per list (``None``: all)."""
    out = [f"{diff.a} -> {diff.b}: {len(diff.added)} added, {len(diff.removed)} removed, {len(diff.moved)} moved"]
    for (stage, reason), n in sorted(_counts(diff).items(), key=lambda x: -x[1]):
        out.append(f"  removed by {stage}: {reason} {n}")
    for title, changes in (("added", diff.added), ("removed", diff.removed), ("moved", diff.moved)):
        shown = changes if limit is None else changes[:limit]
        if shown:
            out.append(f"{title}:" + (f" (first {len(shown)} of {len(changes)})" if len(shown) < len(changes) else ""))
        out += [f"  {c.id}  {_where(c)}" for c in shown]
    return "\n".join(out) + "\n"


def _where(c: RowChange) -> str:
    if c.split_a and c.split_b:
        return f"{c.split_a} -> {c.split_b}"
    if c.split_b:
        return f"kept in {c.split_b}"
    return f"{c.split_a}; removed by {c.stage}: {c.reason}"


def render_diff_html(diff: DatasetDiff) -> str:
    """The diff as one self-contained HTML page (every id, split, stage and reason escaped)."""
    counts = [("added", len(diff.added)), ("removed", len(diff.removed)), ("moved", len(diff.moved))]
    reasons = [(s, r, n) for (s, r), n in sorted(_counts(diff).items(), key=lambda x: -x[1])]
    added = [(c.id, c.split_a or "–", c.split_b) for c in diff.added]
    removed = [(c.id, c.split_a, c.stage, c.reason) for c in diff.removed]
    moved = [(c.id, c.split_a, c.split_b) for c in diff.moved]
    body = [
        section("Summary", table(["", "rows"], counts), table(["stage", "reason", "rows"], reasons), anchor="summary"),
        section("Added", table(["id", "split in A", "split in B"], added), anchor="added"),
        section("Removed", table(["id", "split in A", "stage in B", "reason in B"], removed), anchor="removed"),
        section("Moved", table(["id", "split in A", "split in B"], moved), anchor="moved"),
    ]
    return page(f"{diff.a} -> {diff.b}", body)
