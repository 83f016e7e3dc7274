"""A Hugging Face dataset card (``README.md``) for one version: YAML front matter and the curation summary."""

from __future__ import annotations

import yaml

from curate.store import SPLITS, Store, VersionInfo

__all__ = ["dataset_card", "size_category"]

_TASKS = {"sft": ["text-generation"], "preference": ["text-generation"], "prompt": ["text-generation"],
          "feedback": ["text-generation"]}  # fmt: skip
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]  # fmt: skip


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for ``rows`` rows (``n<1K``, ``1K<n<10K``, ...)."""
    return next((name for limit, name in _SIZES if rows < limit), "n>1T")


def dataset_card(
    store: Store,
    ref: str,
    *,
    license: str = "other",
    data_files: dict[str, str] | None = None,
) -> str:
    """The dataset card of version ``ref`` as Markdown with YAML front matter.

    Parameters
    ----------
    store
        The dataset store.
    ref
        ``NAME@N`` or ``NAME`` (latest).
    license
        The Hub license id for the front matter; ``other`` when the license is not one of the Hub's.
    data_files
        ``split -> path pattern`` inside the exported folder for ``configs``; ``None`` uses
        ``data/<split>-*.parquet`` for every split with kept rows (the parquet export's layout).

    Examples
    --------
    >>> Path("out/README.md").write_text(dataset_card(Store("datasets"), "support@3", license="cc-by-4.0"))
    """
    info = store.info(ref)
    kept = store.kept(f"{info.name}@{info.version}")
    per_split = dict(kept.group_by("split").len().iter_rows())
    splits = [s for s in SPLITS if per_split.get(s)]
    files = data_files if data_files is not None else {s: f"data/{s}-*.parquet" for s in splits}
    kind = info.lineage.get("kind", "sft")
    front = {
        "license": license,
        "pretty_name": info.name,
        "task_categories": _TASKS.get(kind, ["text-generation"]),
        "size_categories": [size_category(kept.height)],
        "tags": ["curate", kind],
        "configs": [{"config_name": "default", "data_files": [{"split": s, "path": p} for s, p in files.items()]}],
    }
    body = _body(info, per_split, splits)
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n\n" + body


def _body(info: VersionInfo, per_split: dict[str, int], splits: list[str]) -> str:
    lin = info.lineage
    pipe = lin.get("pipeline", {})
    rows = lin.get("rows", {})
    out = [f"# {info.name}@{info.version}", ""]
    out.append(f"A `{lin.get('kind', '?')}` dataset curated with curate {lin.get('curate_version', '')}"
               f" on {info.time.date().isoformat()} by the pipeline `{pipe.get('path', '?')}`"
               f" (sha256 `{str(pipe.get('sha256', ''))[:12]}`).")  # fmt: skip
    out += ["", "## Splits", "", "| split | rows |", "|---|---|"]
    out += [f"| {s} | {per_split[s]} |" for s in splits]
    out += ["", "## Curation", "",
            f"{rows.get('input', '?')} rows read, {rows.get('kept', '?')} kept, {rows.get('removed', '?')} removed.", "",
            "| stage | in | kept | removed | reasons |", "|---|---|---|---|---|"]  # fmt: skip
    for s in info.stages:
        reasons = ", ".join(f"{r} {n}" for r, n in s.removed_by_reason.items())
        out.append(f"| {s.stage} | {s.rows_in} | {s.rows_kept} | {s.rows_removed} | {reasons} |")
    sources = [f"- input `{f['path']}` (sha256 `{f['sha256'][:12]}`)" for f in lin.get("inputs", [])]
    sources += [f"- parent `{p['dataset']}@{p['version']}`" for p in lin.get("parents", [])]
    if sources:
        out += ["", "## Sources", "", *sources]
    return "\n".join(out) + "\n"
