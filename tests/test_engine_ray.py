"""`engine: ray` gives the local engine's result: the same kept rows with their splits, the same
removed rows with their stage and reason, on a local 2-CPU Ray cluster (one per session)."""

from __future__ import annotations

import json
import logging
import shutil
import tracemalloc
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import InputError
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


def test_ray_minhash_over_many_small_blocks_equals_local_for_each_verify_and_keep(ray_cluster, tmp_path: Path) -> None:
    shutil.copytree(REPO / "pipelines" / "data", tmp_path / "data")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(  # 150-row blocks: pairs and clusters cross blocks, signatures compared across them
        "source: {path: data/support_sample.jsonl, format: table, kind: sft, "
        "mapping: {user: instruction, assistant: response, label: category}}\n"
        "stages:\n"
        "  - dedup_minhash: {batch_size: 150, keep: longest, text: user, ngram: 2, threshold: 0.8}\n"
        "  - dedup_minhash: {batch_size: 150, verify: signature, text: user, ngram: 1, threshold: 0.6}\n"
        "  - dedup_minhash: {batch_size: 150, verify: jaccard, keep: longest}\n"
        "output: support\n"
    )
    local, ray, local_stats, ray_stats = _both_engines(pipeline, tmp_path)
    assert [s.rows_removed > 0 for s in local_stats if s.name == "dedup_minhash"] == [True] * 3
    assert local[0].equals(ray[0]) and local[1].equals(ray[1])
    _same_counts(local_stats, ray_stats)


def test_ray_minhash_leaves_the_signatures_on_the_cluster(ray_cluster, tmp_path: Path) -> None:
    from curate.config import SourceConfig
    from curate.engines import LocalEngine
    from curate.engines.ray import RayEngine
    from curate.stages.base import StageContext
    from curate.stages.dedup_minhash import DedupMinhash, DedupMinhashConfig

    source = SourceConfig(path="support_sample.jsonl", format="table", kind="sft",
                          mapping={"user": "instruction", "assistant": "response", "label": "category"})
    rows = LocalEngine().read([source], base_dir=REPO / "pipelines" / "data", store=Store(tmp_path / "store")).valid
    frame = pl.concat([rows] * 10)  # 21,990 rows: each row and its nine copies form a cluster
    stage = DedupMinhash(DedupMinhashConfig(num_perm=256, bands=4, rows=32, batch_size=2_000))
    ctx = StageContext(dataset="t", kind="sft", base_dir=tmp_path, store=None, stage_id="dedup_minhash")
    engine = RayEngine()
    engine.run_stage(stage, frame.head(3_000), ctx)  # imports and worker start-up out of the way
    tracemalloc.start()
    ray, _ = engine.run_stage(stage, frame, ctx)
    numpy_peak = tracemalloc.get_traced_memory()[1]  # numpy arrays count here, polars and Ray buffers do not
    tracemalloc.stop()
    local = stage.apply(frame, ctx)
    assert_frame_equal(ray.kept, local.kept)
    assert_frame_equal(ray.removed, local.removed)
    assert numpy_peak < frame.height * 256 * 4 / 2  # half of all signatures (the old path held them all: 70 MB)


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


# Reading: RayEngine.read (chunks converted in map_batches) gives LocalEngine.read's inputs.


def _read_both(source: dict, base_dir: Path, tmp_path: Path, *, chunk_bytes: int, chunks: int, caplog) -> tuple:
    from curate.config import SourceConfig
    from curate.engines import LocalEngine
    from curate.engines.ray import RayEngine

    sources, store = [SourceConfig(**source)], Store(tmp_path / "store")
    local = LocalEngine().read(sources, base_dir=base_dir, store=store)
    with caplog.at_level(logging.INFO, logger="curate.engines.ray._read"):
        ray = RayEngine(chunk_bytes=chunk_bytes).read(sources, base_dir=base_dir, store=store)
    assert f"read on Ray in {chunks} chunk(s)" in caplog.text
    assert (ray.kind, ray.files, ray.parents) == (local.kind, local.files, local.parents)
    assert_frame_equal(ray.valid, local.valid)
    assert_frame_equal(ray.invalid, local.invalid)
    return local, ray


def _lines(frame: pl.DataFrame) -> list[int]:
    return [json.loads(meta)["line"] for meta in frame["meta"]]


def test_ray_reads_the_flagship_sample_in_many_chunks_as_local_does(ray_cluster, tmp_path: Path, caplog) -> None:
    source = {"path": "data/support_sample.jsonl", "format": "table", "kind": "sft",
              "mapping": {"user": "instruction", "assistant": "response", "label": "category"}}
    local, _ = _read_both(source, REPO / "pipelines", tmp_path, chunk_bytes=100_000, chunks=15, caplog=caplog)
    assert local.valid.height > 1000 and _lines(local.valid) == sorted(_lines(local.valid))
    assert local.files[0]["path"] == "data/support_sample.jsonl" and len(local.files[0]["sha256"]) == 64


