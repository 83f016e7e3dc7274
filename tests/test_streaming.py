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
from curate.errors import InputError
from curate.formats import read_source, resolve_source
from curate.formats._batch import JsonFacts, TypedFacts, parse_jsonl
from curate.formats._part import _batch
from curate.formats.parts import TABLES, container_of, table_batches
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


def _outcome(read, source: SourceConfig, base_dir: Path, **options: object):  # noqa: ANN001, ANN202
    """What a read gives: its kind and frames, or the message of the error it raises."""
    try:
        got = read(source, base_dir=base_dir, **options)
    except InputError as exc:
        return str(exc)
    return got.kind, got.valid, got.invalid


def _assert_same_as_row_path(path: Path, *, batch_rows: int = 500, **options: object) -> None:
    source = SourceConfig(path=path.name, **options)
    fast = _outcome(read_source, source, path.parent, batch_rows=batch_rows)
    slow = _outcome(read_source_rows, source, path.parent)
    if isinstance(slow, str) or isinstance(fast, str):
        assert fast == slow
        return
    assert fast[0] == slow[0]
    assert_frame_equal(fast[1], slow[1])
    assert_frame_equal(fast[2], slow[2])


def _takes_batch_path(path: Path, source: SourceConfig, *, rows: int = 10_000) -> bool:
    """Whether the file's first block or batch converts on the batch path (not row by row)."""
    resolved = resolve_source(source, path=path, shown=path.name)
    if container_of(path)[0] in TABLES:
        first, frame = next(table_batches(path, shown=path.name, rows=rows))
        facts, numbers = TypedFacts(), list(range(first, first + frame.height))
    else:
        data = b"".join(path.open("rb").readlines()[:rows])
        frame, numbers = parse_jsonl(data, first_line=1)
        facts = JsonFacts(data)
    return _batch(frame, source=resolved, shown=path.name, numbers=numbers, facts=facts) is not None


def test_streamed_messages_jsonl_equals_the_row_path_on_the_sample(tmp_path):
    path = _as_messages_jsonl(tmp_path)
    _assert_same_as_row_path(path)
    _assert_same_as_row_path(path, format="messages", kind="sft")
    assert _takes_batch_path(path, SourceConfig(path=path.name))


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
    good = json.dumps(UNUSUAL[0])
    raw_tab = good.replace("Hi", "H\ti")  # a raw control character: not valid JSON text
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join([good] * 250 + [raw_tab] + [good] * 10) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"chats.jsonl, line 251: not valid JSON"):
        read_source(SourceConfig(path=path.name), base_dir=tmp_path, batch_rows=100)


