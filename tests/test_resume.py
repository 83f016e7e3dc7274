"""Per-stage resume: a killed or failed run resumes from the stages it finished.

A real `curate` process (the console entry point, with one extra test stage registered: it
waits on a flag file or fails on request) is killed with SIGKILL while that later stage runs;
`--resume` then reuses the finished stages and commits the same version content as an
uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.stage_cache import cache_dir
from curate.store import Store

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"

# Run as a script: registers stage `gate`, then hands over to curate's own CLI.
RUNNER = '''
import sys, time
from pathlib import Path
import polars as pl
from curate.stages.base import Stage, StageConfig, StageResult
from curate.stages.registry import register

class GateConfig(StageConfig):
    flag: str  # writes FLAG.started, then waits until FLAG exists; FLAG holding "fail" raises

@register
class Gate(Stage):
    name = "gate"
    Config = GateConfig

    def apply(self, frame, ctx):
        flag = Path(self.config.flag)
        Path(f"{flag}.started").write_text("")
        while not flag.exists():
            time.sleep(0.05)
        if flag.read_text() == "fail":
            raise RuntimeError("the gate was told to fail")
        return StageResult.partition(frame, pl.lit(True), reason="never")

from curate.cli import main
sys.argv = ["curate", *sys.argv[1:]]
main()
'''


def _pipeline(tmp_path: Path, *, flag: Path, quality: str = "{}") -> Path:
    sample = (PIPELINES / "data" / "support_sample.jsonl").resolve()
    path = tmp_path / "resume.yaml"
    path.write_text(
        f"""
name: resume
source:
  path: {sample}
  format: table
  kind: sft
  mapping: {{user: instruction, assistant: response, label: category}}
stages:
  - dedup_exact: {{}}
  - dedup_minhash: {{}}
  - quality: {quality}
  - gate: {{flag: {flag}}}
  - split: {{test: 0.1, validation: 0.1, seed: 0}}
output: resumed
""",
        encoding="utf-8",
    )
    return path


def _curate(tmp_path: Path, *args: str) -> subprocess.Popen:
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER, encoding="utf-8")
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, str(runner), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=600)
    return out


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not path.exists():
        assert process.poll() is None, f"curate exited early:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "the gate stage never started"
        time.sleep(0.05)


def _content(store: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = Store(store).read("resumed")
    kept = rows.filter(pl.col("removed_by").is_null()).select("id", "split").sort("id")
    removed = rows.filter(pl.col("removed_by").is_not_null()).select("id", "removed_by", "reason", "detail")
    return kept, removed.sort("id", "removed_by")


def _entries(store: Path) -> list[Path]:
    folder = cache_dir(store)
    return [p for p in folder.iterdir() if not p.name.startswith(".tmp")] if folder.is_dir() else []


def _reused(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("resume: reused stage")]


def test_a_killed_run_resumes_from_its_finished_stages_to_the_same_version(tmp_path):
    flag = tmp_path / "gate"
    pipeline = _pipeline(tmp_path, flag=flag)
    store = tmp_path / "store"

    killed = _curate(tmp_path, "run", str(pipeline), "--store", str(store))
    _wait_for(Path(f"{flag}.started"), killed)
    deadline = time.monotonic() + 120  # the finished stages' entries are written beside the next stage
    while len(_entries(store)) < 3:
        assert time.monotonic() < deadline, "the finished stages were never cached"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert "resumed" not in Store(store).names()
    assert len(_entries(store)) == 3  # dedup_exact, dedup_minhash, quality

    flag.write_text("go")
    resumed = _finish(_curate(tmp_path, "run", str(pipeline), "--store", str(store), "--resume"))
    assert _reused(resumed) == ["dedup_exact", "dedup_minhash", "quality"], resumed
    assert "committed resumed@0" in resumed

    fresh_store = tmp_path / "fresh"
    fresh = _finish(_curate(tmp_path, "run", str(pipeline), "--store", str(fresh_store)))
    assert _reused(fresh) == []
    for got, want in zip(_content(store), _content(fresh_store), strict=True):
        assert_frame_equal(got, want)
    assert _entries(store) == []  # a committed run deletes what it used


def test_resume_reuses_stages_before_a_failure_and_only_with_the_flag(tmp_path):
    flag = tmp_path / "gate"
    flag.write_text("fail")
    pipeline = _pipeline(tmp_path, flag=flag)
    store = tmp_path / "store"

    failed = _curate(tmp_path, "run", str(pipeline), "--store", str(store))
    assert "the gate was told to fail" in _finish(failed)
    assert failed.returncode == 1

    again = _curate(tmp_path, "run", str(pipeline), "--store", str(store))  # no --resume: nothing is read
    assert _reused(_finish(again)) == []

    changed = _pipeline(tmp_path, flag=flag, quality="{mode: flag}")  # quality's config changed
    flag.write_text("go")
    out = _finish(_curate(tmp_path, "run", str(changed), "--store", str(store), "--resume"))
    assert _reused(out) == ["dedup_exact", "dedup_minhash"], out


def test_cache_clear_empties_the_stage_cache(tmp_path):
    flag = tmp_path / "gate"
    flag.write_text("fail")
    store = tmp_path / "store"
    _finish(_curate(tmp_path, "run", str(_pipeline(tmp_path, flag=flag)), "--store", str(store)))
    assert len(list(cache_dir(store).iterdir())) == 3

    cleared = _finish(_curate(tmp_path, "cache", "clear", "--store", str(store)))
    assert "cleared 3 cached stage result(s)" in cleared
    assert list(cache_dir(store).iterdir()) == []
