"""The `curate` console script, run as a user runs it (subprocess, real store)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from conftest import REPO, SHARED_DATA
from curate.store import Store
from helpers import SUPPORT_ROWS, write_jsonl, write_pipeline

CURATE = str(Path(sys.executable).with_name("curate"))


def _curate(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CURATE, *args], cwd=cwd, capture_output=True, text=True, check=check, env={"COLUMNS": "200", "PATH": ""}
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "data.jsonl", SUPPORT_ROWS)
    write_pipeline(tmp_path)
    return tmp_path


def test_two_runs_make_two_versions_and_log_shows_lineage(project: Path) -> None:
    assert "committed support@0" in _curate("run", "pipeline.yaml", cwd=project).stdout
    assert "committed support@1" in _curate("run", "pipeline.yaml", cwd=project).stdout
    log = _curate("datasets", "log", "support", cwd=project).stdout
    assert log.index("support@1") < log.index("support@0")
    assert log.count("pipeline: pipeline.yaml") == 2
    assert log.count("input:    data.jsonl") == 2
    assert "exact_duplicate=2" in log


def test_show_counts_splits_labels_and_removed_reasons(project: Path) -> None:
    _curate("run", "pipeline.yaml", cwd=project)
    out = _curate("datasets", "show", "support@0", cwd=project).stdout
    assert "exact_duplicate" in out and "ORDER" in out and "validation" in out


def test_export_writes_the_chosen_split_in_the_chosen_format(project: Path) -> None:
    _curate("run", "pipeline.yaml", cwd=project)
    _curate("datasets", "export", "support@0", "--format", "sharegpt", "--split", "train", "-o", "out.jsonl", cwd=project)
    rows = [json.loads(line) for line in (project / "out.jsonl").read_text().splitlines()]
    assert rows and all(r["conversations"][0]["from"] == "human" for r in rows)


def test_store_option_and_env_select_the_store(project: Path) -> None:
    _curate("run", "pipeline.yaml", "--store", "elsewhere", cwd=project)
    assert (project / "elsewhere" / "support" / "_delta_log").is_dir()
    assert not (project / "datasets").exists()


def test_errors_are_one_clear_message_and_exit_code_1(project: Path) -> None:
    (project / "bad.yaml").write_text("source: {path: data.jsonl}\nstages:\n  - split: {test: 2}\noutput: s\n")
    result = _curate("run", "bad.yaml", cwd=project, check=False)
    assert result.returncode == 1
    assert "bad.yaml, line 3, stages[0].split.test" in result.stderr
    assert "Traceback" not in result.stderr


def test_flagship_pipeline_removes_what_the_sample_injected(tmp_path: Path) -> None:
    out = _curate("run", str(REPO / "pipelines" / "support.yaml"), "--store", str(tmp_path / "st"), cwd=tmp_path).stdout
    assert "committed support@0" in out
    manifest = json.loads((REPO / "pipelines" / "data" / "support_sample.manifest.json").read_text())
    rows = Store(tmp_path / "st").read("support").with_columns(
        line=pl.col("meta").str.json_path_match("$.line").cast(pl.Int64)
    )
    assert rows.height == manifest["rows"]
    removed_by = dict(zip(rows["line"], rows["removed_by"], strict=True))
    lines = manifest["lines"]
    assert all(removed_by[line] == "dedup_exact" for line in lines["exact_dup"])
    near = [removed_by[line] for line in lines["near_dup"]]
    assert near.count("dedup_minhash") >= 0.9 * len(near)
    for kind in ("empty", "placeholder", "refusal", "echo"):
        assert all(removed_by[line] is not None for line in lines[kind]), kind
    if SHARED_DATA.is_dir():  # the benchmark files decontaminate reads
        benchmark_lines = [item["line"] for item in manifest["benchmark_items"]]
        assert all(removed_by[line] in ("decontaminate", "quality") for line in benchmark_lines)
    show = _curate("datasets", "show", "support", "--store", str(tmp_path / "st"), cwd=tmp_path).stdout
    assert re.search(rf"dedup_exact\s*│\s*exact_duplicate\s*│\s*{manifest['counts']['exact_dup']}\b", show)