# Plain rows of every format: each block of them takes the batch path. Their ids were computed
# by the row path before any batch path existed (tests/test_streaming.py history): they must not change.
_U, _A = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}
_TABLE = {"user": "q", "assistant": "a", "label": "cat"}
PLAIN = {
    "alpaca": [
        {"instruction": "Translate", "input": "chat", "output": "cat", "system": "Be brief.", "label": "fr", "source_id": 7},
        {"instruction": "R\u00e9sum\u00e9  the text\n", "input": "", "output": "Done.", "system": "", "label": None, "source_id": 8},
    ],
    "sharegpt": [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "system": "S", "tools": "[]"},
        {"conversations": [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": '{"name": "w"}'},
                           {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}],
         "system": "", "tools": "[{}]"},
    ],
    "sharegpt_preference": [
        {"conversations": [{"from": "human", "value": "2+2?"}], "chosen": {"from": "gpt", "value": "4"},
         "rejected": {"from": "gpt", "value": "5"}},
        {"conversations": [{"from": "system", "value": "Math."}, {"from": "human", "value": "3+3?"}],
         "chosen": {"from": "gpt", "value": "6"}, "rejected": {"from": "gpt", "value": "7"}},
    ],
    "messages": [
        {"messages": [_U, _A], "label": "greeting", "origin": "web"},
        {"messages": [{"role": "system", "content": "Be kind."}, _U, _A, {"role": "user", "content": "Bye"},
                      {"role": "assistant", "content": "Bye!"}], "label": None, "origin": "app"},
    ],
    "preference": [
        {"prompt": [_U], "chosen": [_A], "rejected": [{"role": "assistant", "content": "Go away"}], "margin": 1.5, "id": "p1"},
        {"prompt": [{"role": "system", "content": "Kind."}, _U], "chosen": [_A], "rejected": [_A, _A], "margin": None, "id": "p2"},
    ],
    "prompt": [
        {"prompt": [_U], "label": "greeting"},
        {"prompt": [{"role": "system", "content": "Kind."}, {"role": "user", "content": "Caf\u00e9?"}], "label": None},
    ],
    "feedback": [
        {"prompt": [_U], "completion": "Hello!", "feedback": "up", "model": "support-lora", "ts": "2026-12-02T06:00:00Z",
         "request_id": "r1"},
        {"prompt": [{"role": "system", "content": "Short."}, _U], "completion": "Hi.", "feedback": None, "model": "base",
         "ts": None, "request_id": "r2"},
    ],
    "kto": [
        {"messages": [_U, _A], "label": True},
        {"messages": [_U, _A, {"role": "user", "content": "More?"}, {"role": "assistant", "content": "No."}], "label": False},
    ],
    "hh_rlhf": [
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away"},
        {"chosen": "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant:  D  ",
         "rejected": "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant: E"},
    ],
    "table": [
        {"q": "Where is my order?", "a": "On its way.", "cat": "ORDER", "flags": "B"},
        {"q": "Cancel it", "a": "Done.", "cat": "CANCEL", "flags": "BL"},
    ],
}
PINNED = {
    "alpaca": ["e61f6019d77746e3a7d9482ccf5a93ed", "93313ecb0f3bf1b604442922e086e2fc"],
    "sharegpt": ["6b859ca97b44940fd0dc78a998405e79", "150c0d9d5ea01b1b955e8efb83a2df17"],
    "sharegpt_preference": ["d32def2c96a661d2e78ea1677608218d", "19d0adc1af7525bfe1715c026fbd484b"],
    "messages": ["baf464170c97152561e1f38e5aa3ac92", "fa2fe952960e29b8c7b3066f7a3e58c8"],
    "preference": ["c81bfbbb6960e317531a596822a56199", "5fa00495814333267e8811fff3902a3e"],
    "prompt": ["4447f863c71c68ce53029b8017da5ed4", "848442650c0197de170f828603e20dc5"],
    "feedback": ["6cb0ecd61b7f858a6d498db0d50be4a7", "17ed6cea24fe905784393df86ca96d06"],
    "kto": ["b5cc716ffc2c1c0aced20ff67e67d4e9", "4ed2126562c4ccf4e7e8418332b5a2c7"],
    "hh_rlhf": ["c81bfbbb6960e317531a596822a56199", "861867edeb4cded0f0443bdf74ae5ab3"],
    "table": ["70caf75da6d2625de83c4f661b599ac7", "d2d66ed74af06440a49d4c5e0ad131e4"],
}


def _options(format: str) -> dict:
    if format == "table":
        return {"format": "table", "mapping": _TABLE}
    return {"format": "messages" if format in ("feedback", "preference", "prompt") else format}


def _write(path: Path, rows: list) -> Path:
    """JSONL of ``rows``; a row given as bytes is written as that raw line."""
    lines = [row if isinstance(row, bytes) else json.dumps(row).encode() for row in rows]
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


@pytest.mark.parametrize("format", sorted(PLAIN))
def test_plain_rows_of_every_format_take_the_batch_path_with_pinned_ids(tmp_path, format):
    path = _write(tmp_path / "rows.jsonl", PLAIN[format] * 3)
    source = SourceConfig(path=path.name, **_options(format))
    assert _takes_batch_path(path, source)
    _assert_same_as_row_path(path, batch_rows=4, **_options(format))
    assert read_source(source, base_dir=tmp_path).valid["id"].to_list()[:2] == PINNED[format]


