"""Every conversational / preference file of ../shared/data converts with exact row accounting."""

from __future__ import annotations

import bz2
import csv
import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from curate.config import SourceConfig
from curate.errors import InputError
from curate.formats import read_source, write_records
from curate.formats.detect import detect_format
from curate.formats.reader import SourceRows

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")

BITEXT = "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"
BITEXT_MAPPING = {"user": "instruction", "assistant": "response", "label": "category"}


def count_rows(relative: str) -> int:
    """Input rows counted without curate: JSONL lines, JSON items, CSV records."""
    path = DATA / relative
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        if ".jsonl" in path.suffixes:
            return sum(1 for line in f if line.strip())
        if ".csv" in path.suffixes:
            return sum(1 for _ in csv.DictReader(f))
        document = json.load(f)
    return len(document) if isinstance(document, list) else 1


def read(relative: str, **options: object) -> SourceRows:
    return read_source(SourceConfig(path=relative, **options), base_dir=DATA)


def meta(frame: pl.DataFrame) -> list[dict]:
    return [json.loads(m) for m in frame["meta"]]


CASES = [
    (BITEXT, {"mapping": BITEXT_MAPPING}, "sft"),
    ("hh_rlhf/test.jsonl.gz", {}, "preference"),
    ("llamafactory_demo/alpaca_en_demo.json", {}, "sft"),
    ("llamafactory_demo/dpo_en_demo.json", {}, "preference"),
    ("llamafactory_demo/kto_en_demo.json", {}, "feedback"),
    ("llamafactory_demo/v1_sft_demo.jsonl", {}, "sft"),
    ("llamafactory_demo/v1_dpo_demo.jsonl", {}, "preference"),
    ("llamafactory_demo/glaive_toolcall_en_demo.json", {}, "sft"),
    ("llamafactory_demo/identity.json", {}, "sft"),
    ("llamafactory_demo/oaast_sft_zh.json", {}, "sft"),
    ("dialogstudio_samples/ShareGPT__original_example.json", {}, "sft"),
    ("axolotl_fixture/conversation.json", {}, "sft"),
    ("fastchat/dummy_conversation.json", {}, "sft"),
]


@pytest.mark.parametrize(("relative", "options", "kind"), CASES, ids=[c[0].split("/")[-1] for c in CASES])
def test_every_input_row_is_converted_or_removed_with_a_reason(relative: str, options: dict, kind: str) -> None:
    rows = read(relative, **options)
    assert rows.kind == kind
    assert rows.files == [relative]
    assert rows.valid.height + rows.invalid.height == count_rows(relative)
    assert rows.invalid.height == 0, rows.invalid.select("reason", "detail").head()
    assert set(rows.valid["source"]) == {relative}
    assert [m["line"] for m in meta(rows.valid)] == list(range(1, rows.valid.height + 1))


def test_bitext_maps_columns_keeps_the_rest_in_meta_and_keeps_label_imbalance() -> None:
    rows = read(BITEXT, mapping=BITEXT_MAPPING)
    counts = dict(rows.valid["label"].value_counts().iter_rows())
    assert len(counts) == 11
    assert (counts["ACCOUNT"], counts["NEWSLETTER"]) == (1041, 142)
    first = meta(rows.valid)[0]
    assert first["intent"] == "cancel_order" and first["line"] == 1
    assert rows.valid["messages"][0].to_list()[0] == {
        "role": "user",
        "content": "how can I cancel purchase 113542617735902?",
    }
    # CRLF inside quoted fields stays inside the answer instead of splitting the row.
    assert "\r\n" in rows.valid["messages"][0][1]["content"]


def _transcript(messages: list[dict]) -> str:
    speaker = {"user": "Human", "assistant": "Assistant"}
    return " ".join(f"{speaker[m['role']]}: {m['content']}" for m in messages).split()


def test_hh_rlhf_chosen_and_rejected_share_the_prompt_and_differ_in_the_last_answer() -> None:
    rows = read("hh_rlhf/test.jsonl.gz")
    raw = [json.loads(line) for line in gzip.decompress((DATA / "hh_rlhf/test.jsonl.gz").read_bytes()).splitlines()]
    mismatched = 0
    for record, source, info in zip(rows.valid.iter_rows(named=True), raw, meta(rows.valid), strict=True):
        assert record["chosen"][0]["role"] == record["rejected"][0]["role"] == "assistant"
        assert _transcript(record["prompt"] + record["chosen"]) == source["chosen"].split()
        if info.get("prefix_mismatch"):
            mismatched += 1
        else:
            assert _transcript(record["prompt"] + record["rejected"]) == source["rejected"].split()
    assert mismatched == 5  # upstream rows whose two transcripts were edited before the last answer


def test_glaive_tool_calls_become_assistant_turns_and_observations_tool_turns() -> None:
    relative = "llamafactory_demo/glaive_toolcall_en_demo.json"
    raw = json.loads((DATA / relative).read_text())
    rows = read(relative)
    roles = rows.valid.select(pl.col("messages").list.eval(pl.element().struct.field("role"))).explode("messages")
    observations = sum(m["from"] == "observation" for row in raw for m in row["conversations"])
    assert roles["messages"].value_counts().filter(pl.col("messages") == "tool")["count"][0] == observations
    first_call = next(m["value"] for m in raw[0]["conversations"] if m["from"] == "function_call")
    assert {"role": "assistant", "content": first_call} in rows.valid["messages"][0].to_list()
    assert meta(rows.valid)[0]["tools"] == raw[0]["tools"]


