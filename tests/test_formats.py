"""Containers, conversions and bad input of curate.formats, on tiny files built in tmp_path."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from curate.config import SourceConfig
from curate.errors import InputError
from curate.formats import read_source, write_records
from curate.formats.reader import SourceRows

CHAT = [{"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "It ships today."}]
ROW = {"messages": CHAT, "ticket": "T-1"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read(path: Path, **options: object) -> SourceRows:
    return read_source(SourceConfig(path=path.name, **options), base_dir=path.parent)


def metas(frame: pl.DataFrame) -> list[dict]:
    return [json.loads(m) for m in frame["meta"]]


def test_jsonl_rows_keep_their_line_number_and_extra_keys_in_meta(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps(ROW) + "\n\n" + json.dumps({**ROW, "ticket": "T-2"}) + "\n")
    rows = read(path)
    assert rows.kind == "sft" and rows.files == ["chats.jsonl"]
    assert metas(rows.valid) == [{"line": 1, "ticket": "T-1"}, {"line": 3, "ticket": "T-2"}]
    assert rows.valid["messages"][0].to_list() == CHAT


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.bz2", ".json.gz", ".json.bz2"])
def test_compressed_files_are_read_by_suffix(tmp_path: Path, suffix: str) -> None:
    rows = [ROW, {**ROW, "ticket": "T-2"}]
    text = json.dumps(rows) if suffix.startswith(".json.") else "".join(json.dumps(r) + "\n" for r in rows)
    compress = gzip.compress if suffix.endswith(".gz") else bz2.compress
    path = tmp_path / f"chats{suffix}"
    path.write_bytes(compress(text.encode()))
    assert read(path).valid.height == 2


def test_json_object_holding_a_list_gives_one_row_per_item(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": [ROW, ROW]}))
    assert read(path).valid.height == 2


def test_json_object_that_is_one_conversation_gives_one_row(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(
        json.dumps({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]})
    )
    assert read(path).valid["messages"].to_list() == [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    ]


def test_csv_with_crlf_inside_quoted_fields_keeps_one_row_per_record(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_bytes(
        b'question,answer,intent,order\r\n"Cancel?","Step 1.\r\nStep 2.",cancel,007\r\nhi,hello,greet,008\r\n'
    )
    rows = read(path, mapping={"user": "question", "assistant": "answer", "label": "intent"})
    assert rows.valid["messages"][0][1]["content"] == "Step 1.\r\nStep 2."
    assert rows.valid["label"].to_list() == ["cancel", "greet"]
    assert metas(rows.valid)[0] == {"line": 1, "order": "007"}  # read as text: leading zeros survive


def test_parquet_with_nested_messages_is_read(tmp_path: Path) -> None:
    path = tmp_path / "chats.parquet"
    pl.DataFrame({"messages": [CHAT, CHAT[:1]], "ticket": ["T-1", "T-2"]}).write_parquet(path)
    rows = read(path)
    assert rows.valid.height == 1 and rows.invalid["reason"].to_list() == ["no_assistant_turn"]


def test_hugging_face_dataset_folders_are_read_with_the_split_in_meta(tmp_path: Path) -> None:
    import datasets

    single = tmp_path / "single"
    datasets.Dataset.from_list([ROW, ROW]).save_to_disk(str(single))
    assert read(single).valid.height == 2
    several = tmp_path / "several"
    parts = {"train": datasets.Dataset.from_list([ROW, ROW]), "test": datasets.Dataset.from_list([ROW])}
    datasets.DatasetDict(parts).save_to_disk(str(several))
    rows = read(several)
    assert [(m["split"], m["line"]) for m in metas(rows.valid)] == [("train", 1), ("train", 2), ("test", 1)]


def test_a_glob_reads_every_match_and_names_each_file_in_source(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "a.jsonl", [ROW])
    write_jsonl(tmp_path / "in" / "b.jsonl", [ROW, ROW])
    rows = read_source(SourceConfig(path="in/*.jsonl"), base_dir=tmp_path)
    assert rows.files == ["in/a.jsonl", "in/b.jsonl"]
    assert rows.valid["source"].to_list() == ["in/a.jsonl", "in/b.jsonl", "in/b.jsonl"]


def test_malformed_jsonl_line_fails_naming_file_line_and_json_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + json.dumps(ROW) + '\n{"messages": [}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl, line 3: not valid JSON \(Expecting value at column 15\)"):
        read(path)


def test_missing_file_and_unmatched_glob_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"Input file nope\.jsonl does not exist"):
        read_source(SourceConfig(path="nope.jsonl"), base_dir=tmp_path)
    with pytest.raises(InputError, match=r"'data/\*\.csv' matches no file"):
        read_source(SourceConfig(path="data/*.csv"), base_dir=tmp_path)


def test_unknown_suffix_fails_naming_the_readable_ones(tmp_path: Path) -> None:
    path = tmp_path / "chats.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match=r"chats\.txt: the suffix '\.txt' is not one of \.csv, \.json, \.jsonl"):
        read(path)


def test_mapping_to_a_missing_column_lists_the_available_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("question,answer,intent\nq,a,x\n")
    with pytest.raises(InputError, match=r"'response'.*Available columns: question, answer, intent\."):
        read(path, mapping={"user": "question", "assistant": "response"})


def test_mapping_without_the_fields_a_kind_needs_fails(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("question,answer\nq,a\n")
    with pytest.raises(InputError, match=r"t\.csv as a table: mapping lacks assistant, which every sft record needs"):
        read(path, mapping={"user": "question"})


def test_table_mapping_builds_preference_and_prompt_records(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("q,good,bad,score,sys\nHi?,Hello!,Go away.,0.5,Be kind.\n")
    pairs = read(path, mapping={"prompt": "q", "chosen": "good", "rejected": "bad", "margin": "score", "system": "sys"})
    assert pairs.kind == "preference"
    row = pairs.valid.row(0, named=True)
    assert row["prompt"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi?"}]
    assert (row["chosen"], row["margin"]) == ([{"role": "assistant", "content": "Hello!"}], 0.5)
    prompts = read(path, mapping={"prompt": "q"})
    assert prompts.kind == "prompt" and prompts.valid["prompt"][0].to_list() == [{"role": "user", "content": "Hi?"}]


def test_auto_detection_failure_names_file_keys_and_expected_keys(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(InputError) as caught:
        read(path)
    message = str(caught.value)
    assert "Cannot detect the format of odd.jsonl: the first rows have the keys answer, question." in message
    assert "- sharegpt: conversations [{from, value}]" in message and "- table: any columns, with `mapping`" in message


def test_unknown_sharegpt_speaker_is_removed_as_unknown_role(tmp_path: Path) -> None:
    convo = [{"from": "human", "value": "hi"}, {"from": "bot", "value": "hello"}]
    path = write_jsonl(
        tmp_path / "s.jsonl", [{"conversations": convo}, {"conversations": convo[:1] + [convo[0] | {"from": "gpt"}]}]
    )
    rows = read(path)
    assert rows.valid.height == 1
    bad = rows.invalid.row(0, named=True)
    assert bad["reason"] == "unknown_role"
    assert json.loads(bad["detail"]) == {
        "field": "messages[1].role",
        "problem": "messages[1].role 'bot' is not one of system, user, assistant, tool",
        "raw": '"bot"',
    }
    assert bad["messages"][1] == {"role": "bot", "content": "hello"}


def test_empty_messages_are_removed_as_empty_messages(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [ROW, {"messages": []}])
    rows = read(path, format="messages")
    assert rows.invalid["reason"].to_list() == ["empty_messages"]
    assert metas(rows.invalid) == [{"line": 2}]


def test_typed_content_parts_are_joined_and_non_text_parts_are_not_dropped(tmp_path: Path) -> None:
    parts = [{"type": "text", "text": "Look"}, {"type": "text", "text": "here."}]
    image = [{"type": "image_url", "image_url": {"url": "x.png"}}]
    rows_in = [{"messages": [{"role": "user", "content": c}, CHAT[1]]} for c in (parts, image)]
    rows = read(write_jsonl(tmp_path / "p.jsonl", rows_in))
    assert rows.valid["messages"][0][0]["content"] == "Look\nhere."
    assert rows.invalid["reason"].to_list() == ["malformed_message"]


def test_hh_rlhf_prefix_mismatch_keeps_the_chosen_prompt_and_flags_it(tmp_path: Path) -> None:
    row = {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hey\n\nAssistant: go away"}
    rows = read(write_jsonl(tmp_path / "hh.jsonl", [row]))
    record = rows.valid.row(0, named=True)
    assert record["prompt"] == [{"role": "user", "content": "hi"}]
    assert (record["chosen"][0]["content"], record["rejected"][0]["content"]) == ("hello", "go away")
    assert metas(rows.valid) == [{"line": 1, "prefix_mismatch": True}]


def test_hh_rlhf_text_without_an_assistant_turn_is_removed(tmp_path: Path) -> None:
    rows = read(
        write_jsonl(tmp_path / "hh.jsonl", [{"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi"}]), format="hh_rlhf"
    )
    assert rows.invalid["reason"].to_list() == ["empty_chosen"]


def test_sft_rows_read_as_kind_prompt_drop_the_final_answer(tmp_path: Path) -> None:
    rows = read(write_jsonl(tmp_path / "m.jsonl", [ROW]), kind="prompt")
    assert rows.valid["prompt"].to_list() == [CHAT[:1]]


def test_a_kind_the_format_cannot_produce_fails_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"become sft records; they cannot be read as kind preference\. Set `kind: sft`"
    ):
        read(write_jsonl(tmp_path / "m.jsonl", [ROW]), kind="preference")


def test_alpaca_export_refuses_a_tool_turn_and_names_the_record(tmp_path: Path) -> None:
    tool_chat = [*CHAT, {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "Done."}]
    rows = read(write_jsonl(tmp_path / "m.jsonl", [{"messages": tool_chat}]))
    with pytest.raises(InputError, match=rf"Record {rows.valid['id'][0]} cannot be written as alpaca: its roles are"):
        write_records(rows.valid, kind="sft", format="alpaca", path=tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_alpaca_export_writes_system_and_history(tmp_path: Path) -> None:
    chat = [
        {"role": "system", "content": "Be brief."},
        *CHAT,
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": "Bye"},
    ]
    rows = read(write_jsonl(tmp_path / "m.jsonl", [{"messages": chat, "label": "shipping"}]))
    out = tmp_path / "out.jsonl.gz"
    write_records(rows.valid, kind="sft", format="alpaca", path=out)
    written = json.loads(gzip.decompress(out.read_bytes()))
    assert written == {
        "instruction": "Thanks", "input": "", "output": "Bye", "system": "Be brief.",
        "history": [["Where is my order?", "It ships today."]], "label": "shipping",
    }  # fmt: skip


def test_preference_records_cannot_be_exported_as_alpaca(tmp_path: Path) -> None:
    rows = read(write_jsonl(tmp_path / "p.jsonl", [{"prompt": CHAT[:1], "chosen": CHAT[1:], "rejected": CHAT[1:]}]))
    assert rows.kind == "preference"
    with pytest.raises(InputError, match=r"The alpaca format cannot hold preference records; it holds sft\."):
        write_records(rows.valid, kind="preference", format="alpaca", path=tmp_path / "out.jsonl")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "table"}, "format table needs `mapping`"),
        ({"format": "alpaca", "mapping": {"user": "q"}}, "`mapping` only applies to format table"),
        ({"mapping": {"question": "q"}}, "mapping key\\(s\\) question do not fit any record kind"),
        (
            {"kind": "prompt", "mapping": {"user": "q"}},
            "mapping key\\(s\\) user do not fit a prompt record; use prompt",
        ),
    ],
)
def test_mapping_that_cannot_fit_fails_when_the_config_loads(options: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SourceConfig(path="t.csv", **options)


def test_prompt_records_export_as_messages_and_read_back_with_the_same_ids(tmp_path: Path) -> None:
    rows = read(write_jsonl(tmp_path / "m.jsonl", [ROW, {"messages": CHAT, "label": "shipping"}]), kind="prompt")
    out = tmp_path / "prompts.jsonl.bz2"
    assert write_records(rows.valid, kind="prompt", format="messages", path=out) == 2
    again = read(out)
    assert again.kind == "prompt"
    assert again.valid["id"].to_list() == rows.valid["id"].to_list()
    assert again.valid["label"].to_list() == [None, "shipping"]


def test_a_file_that_is_not_utf8_fails_naming_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"messages": "café"}\n'.encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.jsonl, line 1: not UTF-8 text \(column 18: invalid continuation byte\)"):
        read(path)


def test_preference_margin_is_read_as_a_number_or_kept_in_meta(tmp_path: Path) -> None:
    pair = {"prompt": CHAT[:1], "chosen": CHAT[1:], "rejected": [{"role": "assistant", "content": "No idea."}]}
    rows = read(write_jsonl(tmp_path / "p.jsonl", [pair | {"margin": "0.5"}, pair | {"margin": "high"}]))
    assert rows.valid["margin"].to_list() == [0.5, None]
    assert metas(rows.valid) == [{"line": 1}, {"line": 2, "margin": "high"}]