# Rows the batch path must hand to the row path (or handle exactly as it does), per format.
UNUSUAL_ROWS = {
    "alpaca": [
        {"instruction": 5, "input": "", "output": "x", "system": "", "label": None, "source_id": 1},
        {"instruction": "q", "input": "", "system": "", "label": None, "source_id": 1},
        {"instruction": None, "input": "only input", "output": "x", "system": "", "label": None, "source_id": 1},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": None, "source_id": 1, "history": [["h", "i"]]},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": None, "source_id": 1, "history": "oops"},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": True, "source_id": 1},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": 2.5, "source_id": 1},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": None, "source_id": 1.5},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": None, "source_id": 1, "tags": ["x"]},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": None, "source_id": 1, "line": 99},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": None},
        {"instruction": "q", "input": "", "output": "a", "system": "", "label": None, "source_id": None},
        {"instruction": "e\u0301\u2028  spaced\u3000", "input": "\x1f", "output": " \u00a0y ", "system": "",
         "label": "\u00e9", "source_id": 1},
        b'{"instruction": "q", "input": "", "output": "a", "output": "b", "system": "", "label": null, "source_id": 1}',
        b'{"instruction": "\\ud83d\\ude00 \\u00e9", "input": "", "output": "a", "system": "", "label": null, "source_id": 1}',
        b'{"instruction": "\\ud800 lone", "input": "", "output": "a", "system": "", "label": null, "source_id": 1}',
        b'{"instruction": "q", "input": "", "output": "a", "system": "", "label": null, "source_id": 1',
        b"   ",
    ],
    "sharegpt": [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "x"}], "system": "", "tools": "[]"},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "x", "weight": 0}], "system": "",
         "tools": "[]"},
        {"conversations": [{"from": "human", "value": [{"type": "text", "text": "Hi"}]}, {"from": "gpt", "value": "x"}],
         "system": "", "tools": "[]"},
        {"messages": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "x"}], "system": "", "tools": "[]"},
        {"conversations": [{"from": "human", "value": None}, {"from": "gpt", "value": "x"}], "system": "", "tools": "[]"},
        {"conversations": [{"value": "Hi", "from": "human"}, {"from": "gpt", "value": 7}], "system": "", "tools": "[]"},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "x"}], "system": None, "tools": [{"n": 1}]},
    ],
    "sharegpt_preference": [
        {"conversations": [{"from": "human", "value": "Q"}], "chosen": None, "rejected": {"from": "gpt", "value": "5"}},
        {"conversations": [{"from": "human", "value": "Q"}], "chosen": [{"from": "gpt", "value": "4"}],
         "rejected": {"from": "gpt", "value": "5"}},
        {"conversations": [{"from": "human", "value": "Q"}], "chosen": {"value": "4", "from": "gpt"},
         "rejected": {"from": "gpt", "value": "5"}, "label": "math"},
        {"conversations": [{"from": "gpt", "value": "Q"}], "chosen": {"from": "gpt", "value": "4"},
         "rejected": {"from": "gpt", "value": "5"}},
    ],
    "messages": [
        {"messages": [_U, {**_A, "loss_weight": 0.0}], "label": None, "origin": "x"},
        {"messages": [_U, {"role": "assistant", "content": None, "tool_calls": [{"name": "f"}]}], "label": None, "origin": "x"},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}, _A], "label": None, "origin": "x"},
        {"messages": [_U, {**_A, "name": "bot"}], "label": None, "origin": "x"},
        {"messages": [{"content": "Hi", "role": "user"}, _A], "label": 3, "origin": "x"},
        {"messages": [_U], "label": None, "origin": "x"},
        {"prompt": [_U], "chosen": [_A], "rejected": [{"role": "assistant", "content": "No"}]},
    ],
    "feedback": [
        {"prompt": [_U], "completion": "x", "feedback": {"thumbs": "up"}, "model": "m", "ts": None, "request_id": "r"},
        {"prompt": [_U], "completion": [_A], "feedback": "up", "model": "m", "ts": None, "request_id": "r"},
        {"prompt": [_U], "completion": _A, "feedback": "down", "model": "m", "ts": None, "request_id": "r"},
        {"prompt": [_U], "completion": None, "feedback": "up", "model": "m", "ts": None, "request_id": "r"},
        {"prompt": [_U], "completion": "x", "feedback": "up", "model": 7, "ts": None, "request_id": "r"},
        {"prompt": [_A], "completion": "x", "feedback": "up", "model": "m", "ts": None, "request_id": "r"},
        {"prompt": [_U], "feedback": "up", "model": "m", "ts": None, "request_id": "r"},
    ],
    "preference": [
        {"prompt": [_U], "chosen": [_A], "rejected": [_A], "margin": "high", "id": "p"},
        {"prompt": [_U], "chosen": [_A], "rejected": [_A], "margin": True, "id": "p"},
        {"prompt": [_U], "chosen": [_A], "margin": 1, "id": "p"},
        {"prompt": [_U], "chosen": [_A], "rejected": [_A], "margin": 2, "id": "p", "label": "x"},
        {"prompt": [_U], "chosen_messages": [_U, _A], "rejected": [_A], "margin": 2, "id": "p"},
        {"prompt": [_A], "chosen": [_A], "rejected": [_A], "margin": 2, "id": "p"},
        {"messages": [_U, _A]},
    ],
    "prompt": [
        {"prompt": [_U], "label": 5},
        {"prompt": [_U], "label": None, "rejected": [_A]},
        {"prompt": [_A], "label": None},
        {"prompt": "text", "label": None},
    ],
    "kto": [
        {"messages": [_U, _A], "label": "yes"},
        {"messages": [_U, _A]},
        {"messages": [_U, _A], "label": None},
        {"messages": [_U], "label": True},
        {"messages": [_U, _A, {"role": "user", "content": "trailing"}], "label": True},
        {"messages": [_U, _A], "label": True, "note": "kept in meta"},
        b'{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}], "label": true, "label": false}',
    ],
    "hh_rlhf": [
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hey\n\nAssistant: Go away"},
        {"chosen": "\n\nHuman: Hi", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away"},
        {"chosen": "Preamble.\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "Preamble.\n\nHuman: Hi\n\nAssistant: No"},
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Thanks", "rejected": "\n\nHuman: Hi\n\nAssistant: No"},
        {"chosen": "\n\nHuman: Hi\x1f\n\nAssistant: Hello\x1f", "rejected": "\n\nHuman: Hi\x1f\n\nAssistant: No"},
        {"chosen": "\n\nAssistant: Hello", "rejected": "\n\nAssistant: No"},
        {"chosen": 5, "rejected": "\n\nHuman: Hi\n\nAssistant: No"},
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: No", "prefix_mismatch": False},
        {"chosen": "\n\nHuman: Caf\u00e9\u2003\n\nAssistant: \u00a0Hello\u3000", "rejected": "\n\nHuman: Caf\u00e9\u2003\n\nAssistant: No"},
    ],
    "table": [
        {"q": "Where?", "cat": "ORDER", "flags": "B"},
        {"q": 5, "a": "x", "cat": "ORDER", "flags": "B"},
        {"q": "Where?", "a": "x", "cat": "ORDER"},
        {"q": "Where?", "a": None, "cat": 3, "flags": None},
        {"q": "Where?", "a": "x", "cat": "ORDER", "flags": "B", "extra": {"nested": 1}},
    ],
}


@pytest.mark.parametrize(
    ("format", "unusual"),
    [(format, i) for format, rows in sorted(UNUSUAL_ROWS.items()) for i in range(len(rows))],
)
def test_a_block_with_an_unusual_row_reads_as_the_row_path_reads_it(tmp_path, format, unusual):
    rows = [*PLAIN[format], *PLAIN[format], UNUSUAL_ROWS[format][unusual], *PLAIN[format]]
    path = _write(tmp_path / "rows.jsonl", rows)
    _assert_same_as_row_path(path, batch_rows=3, **_options(format))
    _assert_same_as_row_path(path, batch_rows=3)  # format: auto


def test_blank_lines_keep_file_line_numbers_in_every_block(tmp_path):
    rows = [*PLAIN["alpaca"], b"", b"  \r", *PLAIN["alpaca"], b"", *PLAIN["alpaca"]]
    path = _write(tmp_path / "rows.jsonl", rows)
    _assert_same_as_row_path(path, batch_rows=2)
    assert _takes_batch_path(path, SourceConfig(path=path.name))
    lines = [json.loads(m)["line"] for m in read_source(SourceConfig(path=path.name), base_dir=tmp_path, batch_rows=2).valid["meta"]]
    assert lines == [1, 2, 5, 6, 8, 9]


def test_a_bad_line_in_a_later_block_names_its_file_line(tmp_path):
    path = _write(tmp_path / "rows.jsonl", [*PLAIN["alpaca"] * 4, b'{"instruction": "q",', *PLAIN["alpaca"]])
    with pytest.raises(InputError, match=r"rows.jsonl, line 9: not valid JSON"):
        read_source(SourceConfig(path=path.name), base_dir=tmp_path, batch_rows=3)


def test_a_table_mapping_column_that_only_later_lines_have_is_found(tmp_path):
    rows = [{"q": "Hi", "cat": "A"}] * 3 + [{"q": "Hi", "a": "Hello", "cat": "A"}]
    path = _write(tmp_path / "rows.jsonl", rows)
    _assert_same_as_row_path(path, batch_rows=2, **_options("table"))
    keys_in_several_orders = [{"z": 1, "q": "Hi", "cat": "A"}, {"cat": "B", "q": "x", "m": 2}, {"q": "y", "a0": 1, "z": 2}]
    missing = _write(tmp_path / "missing.jsonl", keys_in_several_orders * 2)
    with pytest.raises(InputError, match=r"names the column 'a', which the file does not have. Available columns: z, q, cat, m, a0"):
        read_source(SourceConfig(path=missing.name, **_options("table")), base_dir=tmp_path, batch_rows=2)
    _assert_same_as_row_path(missing, batch_rows=2, **_options("table"))


def test_compressed_jsonl_streams_and_equals_the_row_path(tmp_path):
    import gzip

    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in PLAIN["hh_rlhf"] * 5)))
    _assert_same_as_row_path(path, batch_rows=3)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(path.read_bytes()[:-20])
    _assert_same_as_row_path(broken, batch_rows=3)


