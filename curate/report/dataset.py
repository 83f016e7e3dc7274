"""The HTML report of one dataset version: what curation did, as one offline page.

Sections: the funnel of rows per stage and removal reason, label balance, words per turn of
kept vs removed rows, duplicate clusters, decontamination hits, quality rule hits, the lineage
and seconds per stage. Plots are inline SVG from :mod:`curate.plots`; every value taken from
the data is escaped; the page has no scripts, fonts or images to fetch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import polars as pl

from curate import plots
from curate.report._html import details, escape, page, pre, section, table
from curate.report._rows import details_of, short, texts, words_per_turn
from curate.store import SPLITS, Store, VersionInfo

__all__ = ["dataset_report", "write_dataset_report"]

CLUSTERS = 20  # duplicate clusters shown per stage (largest first)
EXAMPLES = 3  # example rows shown per quality reason
HITS = 50  # decontamination hits listed


def dataset_report(store: Store, ref: str) -> str:
    """The report of version ``ref`` (``NAME@N`` or ``NAME`` for the latest) as one HTML page.

    Parameters
    ----------
    store
        The dataset store.
    ref
        The version to report on.

    Raises
    ------
    StoreError
        ``ref`` names no dataset or version in ``store``.
    """
    info = store.info(ref)
    rows = store.read(f"{info.name}@{info.version}")
    kind = info.lineage.get("kind", "sft")
    info_by_row = details_of(rows)
    body = [
        _summary(info, rows),
        _funnel(info),
        _balance(info, rows),
        _lengths(rows, kind),
        _duplicates(rows, kind, info_by_row),
        _decontamination(rows, kind, info_by_row),
        _quality(info, rows, kind, info_by_row),
        _lineage(info),
        _seconds(info),
    ]
    return page(f"{info.name}@{info.version}", [part for part in body if part])


def write_dataset_report(store: Store, ref: str, path: str | Path) -> Path:
    """Write :func:`dataset_report` of ``ref`` to ``path`` (its folder is created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dataset_report(store, ref), encoding="utf-8")
    return path


def _summary(info: VersionInfo, rows: pl.DataFrame) -> str:
    kept = rows.filter(pl.col("split").is_not_null())
    per_split = dict(kept.group_by("split").len().iter_rows())
    facts = [
        ("kind", info.lineage.get("kind", "?")),
        ("committed", info.time.isoformat(timespec="seconds")),
        ("rows", f"{rows.height} in the version: {kept.height} kept, {rows.height - kept.height} removed"),
        ("kept per split", ", ".join(f"{s} {per_split[s]}" for s in SPLITS if s in per_split) or "none"),
    ]
    return section("Summary", table(["", ""], facts), anchor="summary")


def _funnel(info: VersionInfo) -> str:
    stages = info.stages
    if not stages:
        return ""
    remaining = {s.stage: s.rows_kept for s in stages}
    if stages[0].name != "convert":  # convert's kept rows are the rows read
        remaining = {"read": stages[0].rows_in} | remaining
    reasons = [(s.stage, r, n) for s in stages for r, n in s.removed_by_reason.items()]
    removed = {f"{stage}: {reason}": n for stage, reason, n in sorted(reasons, key=lambda x: -x[2])}
    chart = plots.bar_chart(remaining, title="Rows remaining after each stage", xlabel="rows")
    parts = [f"<figure>{chart}</figure>"]
    if removed:
        parts.append(f"<figure>{plots.bar_chart(removed, title='Rows removed per stage and reason', xlabel='rows')}</figure>")
    counts = [(s.stage, s.name, s.rows_in, s.rows_added, s.rows_kept, s.rows_removed,
               ", ".join(f"{r}={n}" for r, n in s.removed_by_reason.items())) for s in stages]  # fmt: skip
    parts.append(table(["stage", "name", "in", "added", "kept", "removed", "reasons"], counts))
    return section("Funnel", *parts, anchor="funnel")


