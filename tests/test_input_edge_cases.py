"""Hostile input: one clear error naming file and line, or a removed row that keeps its raw value.

Real files under tmp_path, read by the real reader; where it is cheap, a real `curate run` into
a real store (library call or the console script).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from curate.catalog import export_dataset
from curate.config import SourceConfig
from curate.errors import InputError
from curate.formats import read_source
from curate.formats.reader import read_source_rows
from curate.formats.reader import SourceRows
from curate.pipeline import run_pipeline
from curate.records import RAW_LIMIT
from curate.store import Store

CURATE = str(Path(sys.executable).with_name("curate"))
ANSWER = {"role": "assistant", "content": "It ships today."}


def chat(user: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, ANSWER]}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read(path: Path, **options: object) -> SourceRows:
    return read_source(SourceConfig(path=path.name, **options), base_dir=path.parent)


def run_into_store(folder: Path, source: str, *, extra: str = "") -> pl.DataFrame:
    """`curate run` (library) of a pipeline without stages over ``source``: the stored version."""
    pipeline = folder / "p.yaml"
    pipeline.write_text(f"source:\n  path: {source}\n{extra}output: edge\n", encoding="utf-8")
    run_pipeline(pipeline, store_root=folder / "store")
    return Store(folder / "store").read("edge@0")


def removed_detail(version: pl.DataFrame) -> tuple[str, dict]:
    (row,) = version.filter(pl.col("removed_by") == "convert").iter_rows(named=True)
    return row["reason"], json.loads(row["detail"])


# --- 5. line separators inside strings ------------------------------------------------------


def test_line_separators_inside_strings_survive_export_and_re_read(tmp_path: Path) -> None:
    texts = ["one\u2028two", "para\u2029graph", "next\x85line"]
    write_lines(tmp_path / "in.jsonl", [json.dumps(chat(t)) for t in texts])
    kept = run_into_store(tmp_path, "in.jsonl").filter(pl.col("removed_by").is_null())
    out = tmp_path / "out.jsonl"
    export_dataset(Store(tmp_path / "store"), "edge@0", format="messages", path=out)
    assert "\u2028" in out.read_text(encoding="utf-8")  # written raw, as JSON allows
    again = read(out)
    assert again.invalid.height == 0
    assert sorted(again.valid["id"]) == sorted(kept["id"])
    assert sorted(m[0]["content"] for m in again.valid["messages"]) == sorted(texts)


def test_a_bad_line_after_a_line_separator_is_named_by_its_physical_line(tmp_path: Path) -> None:
    good = json.dumps(chat("a\u2028b\u2029c\x85d"), ensure_ascii=False)
    path = write_lines(tmp_path / "x.jsonl", [good, good, "{oops"])
    with pytest.raises(InputError, match=r"^x\.jsonl, line 3: not valid JSON"):
        read(path)


def test_rows_after_a_line_separator_keep_their_physical_line_in_meta(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.jsonl", [json.dumps(chat(f"q{i}\u2028x"), ensure_ascii=False) for i in range(3)])
    rows = read(path)
    assert [json.loads(m)["line"] for m in rows.valid["meta"]] == [1, 2, 3]


# --- 6. Python's limits: surrogates, nesting, long integers ---------------------------------


def test_a_lone_surrogate_removes_the_row_as_invalid_unicode_keeping_the_raw_value(tmp_path: Path) -> None:
    lines = [json.dumps(chat("Where is my order?")), '{"messages": [{"role": "user", "content": "Hi \\ud800"}, '
             '{"role": "assistant", "content": "Hello"}]}']  # fmt: skip
    write_lines(tmp_path / "in.jsonl", lines)
    version = run_into_store(tmp_path, "in.jsonl")
    assert version.height == 2
    reason, detail = removed_detail(version)
    assert reason == "invalid_unicode"
    assert detail["field"] == "messages[0].content"
    assert "lone UTF-16 surrogate" in detail["problem"]
    assert json.loads(detail["raw"]) == "Hi \ud800"  # the raw value, escaped, comes back exactly
    removed = version.filter(pl.col("reason") == "invalid_unicode")
    assert removed["messages"][0][0]["content"] == "Hi \ufffd"


CHAT_JSON = '"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]'


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("{" + CHAT_JSON + ', "label": "a\\udc00"}', "label"),
        ("{" + CHAT_JSON + ', "note": ["x", "\\ud83d"]}', "meta.note[1]"),
        ("{" + CHAT_JSON + ', "\\ud800k": 1}', "meta key"),
    ],
)
def test_a_lone_surrogate_anywhere_in_the_row_names_its_field(tmp_path: Path, row: str, field: str) -> None:
    rows = read(write_lines(tmp_path / "s.jsonl", [row]))
    assert rows.invalid["reason"].to_list() == ["invalid_unicode"]
    detail = json.loads(rows.invalid["detail"][0])
    assert detail["field"] == field
    assert any("\ud800" <= ch <= "\udfff" for ch in json.loads(detail["raw"]))  # the raw string, exactly
    extras = {k: v for k, v in json.loads(row).items() if k not in ("messages", "label")}
    assert json.loads(rows.invalid["meta"][0]) == {**extras, "line": 1}  # meta keeps the rest, escaped


@pytest.mark.parametrize("depth", [200_000, 990])
def test_json_nested_too_deep_fails_naming_file_and_line(tmp_path: Path, depth: int) -> None:
    deep = json.dumps(chat("hi"))[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    path = write_lines(tmp_path / "deep.jsonl", [json.dumps(chat("hi")), deep])
    with pytest.raises(InputError, match=r"^deep\.jsonl, line 2: JSON nested more than 100 levels deep"):
        read(path)


def test_a_json_document_nested_too_deep_names_the_line_where_it_gets_too_deep(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[\n" + json.dumps(chat("hi")) + ",\n" + "[" * 5000 + "]" * 5000 + "\n]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"^deep\.json, line 3: JSON nested more than 100 levels deep"):
        read(path)


@pytest.mark.parametrize("name", ["long.jsonl", "long.json"])
def test_an_integer_python_cannot_read_fails_naming_file_and_line(tmp_path: Path, name: str) -> None:
    row = json.dumps(chat("hi"))[:-1] + ', "n": ' + "7" * 5000 + "}"
    lines = [json.dumps(chat("hi")), row] if name.endswith("l") else ["[", json.dumps(chat("hi")) + ",", row, "]"]
    path = write_lines(tmp_path / name, lines)
    line = 2 if name.endswith("l") else 3
    with pytest.raises(InputError, match=rf"^long\.jsonl?, line {line}: an integer of more than 4,300 digits"):
        read(path)


def test_a_bad_utf8_byte_past_the_first_block_gets_the_row_paths_message(tmp_path: Path) -> None:
    good = json.dumps(chat("ok")).encode()
    bad = good.replace(b'"ok"', b'"caf' + "\u00e9".encode("latin-1") + b'"')
    path = tmp_path / "late.jsonl"
    path.write_bytes(b"\n".join([good] * 30 + [bad, good]) + b"\n")
    with pytest.raises(InputError) as row_path:
        read_source_rows(SourceConfig(path=str(path)), base_dir=tmp_path)
    with pytest.raises(InputError) as blocks:
        read_source(SourceConfig(path=str(path)), base_dir=tmp_path, batch_rows=7)
    assert str(blocks.value) == str(row_path.value)
    assert "line 31: not UTF-8 text (column" in str(blocks.value)


def test_a_bad_utf8_byte_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(chat("ok")).encode() + b"\n" + json.dumps(chat("caf\u00e9")).encode("latin-1") + b"\n")
    path.write_bytes(path.read_bytes().replace(b"\\u00e9", "\u00e9".encode("latin-1")))
    column = path.read_bytes().split(b"\n")[1].index("\u00e9".encode("latin-1")) + 1
    with pytest.raises(InputError, match=rf"^latin1\.jsonl, line 2: not UTF-8 text \(column {column}: invalid continuation byte\)"):
        read(path)


PIPELINE = "source: {path: in.jsonl}\noutput: edge\n"
CLI_ERRORS = {
    "deep_json": (PIPELINE, '{"messages": ' + "[" * 200_000 + "]" * 200_000 + "}", "in.jsonl, line 1: JSON nested"),
    "long_int": (PIPELINE, '{"n": ' + "9" * 5000 + "}", "in.jsonl, line 1: an integer of more than 4,300 digits"),
    "latin1_yaml": ("# caf\u00e9\n" + PIPELINE, "", "p.yaml, line 1: not UTF-8 text"),
    "deep_yaml": (PIPELINE + "x: " + "[" * 100_000, "", "p.yaml, line 3: nested more than 50 levels deep"),
}


@pytest.mark.parametrize("case", sorted(CLI_ERRORS))
def test_curate_run_reports_input_limits_in_one_line_without_a_traceback(tmp_path: Path, case: str) -> None:
    pipeline, rows, message = CLI_ERRORS[case]
    (tmp_path / "p.yaml").write_bytes(pipeline.encode("latin-1"))
    (tmp_path / "in.jsonl").write_text(rows + "\n", encoding="utf-8")
    done = subprocess.run(
        [CURATE, "run", "p.yaml"], cwd=tmp_path, capture_output=True, text=True, env={"COLUMNS": "300"}
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {message}") and done.stderr.count("\n") == 1, done.stderr


# --- 8. removed rows keep their raw input ---------------------------------------------------


def test_messages_that_are_not_a_list_are_removed_as_malformed_with_the_raw_value(tmp_path: Path) -> None:
    write_lines(tmp_path / "in.jsonl", [json.dumps(chat("hi")), json.dumps({"messages": "not a list"})])
    reason, detail = removed_detail(run_into_store(tmp_path, "in.jsonl"))
    assert reason == "malformed_messages"
    problem = "messages is a string, not a list of messages"
    assert detail == {"field": "messages", "problem": problem, "raw": '"not a list"'}


def test_only_missing_or_empty_messages_are_empty_messages(tmp_path: Path) -> None:
    lines = ['{"messages": []}', '{"messages": null}', '{"messages": {"role": "user"}}', '{"messages": 3}']
    rows = read(write_lines(tmp_path / "m.jsonl", lines), format="messages")
    assert rows.invalid["reason"].to_list() == ["empty_messages"] * 2 + ["malformed_messages"] * 2
    assert [json.loads(d)["problem"] for d in rows.invalid["detail"][2:]] == [
        "messages is an object, not a list of messages",
        "messages is a number, not a list of messages",
    ]


def test_a_message_that_is_not_an_object_is_kept_in_the_detail(tmp_path: Path) -> None:
    rows = read(write_lines(tmp_path / "m.jsonl", [json.dumps({"messages": ["hello", ANSWER]})]))
    assert rows.invalid["reason"].to_list() == ["malformed_message"]
    detail = json.loads(rows.invalid["detail"][0])
    assert (detail["field"], detail["raw"]) == ("messages[0]", '"hello"')


def test_a_list_label_is_removed_as_malformed_label_not_stored_as_a_python_repr(tmp_path: Path) -> None:
    write_lines(tmp_path / "in.jsonl", [json.dumps(chat("hi") | {"label": ["billing", "refund"]})])
    version = run_into_store(tmp_path, "in.jsonl")
    reason, detail = removed_detail(version)
    assert reason == "malformed_label"
    assert json.loads(detail["raw"]) == ["billing", "refund"]
    assert version["label"].to_list() == [None]


def test_a_raw_value_longer_than_the_limit_is_cut_with_a_note(tmp_path: Path) -> None:
    text = "x" * 10_000
    rows = read(write_lines(tmp_path / "m.jsonl", [json.dumps({"messages": text})]), format="messages")
    detail = json.loads(rows.invalid["detail"][0])
    assert detail["raw"] == json.dumps(text)[:RAW_LIMIT]
    assert detail["raw_truncated"] == f"first {RAW_LIMIT:,} of 10,002 characters"


def test_numeric_table_columns_become_text_when_mapped_to_text_fields(tmp_path: Path) -> None:
    frame = pl.DataFrame({"q": [1, 2], "a": [2.5, 3.0], "sys": [0.5, None], "cat": [7, 8], "n": [10, 11]})
    frame.write_parquet(tmp_path / "nums.parquet")
    extra = "  mapping: {user: q, assistant: a, system: sys, label: cat}\n"
    version = run_into_store(tmp_path, "nums.parquet", extra=extra)
    assert version["removed_by"].null_count() == 2
    assert sorted(version["messages"].to_list(), key=len) == [
        [{"role": "user", "content": "2"}, {"role": "assistant", "content": "3.0"}],
        [
            {"role": "system", "content": "0.5"},
            {"role": "user", "content": "1"},
            {"role": "assistant", "content": "2.5"},
        ],
    ]
    assert sorted(version["label"]) == ["7", "8"]
    assert sorted(json.loads(m)["n"] for m in version["meta"]) == [10, 11]  # unmapped numbers stay numbers


def test_an_hh_rlhf_side_that_is_not_text_stays_in_meta(tmp_path: Path) -> None:
    row = {"chosen": ["Human: hi", "Assistant: hello"], "rejected": "\n\nHuman: hi\n\nAssistant: go away"}
    rows = read(write_lines(tmp_path / "hh.jsonl", [json.dumps(row)]), format="hh_rlhf")
    assert rows.invalid["reason"].to_list() == ["empty_prompt"]
    assert json.loads(rows.invalid["meta"][0]) == {"chosen": row["chosen"], "line": 1, "prefix_mismatch": True}


def test_an_alpaca_history_that_is_not_a_list_is_removed_whole_not_split(tmp_path: Path) -> None:
    rows_in = [{"instruction": "i", "output": "o", "history": h} for h in ("abc", {"q": "a"})]
    rows = read(write_lines(tmp_path / "a.jsonl", [json.dumps(r) for r in rows_in]), format="alpaca")
    assert rows.invalid["reason"].to_list() == ["malformed_message", "malformed_message"]
    assert rows.invalid["messages"][0][0] == {"role": "user", "content": "abc"}
    assert json.loads(json.loads(rows.invalid["detail"][1])["raw"]) == {"q": "a"}


def test_message_keys_beyond_role_and_content_stay_in_meta(tmp_path: Path) -> None:
    openai = {"messages": [{"role": "user", "content": "Hi", "name": "bob"}, ANSWER | {"tool_calls": [{"id": "c1"}]},
                           {"role": "tool", "content": "42", "tool_call_id": "c1"}, ANSWER]}  # fmt: skip
    sharegpt = {"conversations": [{"from": "human", "value": "Hi", "weight": 0}, {"from": "gpt", "value": "Yo"}]}
    rows = [read(write_lines(tmp_path / f"{i}.jsonl", [json.dumps(r)])) for i, r in enumerate((openai, sharegpt))]
    assert [json.loads(r.valid["meta"][0])["message_extras"] for r in rows] == [
        {"messages": [{"name": "bob"}, {"tool_calls": [{"id": "c1"}]}, {"tool_call_id": "c1"}, {}]},
        {"conversations": [{"weight": 0}, {}]},
    ]