_LLAMAFACTORY = [
    ("alpaca_en_demo.json", "alpaca", True),
    ("identity.json", "alpaca", True),
    ("kto_en_demo.json", "kto", True),
    ("glaive_toolcall_en_demo.json", "sharegpt", True),
    ("dpo_en_demo.json", "sharegpt_preference", True),
    ("oaast_sft_zh.json", "alpaca", False),  # history turns: row by row
]


@pytest.mark.parametrize(("name", "format", "batched"), _LLAMAFACTORY)
def test_real_llamafactory_files_as_jsonl_read_as_the_row_path_reads_them(shared_data, tmp_path, name, format, batched):
    rows = json.loads((shared_data / "llamafactory_demo" / name).read_text(encoding="utf-8"))
    path = tmp_path / f"{Path(name).stem}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert resolve_source(SourceConfig(path=path.name), path=path, shown=path.name).format == format
    assert _takes_batch_path(path, SourceConfig(path=path.name)) is batched
    _assert_same_as_row_path(path, batch_rows=128)


def test_real_hh_rlhf_and_messages_files_read_as_the_row_path_reads_them(shared_data, tmp_path):
    import gzip

    hh = tmp_path / "hh.jsonl"
    hh.write_bytes(gzip.decompress((shared_data / "hh_rlhf/test.jsonl.gz").read_bytes()))
    assert _takes_batch_path(hh, SourceConfig(path=hh.name))
    _assert_same_as_row_path(hh, batch_rows=500)
    for name in ("v1_sft_demo.jsonl", "v1_dpo_demo.jsonl"):  # typed parts, preference rows: row by row
        path = tmp_path / name
        path.write_bytes((shared_data / "llamafactory_demo" / name).read_bytes())
        _assert_same_as_row_path(path, batch_rows=128)


