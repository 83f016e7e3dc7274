"""Streaming reads: ids stay today's content hash, and the batch path equals the row path.

The pinned ids were computed by the row-by-row code before the streaming reader existed;
stored versions, lineage and Argilla records depend on them, so they must never change.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.config import SourceConfig
from curate.formats import read_source
from curate.formats._stream import blocks, plain_sft_block
from curate.formats.reader import read_source_rows
from curate.records import record_id

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
SAMPLE = SourceConfig(
    path="data/support_sample.jsonl",
    format="table",
    kind="sft",
    mapping={"user": "instruction", "assistant": "response", "label": "category"},
)


def test_record_ids_are_pinned_to_the_content_hash():
    unicode_chat = {
        "messages": [
            {"role": "user", "content": "Where is  my order?\u00a0"},
            {"role": "assistant", "content": "Cafe\u0301 ships today."},
        ],
        "label": None,
    }
    assert record_id("sft", unicode_chat) == "848987eba4aeee787fb59b9f9fb6b2cd"
    labelled = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ],
        "label": "greeting",
    }
    assert record_id("sft", labelled) == "a5060b74a95bb20eeeeba9acf62e6855"
    pair = {
        "prompt": [{"role": "user", "content": "2+2?"}],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
        "label": None,
    }
    assert record_id("preference", pair) == "d32def2c96a661d2e78ea1677608218d"


def test_bundled_sample_ids_are_pinned():
    rows = read_source(SAMPLE, base_dir=PIPELINES)
    ids = rows.valid["id"]
    assert (rows.valid.height, rows.invalid.height) == (2199, 0)
    assert [ids[0], ids[1000], ids[-1]] == [
        "33e9205365a28e6e3f60471750b625e3",
        "86294cde56d26e8319e82e05cd9886ce",
        "9137b02c60b5ce2503d75d37cce05b34",
    ]


def _as_messages_jsonl(tmp_path: Path) -> Path:
    table = read_source(SAMPLE, base_dir=PIPELINES).valid
    out = tmp_path / "sample_messages.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for messages in table["messages"].to_list():
            fh.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return out


def _assert_same_as_row_path(path: Path, **options: object) -> None:
    source = SourceConfig(path=path.name, **options)
    fast = read_source(source, base_dir=path.parent, batch_rows=500)
    slow = read_source_rows(source, base_dir=path.parent)
    assert fast.kind == slow.kind
    assert_frame_equal(fast.valid, slow.valid)
    assert_frame_equal(fast.invalid, slow.invalid)


def test_streamed_messages_jsonl_equals_the_row_path_on_the_sample(tmp_path):
    path = _as_messages_jsonl(tmp_path)
    _assert_same_as_row_path(path)
    _assert_same_as_row_path(path, format="messages", kind="sft")
    first_block = next(blocks(path, rows=10_000))
    assert plain_sft_block(first_block, shown=path.name) is not None  # the batch path was taken


UNUSUAL = [
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    {"messages": [{"role": "user", "content": "tab\tand\x1fseparator"}, {"role": "assistant", "content": "ok"}]},
    {"messages": [{"role": "robot", "content": "beep"}, {"role": "assistant", "content": "ok"}]},
    {"messages": [{"role": "user", "content": "only a question"}]},
    {"messages": []},
    {"messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "x"}]},
    {"messages": [{"role": "user", "content": "e\u0301\u2028  spaced\u3000"}, {"role": "assistant", "content": " \u00a0y "}]},
    {"messages": [{"role": "user", "content": "\ud83d\ude00 emoji"}, {"role": "assistant", "content": "ok"}]},
]


@pytest.mark.parametrize("batch", [UNUSUAL[:1] * 3 + UNUSUAL[6:7], UNUSUAL])
def test_streamed_path_equals_the_row_path_on_unusual_rows(tmp_path, batch):
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in batch), encoding="utf-8")
    _assert_same_as_row_path(path)


def test_streamed_path_keeps_physical_line_numbers_across_blank_lines(tmp_path):
    path = tmp_path / "chats.jsonl"
    row = json.dumps(UNUSUAL[0])
    path.write_text(f"{row}\n\n{row}\n  \n{row}", encoding="utf-8")
    _assert_same_as_row_path(path)
    lines = [json.loads(m)["line"] for m in read_source(SourceConfig(path=path.name), base_dir=tmp_path).valid["meta"]]
    assert lines == [1, 3, 5]


def test_streamed_path_reads_every_batch_of_a_long_file(tmp_path):
    path = tmp_path / "chats.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "answer"}]}
        for i in range(1234)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    got = read_source(SourceConfig(path=path.name), base_dir=tmp_path, batch_rows=100)
    assert got.valid.height == 1234
    assert got.valid["meta"].to_list()[-1] == '{"line": 1234}'
    _assert_same_as_row_path(path)


def test_exact_duplicates_found_by_the_vectorised_hash_keep_the_first_row():
    from curate.stages.dedup_exact import DedupExact, DedupExactConfig
    from curate.records import build_frame

    texts = ["Hello  World", "hello world", "other", "HELLO WORLD", "other "]
    records = [
        {"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "a"}], "meta": {}}
        for t in texts
    ]
    frame, _ = build_frame("sft", records)
    frame = frame.with_columns(split=pl.lit(None, pl.String))

    class Ctx:
        kind = "sft"

    result = DedupExact(DedupExactConfig()).apply(frame, Ctx())
    ids = frame["id"].to_list()
    assert result.kept["id"].to_list() == [ids[0], ids[2]]
    assert result.removed["id"].to_list() == [ids[1], ids[3], ids[4]]
    details = [json.loads(d)["duplicate_of"] for d in result.removed["detail"]]
    assert details == [ids[0], ids[0], ids[2]]


def test_a_bad_line_in_a_streamed_block_gets_the_row_paths_file_and_line_error(tmp_path):
    from curate.errors import InputError

    good = json.dumps(UNUSUAL[0])
    raw_tab = good.replace("Hi", "H\ti")  # a raw control character: not valid JSON text
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join([good] * 250 + [raw_tab] + [good] * 10) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"chats.jsonl, line 251: not valid JSON"):
        read_source(SourceConfig(path=path.name), base_dir=tmp_path, batch_rows=100)