def _balance(info: VersionInfo, rows: pl.DataFrame) -> str:
    if "label" not in rows.columns or rows["label"].is_null().all():
        return ""
    kept = rows.filter(pl.col("split").is_not_null())
    everything = dict(rows.group_by("label").len().iter_rows())
    final = dict(kept.group_by("label").len().iter_rows())
    labels = sorted(everything, key=lambda label: (-everything[label], str(label)))
    names = [str(label) for label in labels]
    overall = {"all rows in the version": [everything[k] for k in labels], "kept": [final.get(k, 0) for k in labels]}
    parts = [f"<figure>{plots.grouped_bars(names, overall, title='Rows per label', ylabel='rows')}</figure>"]
    for s in info.stages:
        before, after = s.extra.get("before"), s.extra.get("after")
        if s.name == "balance" and isinstance(before, dict) and isinstance(after, dict):
            keys = sorted(before, key=lambda k: -before[k])
            series = {"before": [before[k] for k in keys], "after": [after.get(k, 0) for k in keys]}
            title = f"{s.stage}: rows per {s.extra.get('by', 'label')} before and after"
            parts.append(f"<figure>{plots.grouped_bars(keys, series, title=title, ylabel='rows')}</figure>")
        added = s.extra.get("added_per_label")
        if s.name == "augment" and added:
            title = f"{s.stage}: accepted new rows per label"
            parts.append(f"<figure>{plots.bar_chart({str(k): v for k, v in added.items()}, title=title)}</figure>")
    by_split = kept.group_by("label", "split").len()
    cells = {(str(label), split): n for label, split, n in by_split.iter_rows()}
    present = [s for s in SPLITS if any(k[1] == s for k in cells)]
    parts.append(table(["label", *present], [[n, *(cells.get((n, s), 0) for s in present)] for n in names]))
    return section("Label balance", *parts, anchor="labels")


def _lengths(rows: pl.DataFrame, kind: str) -> str:
    words = rows.with_columns(words_per_turn(rows, kind))
    kept = words.filter(pl.col("split").is_not_null())["words_per_turn"]
    removed = words.filter(pl.col("split").is_null())["words_per_turn"]
    chart = plots.histograms({"kept": kept.to_list(), "removed": removed.to_list()},
                             title="Words per turn", xlabel="words per message (mean over the row's messages)")  # fmt: skip
    per_stage = (
        words.with_columns(pl.col("removed_by").fill_null("(kept)"))
        .group_by("removed_by")
        .agg(rows=pl.len(), median=pl.col("words_per_turn").median(), p90=pl.col("words_per_turn").quantile(0.9))
        .sort("rows", descending=True)
    )
    return section("Lengths", f"<figure>{chart}</figure>",
                   table(["removed by", "rows", "median words/turn", "p90"], per_stage.iter_rows()), anchor="lengths")  # fmt: skip


def _duplicates(rows: pl.DataFrame, kind: str, info: list[dict[str, Any]]) -> str:
    members: dict[tuple[str, str], list[int]] = defaultdict(list)  # (stage, kept id) -> removed row indices
    for i, (d, stage) in enumerate(zip(info, rows["removed_by"].to_list(), strict=True)):
        if stage and d.get("duplicate_of"):
            members[(stage, str(d["duplicate_of"]))].append(i)
    if not members:
        return ""
    text = texts(rows, kind)
    stages = rows["removed_by"].to_list()
    by_id: dict[str, list[int]] = defaultdict(list)
    for j, row_id in enumerate(rows["id"].to_list()):
        by_id[row_id].append(j)
    parts = []
    for stage in dict.fromkeys(s for s, _ in members):
        clusters = sorted(((kid, idx) for (s, kid), idx in members.items() if s == stage), key=lambda c: -len(c[1]))
        removed = sum(len(idx) for _, idx in clusters)
        cells = []
        for kept_id, idx in clusters[:CLUSTERS]:
            # Exact duplicates share the id: the representative is the row with it that this stage did not remove.
            rep = next((j for j in by_id.get(kept_id, []) if stages[j] != stage), None)
            dupes = "".join(f"<p><b>{_similarity(info[j])}</b></p>{pre(short(text[j]))}" for j in idx[:EXAMPLES])
            more = f'<p class="muted">and {len(idx) - EXAMPLES} more</p>' if len(idx) > EXAMPLES else ""
            missing = f'<p class="muted">{escape(kept_id)} (not in the version)</p>'
            kept_cell = pre(short(text[rep])) if rep is not None else missing
            cells.append([len(idx), kept_cell, dupes + more])
        note = f"<p>{removed} rows removed in {len(clusters)} clusters; the {min(CLUSTERS, len(clusters))} largest:</p>"
        header = ["removed", "kept representative", "removed rows (similarity)"]
        parts.append(details(f"{stage}: {len(clusters)} clusters", note + table(header, cells, raw=(1, 2))))
    return section("Duplicate clusters", *parts, anchor="duplicates")