BITEXT = "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".csv.gz"])
def test_real_tables_read_in_batches_as_the_row_path_reads_them(shared_data, tmp_path, suffix):
    import gzip

    frame = pl.read_csv(shared_data / BITEXT, infer_schema=False).head(1500)
    path = tmp_path / f"bitext{suffix}"
    if suffix == ".parquet":
        frame.with_columns(pl.col("start_offset").cast(pl.Int64)).write_parquet(path)
    elif suffix == ".tsv":
        frame.write_csv(path, separator="\t")
    elif suffix == ".csv.gz":
        path.write_bytes(gzip.compress(frame.write_csv().encode()))
    else:
        frame.write_csv(path)
    mapping = {"user": "instruction", "assistant": "response", "label": "category", "id": "intent"}
    if suffix != ".csv.gz":
        assert _takes_batch_path(path, SourceConfig(path=path.name, mapping=mapping), rows=256)
    _assert_same_as_row_path(path, batch_rows=256, mapping=mapping)
    _assert_same_as_row_path(path, batch_rows=256, mapping={**mapping, "system": "tags"})


def test_banking77_csv_reads_in_batches_as_the_row_path_reads_it(shared_data, tmp_path):
    path = tmp_path / "banking77.csv"
    path.write_bytes((shared_data / "banking77/train.csv").read_bytes())
    _assert_same_as_row_path(path, batch_rows=1000, mapping={"prompt": "text", "label": "category"})


