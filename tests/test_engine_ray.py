"""`engine: ray` gives the local engine's result: the same kept rows with their splits, the same
removed rows with their stage and reason, on a local 2-CPU Ray cluster (one per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.pipeline import run_pipeline
from curate.store import Store

REPO = Path(__file__).resolve().parents[1]


def _outcome(store: Store, ref: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = store.read(ref)
    kept = rows.filter(pl.col("split").is_not_null()).select("id", "split").sort("id", "split")
    removed = rows.filter(pl.col("removed_by").is_not_null()).select("id", "removed_by", "reason", "detail")
    return kept, removed.sort("id", "removed_by", "reason", "detail")


def _both_engines(pipeline: Path, tmp_path: Path) -> tuple[tuple, tuple, list, list]:
    local = run_pipeline(pipeline, store_root=tmp_path / "local", engine="local")
    ray = run_pipeline(pipeline, store_root=tmp_path / "ray", engine="ray")
    a, b = Store(tmp_path / "local"), Store(tmp_path / "ray")
    assert b.info(f"{ray.dataset}@{ray.version}").lineage["engine"] == "ray"
    return _outcome(a, f"{local.dataset}@{local.version}"), _outcome(b, f"{ray.dataset}@{ray.version}"), local.stages, ray.stages


def _same_counts(local: list, ray: list) -> None:
    for x, y in zip(local, ray, strict=True):
        assert (x.stage, x.rows_in, x.rows_kept, x.removed_by_reason) == (y.stage, y.rows_in, y.rows_kept, y.removed_by_reason)


def test_ray_engine_keeps_and_removes_the_same_flagship_rows_as_local(ray_cluster, tmp_path: Path) -> None:
    local, ray, local_stats, ray_stats = _both_engines(REPO / "pipelines" / "support.yaml", tmp_path)
    assert local[0].height > 1000 and local[1].height > 500
    assert local[0].equals(ray[0]) and local[1].equals(ray[1])
    _same_counts(local_stats, ray_stats)
    minhash = next(s for s in ray_stats if s.stage == "dedup_minhash")
    assert minhash.extra["candidate_pairs"] > 0 and set(minhash.extra["seconds"]) == {"signatures", "lsh", "verify", "clusters"}


def test_ray_engine_equals_local_on_a_banking77_slice(ray_cluster, shared_data: Path, tmp_path: Path) -> None:
    pl.read_csv(shared_data / "banking77" / "train.csv").head(3000).write_csv(tmp_path / "banking.csv")
    pipeline = tmp_path / "banking.yaml"
    pipeline.write_text(
        "source: {path: banking.csv, format: table, kind: sft, mapping: {user: text, assistant: category, label: category}}\n"
        "stages:\n"
        "  - dedup_exact: {text: user}\n"
        "  - dedup_minhash: {text: user, ngram: 2, threshold: 0.6, verify: signature}\n"
        "  - quality: {}\n"
        "  - split: {test: 0.1, validation: 0.1, stratify_by: label, seed: 3}\n"
        "  - balance: {by: label, cap: 20}\n"
        "  - decontaminate: {heldout_text: user}\n"
        "output: banking\n"
    )
    local, ray, local_stats, ray_stats = _both_engines(pipeline, tmp_path)
    assert local[1]["removed_by"].n_unique() >= 3
    assert local[0].equals(ray[0]) and local[1].equals(ray[1])
    _same_counts(local_stats, ray_stats)


def test_curate_run_engine_ray_prints_what_local_prints(ray_cluster, tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    shutil.copytree(REPO / "pipelines" / "data", pipelines / "data")
    (pipelines / "p.yaml").write_text(
        "source: {path: data/support_sample.jsonl, format: table, kind: sft, "
        "mapping: {user: instruction, assistant: response, label: category}}\n"
        "stages:\n  - dedup_minhash: {}\n  - quality: {}\noutput: support\n"
    )
    runner = CliRunner()
    outputs = [runner.invoke(app, ["run", str(pipelines / "p.yaml"), "--store", str(tmp_path / e), "--engine", e])
               for e in ("local", "ray")]
    assert [o.exit_code for o in outputs] == [0, 0], outputs[1].output
    lines = [[line.split()[0] for line in o.output.splitlines() if line.strip()[:1].isalnum()] for o in outputs]
    assert lines[0] == lines[1]  # the same table rows and the committed line; no Ray progress or log lines
    assert "committed support@0" in outputs[1].output