def _similarity(detail: dict[str, Any]) -> str:
    sim = detail.get("similarity")
    return f"similarity {sim:.3f}" if isinstance(sim, int | float) else "identical after normalising"


def _decontamination(rows: pl.DataFrame, kind: str, info: list[dict[str, Any]]) -> str:
    hits = [i for i, d in enumerate(info) if "benchmark" in d or "heldout_id" in d]
    if not hits:
        return ""
    text = texts(rows, kind)
    reasons = rows["reason"].to_list()
    per_source = Counter(info[i].get("benchmark") or f"held-out {info[i].get('split', '')}".strip() for i in hits)
    cells = []
    for i in hits[:HITS]:
        d = info[i]
        where = d.get("benchmark") or f"held-out {d.get('split', '')}".strip()
        item = d.get("item_id") or d.get("heldout_id") or ""
        cells.append([where, item, reasons[i] or "", d.get("ngram", ""), short(text[i])])
    chart = plots.bar_chart(dict(per_source.most_common()), title="Rows removed per benchmark", xlabel="rows")
    shown = f"<p>{len(hits)} hits; the first {min(HITS, len(hits))}:</p>"
    return section("Decontamination", f"<figure>{chart}</figure>", shown,
                   table(["benchmark", "item", "reason", "matched n-gram", "row"], cells), anchor="decontamination")  # fmt: skip


def _quality(info: VersionInfo, rows: pl.DataFrame, kind: str, details_: list[dict[str, Any]]) -> str:
    stages = [s for s in info.stages if s.name == "quality"]
    if not stages:
        return ""
    text = texts(rows, kind)
    removed_by, reasons = rows["removed_by"].to_list(), rows["reason"].to_list()
    parts = []
    for s in stages:
        flagged = s.extra.get("flagged_per_rule") or s.removed_by_reason
        if flagged:
            parts.append(f"<figure>{plots.bar_chart(dict(flagged), title=f'{s.stage}: rows flagged per rule')}</figure>")
        examples: dict[str, list[int]] = defaultdict(list)
        for i, (stage, reason) in enumerate(zip(removed_by, reasons, strict=True)):
            if stage == s.stage and len(examples[reason]) < EXAMPLES:
                examples[reason].append(i)
        cells = [[reason, s.removed_by_reason.get(reason, 0), str(details_[i].get("value", "")), short(text[i])]
                 for reason, idx in examples.items() for i in idx]  # fmt: skip
        parts.append(table(["reason", "rows", "value", "example"], cells))
    return section("Quality rule hits", *parts, anchor="quality")


def _lineage(info: VersionInfo) -> str:
    lin = info.lineage
    pipe = lin.get("pipeline", {})
    facts = [("pipeline", f"{pipe.get('path', '')} ({pipe.get('name', '')})"), ("pipeline sha256", pipe.get("sha256", "")),
             ("curate", lin.get("curate_version", "")), ("engine", lin.get("engine", ""))]  # fmt: skip
    facts += [("parent", f"{p['dataset']}@{p['version']} ({p.get('rows')} rows)") for p in lin.get("parents", [])]
    facts += [("input", f"{f['path']} (sha256 {f['sha256']})") for f in lin.get("inputs", [])]
    facts += [("kind change", f"{c['from']} -> {c['to']} (stage {c['stage']})") for c in lin.get("kind_changes", [])]
    return section("Lineage", table(["", ""], facts), anchor="lineage")


def _seconds(info: VersionInfo) -> str:
    seconds = {s.stage: round(s.seconds, 3) for s in info.stages}
    if not seconds:
        return ""
    total = info.lineage.get("time", {})
    note = f"<p>whole run: {escape(str(total))}</p>" if total else ""
    chart = plots.bar_chart(seconds, title="Seconds per stage", xlabel="s")
    return section("Seconds per stage", f"<figure>{chart}</figure>", note, anchor="seconds")
