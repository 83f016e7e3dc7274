"""Concurrent commits from real processes: never merged, each caller gets its own version number."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from curate.errors import StoreError
from curate.pipeline import run_pipeline
from curate.records import build_frame
from curate.stats import StageStats
from curate.store import Store
from helpers import SUPPORT_ROWS, write_jsonl, write_pipeline

CONFLICT = "while this run was writing; this run committed nothing. Run it again."


def _frame(writer: int) -> pl.DataFrame:
    records = [
        {
            "messages": [{"role": "user", "content": f"w{writer} q{i}"}, {"role": "assistant", "content": "a"}],
            "label": f"w{writer}",
        }
        for i in range(10 + writer)
    ]
    valid, _ = build_frame("sft", records)
    return valid.with_columns(split=pl.lit("train"))


def _commit(store: Store, name: str, *, writer: int) -> int:
    kept = _frame(writer)
    n = kept.height
    removed = kept.head(0).drop("split").with_columns(
        removed_by=pl.lit(None, pl.String), reason=pl.lit(None, pl.String), detail=pl.lit(None, pl.String)
    )
    stats = [StageStats("convert", "convert", rows_in=n, rows_added=0, rows_kept=n, rows_removed=0)]
    return store.commit(name, kind="sft", kept=kept, removed=removed, stages=stats, lineage={"writer": writer})


def _writer(root: str, writer: int, rounds: int, barrier: Any, results: Any) -> None:
    """One process: each round, wait for every writer, then commit rows tagged with `writer` to `ds{round}`."""
    store = Store(root)
    for round_ in range(rounds):
        barrier.wait()
        try:
            results.put((round_, writer, _commit(store, f"ds{round_}", writer=writer), None))
        except StoreError as exc:
            results.put((round_, writer, None, str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results.put((round_, writer, None, f"{type(exc).__name__}: {exc}"))


def _race(root: Path, *, writers: int, rounds: int) -> list[tuple[int, int, int | None, str | None]]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(writers), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(root), w, rounds, barrier, results)) for w in range(writers)]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in range(writers * rounds)]
    for p in procs:
        p.join(timeout=60)
    return sorted(out)


def _assert_each_version_is_one_writers_commit(store: Store, name: str) -> None:
    for info in store.history(name):
        frame = store.read(f"{name}@{info.version}")
        writer = info.lineage["writer"]
        assert frame.get_column("label").unique().to_list() == [f"w{writer}"], f"{name}@{info.version} merged writers"
        assert frame.height == info.lineage["rows"]["kept"]


def test_concurrent_creates_of_one_dataset_never_merge(store_root: Path) -> None:
    rounds = 8
    results = _race(store_root, writers=2, rounds=rounds)
    store = Store(store_root)
    for round_ in range(rounds):
        got = [r for r in results if r[0] == round_]
        errors = [error for *_, error in got if error is not None]
        lost = f"Another run committed dataset 'ds{round_}' version 0"
        assert all(e.startswith(lost) and CONFLICT in e for e in errors), errors
        committed = sorted(version for _, _, version, _ in got if version is not None)
        assert committed and committed == list(range(len(committed))), got  # a late writer commits the next version
        _assert_each_version_is_one_writers_commit(store, f"ds{round_}")


def test_a_third_concurrent_writer_gets_the_conflict_error_and_merges_nothing(store_root: Path) -> None:
    store = Store(store_root)
    rounds = 4
    for round_ in range(rounds):
        _commit(store, f"ds{round_}", writer=9)
    results = _race(store_root, writers=3, rounds=rounds)
    for round_, _, version, error in results:
        assert version is not None or (CONFLICT in error and f"'ds{round_}'" in error), error
    for round_ in range(rounds):
        _assert_each_version_is_one_writers_commit(store, f"ds{round_}")


def _busy_writer(root: str, writer: int, commits: int, barrier: Any, results: Any) -> None:
    """Commit `commits` times to one dataset as fast as possible, retrying after a lost race."""
    store = Store(root)
    barrier.wait()
    done = 0
    for _ in range(50 * commits):
        try:
            results.put((writer, _commit(store, "ds", writer=writer)))
        except (StoreError, DeltaError):  # lost a race (before the fix: CommitFailedError): try again
            continue
        done += 1
        if done == commits:
            return


def test_commit_returns_the_version_it_wrote_while_others_keep_writing(store_root: Path) -> None:
    store = Store(store_root)
    _commit(store, "ds", writer=9)
    writers, commits = 3, 8
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(writers), ctx.Queue()
    args = [(str(store_root), w, commits, barrier, results) for w in range(writers)]
    procs = [ctx.Process(target=_busy_writer, args=a) for a in args]
    for p in procs:
        p.start()
    returned = [results.get(timeout=120) for _ in range(writers * commits)]
    for p in procs:
        p.join(timeout=60)
    assert sorted(v for _, v in returned) == list(range(1, writers * commits + 1))
    for writer, version in returned:
        assert store.info(f"ds@{version}").lineage["writer"] == writer, f"ds@{version} is not writer {writer}'s"


def _commit_right_after(paths: Any, ready: Any) -> None:
    """For each table path: wait for its next commit, then at once commit an empty version on top of it."""
    while (path := paths.get(timeout=120)) is not None:
        base = DeltaTable(path).version()
        ours, theirs = (Path(path) / "_delta_log" / f"{v:020d}.json" for v in (base + 1, base + 2))
        ready.set()
        while not ours.exists():
            pass
        commit = {"commitInfo": {"timestamp": int(time.time() * 1000), "operation": "WRITE", "other": "yes"}}
        fd = os.open(theirs, os.O_WRONLY | os.O_CREAT | os.O_EXCL)  # put-if-absent, as Delta writers commit
        os.write(fd, json.dumps(commit).encode() + b"\n")
        os.close(fd)


def test_commit_returns_its_own_version_when_another_commit_lands_right_after(store_root: Path) -> None:
    store = Store(store_root)
    ctx = mp.get_context("spawn")
    paths, ready = ctx.Queue(), ctx.Event()
    other = ctx.Process(target=_commit_right_after, args=(paths, ready))
    other.start()
    returned = []
    for trial in range(5):
        _commit(store, f"ds{trial}", writer=9)
        ready.clear()
        paths.put(str(store.path(f"ds{trial}")))
        ready.wait(timeout=120)
        returned.append(_commit(store, f"ds{trial}", writer=1))
    write_jsonl(store_root.parent / "data.jsonl", SUPPORT_ROWS)
    pipeline = write_pipeline(store_root.parent, output="ds0")
    ready.clear()
    paths.put(str(store.path("ds0")))
    ready.wait(timeout=120)
    summary = run_pipeline(pipeline, store_root=store_root)
    paths.put(None)
    other.join(timeout=60)
    assert returned == [1] * 5
    assert [store.latest_version(f"ds{trial}") for trial in range(5)] == [4] + [2] * 4
    assert summary.version == 3  # the run reports (and a `train:` block trains on) its own version