def test_ray_reads_a_banking77_csv_table_with_a_mapping_as_local_does(ray_cluster, shared_data: Path, tmp_path: Path, caplog) -> None:
    rows = pl.read_csv(shared_data / "banking77" / "train.csv", infer_schema=False).head(3000)
    rows.head(1700).write_csv(tmp_path / "banking-a.csv")
    rows.tail(1300).write_csv(tmp_path / "banking-b.csv")
    source = {"path": "banking-*.csv", "format": "table", "kind": "sft",
              "mapping": {"user": "text", "assistant": "category", "label": "category"}}
    local, _ = _read_both(source, tmp_path, tmp_path, chunk_bytes=10_000, chunks=2, caplog=caplog)  # a task per CSV file
    assert local.valid.height == 3000 and [f["path"] for f in local.files] == ["banking-a.csv", "banking-b.csv"]


def test_ray_reads_parquet_row_groups_as_local_reads_the_file(ray_cluster, shared_data: Path, tmp_path: Path, caplog) -> None:
    rows = pl.read_csv(shared_data / "banking77" / "train.csv", infer_schema=False).head(2000)
    rows.with_columns(n=pl.int_range(pl.len())).write_parquet(tmp_path / "banking.parquet", row_group_size=300)
    source = {"path": "banking.parquet", "format": "table", "mapping": {"user": "text", "assistant": "category"}}
    local, _ = _read_both(source, tmp_path, tmp_path, chunk_bytes=1, chunks=7, caplog=caplog)  # a chunk per row group
    assert _lines(local.valid) == list(range(1, 2001))


def _chat(user: str, assistant: str | None) -> str:
    turns = [{"role": "user", "content": user}] + ([{"role": "assistant", "content": assistant}] if assistant else [])
    return json.dumps({"messages": turns}, ensure_ascii=False)


def _messages_file(path: Path, *, bad_line: int | None = None) -> Path:
    lines = []
    for i in range(1, 401):
        if i == bad_line:
            lines.append('{"messages": [{"role": "user", "content": "cut off')
        elif i % 37 == 0:
            lines.append("")  # blank lines count as lines
        elif i % 50 == 0:
            lines.append(_chat(f"question {i} with no answer", None))  # invalid: no assistant turn
        else:
            lines.append(_chat(f"question {i} über café" if i % 7 == 0 else f"question {i}", f"answer {i}"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ray_reads_a_multi_chunk_jsonl_with_the_local_invalid_rows_and_line_numbers(ray_cluster, tmp_path: Path, caplog) -> None:
    _messages_file(tmp_path / "chats.jsonl")
    size = (tmp_path / "chats.jsonl").stat().st_size
    local, _ = _read_both({"path": "chats.jsonl"}, tmp_path, tmp_path, chunk_bytes=1000, chunks=-(-size // 1000), caplog=caplog)
    assert local.invalid.height == 8 and local.invalid["reason"].n_unique() == 1
    assert _lines(local.invalid) == [50 * k for k in range(1, 9)]
    assert len(_lines(local.valid)) == 400 - 8 - 10 and 37 not in _lines(local.valid) and 38 in _lines(local.valid)


def test_ray_reading_a_malformed_line_raises_the_local_error(ray_cluster, tmp_path: Path) -> None:
    from curate.config import SourceConfig
    from curate.engines import LocalEngine
    from curate.engines.ray import RayEngine

    _messages_file(tmp_path / "chats.jsonl", bad_line=333)
    sources, store = [SourceConfig(path="chats.jsonl")], Store(tmp_path / "store")
    with pytest.raises(InputError) as local:
        LocalEngine().read(sources, base_dir=tmp_path, store=store)
    assert "chats.jsonl, line 333: not valid JSON" in str(local.value)
    with pytest.raises(InputError) as ray:
        RayEngine(chunk_bytes=1000).read(sources, base_dir=tmp_path, store=store)
    assert str(ray.value) == str(local.value)


def test_ray_reading_a_jsonl_table_checks_its_mapping_over_every_chunk_as_local_does(ray_cluster, tmp_path: Path) -> None:
    from curate.config import SourceConfig
    from curate.engines import LocalEngine
    from curate.engines.ray import RayEngine

    rows = [{"q": f"question {i}", "a": f"answer {i}"} for i in range(200)]
    rows[150]["topic"] = "billing"  # the only line with the mapped label column, in a late chunk
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"q": r["q"], "a": r["a"]}) + "\n" for r in rows))
    store = Store(tmp_path / "store")
    mapping = {"user": "q", "assistant": "a", "label": "topic"}
    one = [SourceConfig(path="a.jsonl", format="table", mapping=mapping)]
    local = LocalEngine().read(one, base_dir=tmp_path, store=store)
    ray = RayEngine(chunk_bytes=500).read(one, base_dir=tmp_path, store=store)
    assert_frame_equal(ray.valid, local.valid)
    both = [SourceConfig(path="*.jsonl", format="table", mapping=mapping)]  # b.jsonl lacks the column everywhere
    with pytest.raises(InputError) as local_error:
        LocalEngine().read(both, base_dir=tmp_path, store=store)
    assert "names the column 'topic', which the file does not have" in str(local_error.value)
    with pytest.raises(InputError) as ray_error:
        RayEngine(chunk_bytes=500).read(both, base_dir=tmp_path, store=store)
    assert str(ray_error.value) == str(local_error.value)