def test_oaast_history_gives_earlier_turns() -> None:
    relative = "llamafactory_demo/oaast_sft_zh.json"
    raw = json.loads((DATA / relative).read_text(encoding="utf-8"))
    rows = read(relative)
    lengths = rows.valid["messages"].list.len().to_list()
    assert lengths == [2 * (len(r.get("history") or []) + 1) for r in raw]
    assert max(lengths) > 2
    with_history = next(i for i, r in enumerate(raw) if r.get("history"))
    assert rows.valid["messages"][with_history][0]["content"] == raw[with_history]["history"][0][0]


def test_alpaca_input_is_appended_to_the_instruction_after_a_blank_line() -> None:
    relative = "llamafactory_demo/alpaca_en_demo.json"
    raw = json.loads((DATA / relative).read_text())
    i = next(i for i, r in enumerate(raw) if r["input"])
    user = read(relative).valid["messages"][i][0]["content"]
    assert user == f"{raw[i]['instruction']}\n\n{raw[i]['input']}"


def test_kto_labels_become_thumbs_up_and_down() -> None:
    relative = "llamafactory_demo/kto_en_demo.json"
    raw = json.loads((DATA / relative).read_text())
    rows = read(relative)
    assert rows.valid["feedback"].to_list() == ["up" if r["label"] else "down" for r in raw]
    assert rows.valid["completion"].list.len().unique().to_list() == [1]


def test_llamafactory_v1_typed_parts_become_text_and_loss_weights_stay_in_meta() -> None:
    sft = read("llamafactory_demo/v1_sft_demo.jsonl")
    assert sft.valid["messages"][0].to_list()[0] == {"role": "user", "content": "hi"}
    assert meta(sft.valid)[0]["loss_weight"] == [0.0, 1.0]
    dpo = read("llamafactory_demo/v1_dpo_demo.jsonl")
    assert dpo.valid["prompt"][0].struct.field("role").to_list() == ["system", "user"]
    assert dpo.valid["chosen"].list.len().unique().to_list() == [1]
    raw = json.loads((DATA / "llamafactory_demo/v1_dpo_demo.jsonl").read_text().splitlines()[0])
    kept = meta(dpo.valid)[0]["message_extras"]
    assert kept["chosen_messages"] == [{"loss_weight": m["loss_weight"]} for m in raw["chosen_messages"]]


def test_sharegpt_samples_keep_long_multi_turn_conversations() -> None:
    relative = "dialogstudio_samples/ShareGPT__original_example.json"
    raw = json.loads((DATA / relative).read_text())
    rows = read(relative)
    assert rows.valid["messages"].list.len().to_list() == [len(r["conversations"]) for r in raw]
    assert rows.valid["messages"].list.len().max() >= 10
    assert meta(rows.valid)[0]["id"] == "QWJhYvA_0"


def test_seed_tasks_with_nested_instances_are_not_guessed_and_the_error_lists_formats() -> None:
    with pytest.raises(
        InputError, match=r"(?s)seed_tasks\.jsonl.*instances, instruction.*alpaca: instruction \+ output"
    ):
        read("alpaca_seed_tasks/seed_tasks.jsonl")


ROUND_TRIPS = [
    ("llamafactory_demo/glaive_toolcall_en_demo.json", "sharegpt"),
    ("llamafactory_demo/glaive_toolcall_en_demo.json", "messages"),
    ("llamafactory_demo/oaast_sft_zh.json", "alpaca"),
    ("llamafactory_demo/oaast_sft_zh.json", "sharegpt"),
    ("fastchat/dummy_conversation.json", "alpaca"),
    ("llamafactory_demo/dpo_en_demo.json", "sharegpt"),
    ("hh_rlhf/test.jsonl.gz", "messages"),
    (BITEXT, "alpaca"),
    (BITEXT, "messages"),
]


@pytest.mark.parametrize(("relative", "format"), ROUND_TRIPS, ids=[f"{r.split('/')[-1]}-{f}" for r, f in ROUND_TRIPS])
def test_export_then_read_back_gives_the_same_ids(relative: str, format: str, tmp_path: Path) -> None:
    rows = read(relative, mapping=BITEXT_MAPPING) if relative == BITEXT else read(relative)
    out = tmp_path / f"export.{format}.jsonl"
    assert write_records(rows.valid, kind=rows.kind, format=format, path=out) == rows.valid.height
    again = read_source(SourceConfig(path=str(out)), base_dir=tmp_path)
    assert again.kind == rows.kind
    assert detect_format([json.loads(line) for line in out.open()], path=str(out)) == (
        "sharegpt_preference" if format == "sharegpt" and rows.kind == "preference" else format
    )
    assert again.valid["id"].to_list() == rows.valid["id"].to_list()