def test_parquet_columns_of_other_types_read_as_the_row_path_reads_them(tmp_path):
    frame = pl.DataFrame({
        "q": ["Hi", "Where?", "Caf\u00e9", None],
        "a": ["Hello", "Here", "Oui", "x"],
        "good": ["A", "B", "C", "D"],
        "n": [1, 2, None, 4],
        "flag": [True, False, None, True],
        "score": [0.5, 1.0, 2.25, None],
        "margin": ["0.5", "", None, "1e3"],
        "when": pl.Series([None, None, None, None], dtype=pl.Date),
    })
    path = tmp_path / "rows.parquet"
    frame.drop("score", "when").write_parquet(path)
    preference = {"prompt": "q", "chosen": "good", "rejected": "a", "margin": "margin", "label": "n", "system": "flag"}
    for mapping in ({"user": "q", "assistant": "a", "label": "flag"}, {"user": "n", "assistant": "flag"}, preference):
        _assert_same_as_row_path(path, batch_rows=3, mapping=mapping)
    assert _takes_batch_path(path, SourceConfig(path=path.name, mapping={"user": "q", "assistant": "a", "label": "n"}))
    frame.write_parquet(path)  # a float and a date column go to meta: row by row
    assert not _takes_batch_path(path, SourceConfig(path=path.name, mapping={"user": "q", "assistant": "a"}))
    _assert_same_as_row_path(path, batch_rows=3, mapping={"user": "q", "assistant": "a"})
    frame.with_columns(margin=pl.Series(["0.5", "x", None, "2"])).drop("score", "when").write_parquet(path)
    _assert_same_as_row_path(path, batch_rows=3, mapping=preference)