def test_ray_searches_semantic_partitions_in_tasks_with_the_local_result(ray_cluster, shared_data: Path, tmp_path: Path) -> None:
    pl.read_csv(shared_data / "banking77" / "train.csv").head(3000).write_csv(tmp_path / "banking.csv")
    pipeline = tmp_path / "semantic.yaml"
    pipeline.write_text(
        "source: {path: banking.csv, format: table, kind: sft, mapping: {user: text, assistant: category, label: category}}\n"
        "stages:\n"
        "  - dedup_semantic: {text: user, threshold: 0.9, partitions: 8}\n"
        "  - dedup_semantic: {text: user, threshold: 0.8, partitions: 1}\n"
        "output: banking\n"
    )
    local, ray, local_stats, ray_stats = _both_engines(pipeline, tmp_path)
    assert local[1].height > 1000 and set(local[1]["removed_by"]) == {"dedup_semantic", "dedup_semantic#2"}
    assert local[0].equals(ray[0]) and local[1].equals(ray[1])
    _same_counts(local_stats, ray_stats)
    assert [s.extra["partitions"] for s in ray_stats if s.stage.startswith("dedup_semantic")] == [8, 1]


def test_ray_probes_benchmarks_in_many_blocks_and_removes_what_local_removes(ray_cluster, shared_data: Path) -> None:
    from curate import benchmarks
    from curate.engines.ray import RayEngine
    from curate.records import build_frame
    from curate.stages.base import StageContext
    from curate.stages.decontaminate import Decontaminate, DecontaminateConfig
    from curate.stages.split import Split, SplitConfig

    bitext = shared_data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    rows = pl.read_csv(bitext, infer_schema=False, n_rows=2000).select("instruction", "response").rows()
    gsm8k = benchmarks.load_builtin("gsm8k", root=shared_data)["prompt"]
    truthfulqa = benchmarks.load_builtin("truthfulqa", root=shared_data)["prompt"]
    users = [user for user, _ in rows]
    for k in range(10):  # exact copies, one every 150 rows
        users[150 * k] = gsm8k[k]
    for k in range(12):  # one item's n-grams in 12 rows: more than max_train_rows (10) of the whole frame
        users[160 * k + 40] = f"Quick question before I order: {gsm8k[50]}"
    for k in range(8):  # short items inside longer turns: judged on rare words counted over the whole frame
        users[230 * k + 70] = f"My friend asked me this: {truthfulqa[k]} Anyway, how do I cancel my order?"
    records = [{"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]}
               for u, (_, a) in zip(users, rows, strict=True)]
    ctx = StageContext(dataset="t", kind="sft", base_dir=shared_data, store=None, stage_id="decontaminate")
    frame = Split(SplitConfig(test=0.1, validation=0.1, seed=0)).apply(build_frame("sft", records)[0], ctx).kept
    stage = Decontaminate(DecontaminateConfig(against=["gsm8k", "truthfulqa"], benchmarks_dir=str(shared_data),
                                              batch_rows=150))  # 4,000 turns: 27 blocks of 150
    local = stage.apply(frame, ctx)
    ray, _ = RayEngine().run_stage(stage, frame, ctx)
    assert_frame_equal(ray.kept, local.kept)
    assert_frame_equal(ray.removed, local.removed)  # the same ids, reasons and details
    reasons = set(local.removed["reason"])
    assert {"benchmark_exact_match", "benchmark_contains_item", "heldout_exact_match"} <= reasons
    assert local.stats["ignored_frequent_ngrams"] > 0
    assert ray.stats.pop("ray_blocks") == 27
    ray.stats["index"], local.stats["index"] = ray.stats["index"]["entries"], local.stats["index"]["entries"]
    assert ray.stats == local.stats  # frequent n-grams ignored, weak matches, held-out check, per benchmark