def test_a_glob_of_files_in_several_formats_reads_as_the_row_path_reads_it(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _write(folder / "a.jsonl", PLAIN["alpaca"] * 2)
    _write(folder / "b.jsonl", PLAIN["sharegpt"] * 2)
    source = SourceConfig(path="in/*.jsonl")
    fast = _outcome(read_source, source, tmp_path, batch_rows=3)
    slow = _outcome(read_source_rows, source, tmp_path)
    assert fast[0] == slow[0] == "sft"
    assert_frame_equal(fast[1], slow[1])
    for name, rows in (("c.jsonl", PLAIN["hh_rlhf"]), ("d.jsonl", [])):  # preference rows; no rows: errors
        _write(folder / name, rows)
        error = _outcome(read_source_rows, source, tmp_path)
        assert isinstance(error, str)
        assert _outcome(read_source, source, tmp_path, batch_rows=3) == error


@pytest.mark.parametrize(
    ("rows", "options"),
    [
        ([], {"format": "alpaca"}),
        ([], {}),
        ([b"", b"  "], {"format": "kto"}),
        (PLAIN["alpaca"], {"kind": "prompt"}),
        (PLAIN["hh_rlhf"], {"kind": "prompt"}),
        (PLAIN["kto"], {"kind": "sft"}),
    ],
)
def test_empty_files_and_a_kind_other_than_the_formats_read_as_the_row_path_reads_them(tmp_path, rows, options):
    _assert_same_as_row_path(_write(tmp_path / "rows.jsonl", rows), batch_rows=2, **options)


@pytest.mark.parametrize(
    "text",
    [
        'q,a,cat\n"multi\nline",x,A\n"",y,B\nz,,C\n',
        "q,a,cat\nHi,Hello,A\nHey,Hello,B,extra\n",
        "q,a,cat\nHi,Hello\n",
        'q,a,cat\n"unclosed,x,A\n',
        "\ufeffq,a,cat\nCaf\u00e9,Oui,A\n",
    ],
)
def test_unusual_csv_files_read_in_batches_as_the_row_path_reads_them(tmp_path, text):
    path = tmp_path / "rows.csv"
    path.write_text(text, encoding="utf-8")
    _assert_same_as_row_path(path, batch_rows=1, mapping=_TABLE)


def test_keys_and_values_beyond_ascii_go_to_meta_on_the_batch_path(tmp_path):
    rows = [{**row, "cl\u00e9": "\u00e9t\u00e9 \u2028", "n\u00b0": i} for i, row in enumerate(PLAIN["alpaca"] * 2)]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert _takes_batch_path(path, SourceConfig(path=path.name))
    _assert_same_as_row_path(path, batch_rows=3)
    escaped = _write(tmp_path / "escaped.jsonl", rows)  # keys written as \u escapes: row by row, same result
    _assert_same_as_row_path(escaped, batch_rows=3)


def _rows_read_by_row(monkeypatch) -> list[int]:  # noqa: ANN001
    """The number of rows each call of the row path gets from the parts reader, as it runs."""
    from curate.formats import _part

    calls: list[int] = []
    row_path = _part.source_rows
    monkeypatch.setattr(_part, "source_rows", lambda rows, **kw: calls.append(len(rows)) or row_path(rows, **kw))
    return calls


def test_an_invalid_row_alone_goes_through_the_row_path(tmp_path, monkeypatch):
    rows = [{**PLAIN["alpaca"][i % 2], "source_id": i} for i in range(600)]
    for i in (7, 300, 301):
        rows[i] = {**rows[i], "output": None}  # invalid: removed with the row path's reason
    lines = [json.dumps(r).encode() for r in rows]
    lines[200:200] = [b""]
    path = _write(tmp_path / "rows.jsonl", lines)
    read_by_row = _rows_read_by_row(monkeypatch)
    _assert_same_as_row_path(path, batch_rows=1000)
    assert read_by_row == [3]
    assert read_source(SourceConfig(path=path.name), base_dir=tmp_path, batch_rows=1000).invalid.height == 3


@pytest.mark.parametrize(
    ("format", "odd"),
    [
        ("kto", {"messages": [_U], "label": True}),  # no assistant turn: removed
        ("hh_rlhf", UNUSUAL_ROWS["hh_rlhf"][3]),  # a trailing human turn: kept, split as Python splits it
        ("hh_rlhf", {"chosen": None, "rejected": "\n\nHuman: Hi\n\nAssistant: No"}),
        ("sharegpt", UNUSUAL_ROWS["sharegpt"][0]),  # an unknown speaker: removed
    ],
)
def test_a_row_the_batch_path_cannot_convert_alone_goes_through_the_row_path(tmp_path, monkeypatch, format, odd):
    rows = PLAIN[format] * 300
    rows[123] = odd
    path = _write(tmp_path / "rows.jsonl", rows)
    read_by_row = _rows_read_by_row(monkeypatch)
    _assert_same_as_row_path(path, batch_rows=1000, **_options(format))
    assert read_by_row == [1]


def test_one_odd_row_sends_only_its_piece_of_a_block_row_by_row(tmp_path, monkeypatch):
    rows = [{**PLAIN["alpaca"][i % 2], "source_id": i} for i in range(3000)]
    rows[1500] = {**rows[1500], "instruction": 5}  # a number where text belongs: not plain
    lines = [json.dumps(r).encode() for r in rows]
    lines[700:700] = [b""]  # a blank line in an earlier piece
    path = _write(tmp_path / "rows.jsonl", lines)
    read_by_row = _rows_read_by_row(monkeypatch)
    _assert_same_as_row_path(path, batch_rows=5000)
    assert len(read_by_row) == 1 and read_by_row[0] < 3000 / 6  # one piece of eight
    bad = _write(tmp_path / "bad.jsonl", [*lines[:2000], b'{"instruction": ', *lines[2000:]])
    _assert_same_as_row_path(bad, batch_rows=5000)


def test_one_odd_row_sends_only_its_piece_of_a_table_batch_row_by_row(tmp_path, monkeypatch):
    margins = ["0.5"] * 4096
    margins[3000] = "high"  # not a number: kept in meta, row by row
    frame = pl.DataFrame({"q": [f"question {i}" for i in range(4096)], "good": "yes", "bad": "no", "margin": margins})
    path = tmp_path / "rows.parquet"
    frame.write_parquet(path)
    mapping = {"prompt": "q", "chosen": "good", "rejected": "bad", "margin": "margin"}
    read_by_row = _rows_read_by_row(monkeypatch)
    _assert_same_as_row_path(path, batch_rows=5000, mapping=mapping)
    assert [n for n in read_by_row if n] == [512]  # one piece of eight
