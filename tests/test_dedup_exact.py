"""``dedup_exact`` against a plain row-by-row reference, on real conversations with many variants."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from curate.records import SCHEMAS, conversation_columns
from curate.stages.base import StageContext
from curate.stages.dedup_exact import DedupExact, DedupExactConfig, first_equal

# Unicode White_Space: what polars (Rust) folds and strips. Python's \s also matches \x1c-\x1f.
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
WHITE_SPACE += "\u2028\u2029\u202f\u205f\u3000"
RUNS = re.compile(f"[{WHITE_SPACE}]+")
OPTIONS = [
    {},
    {"lowercase": False},
    {"text": "user"},
    {"text": "assistant"},
    {"text": "user", "lowercase": False},
    {"text": "assistant", "lowercase": False},
]


def reference_text(row: dict, kind: str, *, text: str = "all", lowercase: bool = True) -> str | None:
    """Row by row: the compared contents joined, whitespace runs folded, ends stripped, lowercased."""
    lists = [row[column] for column in conversation_columns(kind)]
    if any(messages is None for messages in lists):
        return None
    contents = [
        m["content"] for messages in lists for m in messages
        if (text == "all" or m["role"] == text) and m["content"] is not None
    ]
    folded = RUNS.sub(" ", "\n".join(contents)).strip(WHITE_SPACE)
    return folded.lower() if lowercase else folded


def reference(frame: pl.DataFrame, kind: str, **options: object) -> tuple[list[str], list[tuple[str, str | None]]]:
    """Kept ids, and removed ids with their detail: the first row of every text is kept."""
    first: dict[str | None, str] = {}
    kept, removed = [], []
    for row in frame.iter_rows(named=True):
        key = reference_text(row, kind, **options)
        if key in first:
            removed.append((row["id"], None if key is None else json.dumps({"duplicate_of": first[key]})))
        else:
            first[key] = row["id"]
            kept.append(row["id"])
    return kept, removed


def run_stage(frame: pl.DataFrame, kind: str, **options: object) -> tuple[list[str], list[tuple[str, str | None]]]:
    ctx = StageContext(dataset="test", kind=kind, base_dir=Path("."))
    result = DedupExact(DedupExactConfig(**options)).apply(frame, ctx)
    kept = frame["id"].is_in(result.kept["id"].implode())
    assert_frame_equal(result.kept, frame.filter(kept))
    assert_frame_equal(result.removed.drop("reason", "detail"), frame.filter(~kept))
    assert set(result.removed["reason"]) <= {"exact_duplicate"}
    return result.kept["id"].to_list(), result.removed.select("id", "detail").rows()


def turns(user: str, assistant: str, *more: tuple[str, str | None]) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}] + [
        {"role": role, "content": content} for role, content in more
    ]


def variants(user: str, assistant: str) -> list[list[dict]]:
    """One conversation written many ways: some normalise to it, some only look alike."""
    return [
        turns(user, assistant),
        turns(user, assistant),
        turns(user.upper(), assistant),
        turns(user, assistant.title()),
        turns(f"  {user}\t", assistant.replace("\n", " \n\n ")),
        turns(user.replace(" ", "\u00a0"), assistant.replace(" ", "\u3000 ")),
        turns(user.replace(" ", "  \u2028"), assistant + "\r\n"),
        turns(user, assistant.replace(" ", "\x1c")),  # not White_Space: a different text
        turns(user, assistant, ("assistant", "   "), ("assistant", "")),  # empty turns vanish
        turns(user, assistant, ("system", "Be brief.")),  # a system turn is compared under text: all
        turns(user, assistant, ("user", None)),  # a missing content is skipped
        turns(user + " " + assistant.split(" ")[0], " ".join(assistant.split(" ")[1:])),  # a moved boundary
        turns(user + "!", assistant),
    ]


UNICODE = [
    turns("Où est la café?", "Ici."),
    turns("Où est la cafe\u0301?", "Ici."),  # NFD: not folded to NFC, so a different text
    turns("ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ", "Ναι."),
    turns("οδος και σοφια", "Ναι."),
    turns("ὀδός", "İstanbul"),
    turns("ὈΔΌΣ", "i̇stanbul"),
    turns("STRASSE", "Straße"),
    turns("strasse", "straße"),
]


def sft_frame(conversations: list[list[dict]], *, seed: int) -> pl.DataFrame:
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    return pl.DataFrame(
        {
            "id": [f"row{i}" for i in range(len(order))],
            "source": "test",
            "meta": "{}",
            "messages": [conversations[i] for i in order],
            "label": None,
        },
        schema=SCHEMAS["sft"],
    )


@pytest.fixture(scope="module")
def bitext(shared_data: Path) -> pl.DataFrame:
    path = shared_data / "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"
    return pl.read_csv(path, infer_schema=False).select("instruction", "response")


@pytest.fixture(scope="module")
def repeated_turns(bitext: pl.DataFrame) -> pl.DataFrame:
    """Variants of 150 real conversations: most turns repeat."""
    conversations = [v for user, assistant in bitext.head(150).rows() for v in variants(user, assistant)]
    return sft_frame(conversations + UNICODE + UNICODE, seed=1)


@pytest.fixture(scope="module")
def distinct_turns(bitext: pl.DataFrame) -> pl.DataFrame:
    """1,000 real conversations, a few repeated or varied: most turns are distinct."""
    rows = bitext.slice(200, 1000).rows()
    conversations = [turns(user, assistant) for user, assistant in rows]
    for user, assistant in rows[:30]:
        conversations += variants(user, assistant)[1:8]
    return sft_frame(conversations + UNICODE, seed=2)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: json.dumps(o))
@pytest.mark.parametrize("frame_name", ["repeated_turns", "distinct_turns"])
def test_dedup_exact_keeps_and_removes_what_the_row_by_row_reference_does(
    frame_name: str, options: dict, request: pytest.FixtureRequest
) -> None:
    frame = request.getfixturevalue(frame_name)
    kept, removed = run_stage(frame, "sft", **options)
    assert (kept, removed) == reference(frame, "sft", **options)
    assert len(removed) > 100 if frame_name == "repeated_turns" else len(removed) > 20


@pytest.mark.parametrize("frame_name", ["repeated_turns", "distinct_turns"])
def test_dedup_exact_texts_are_the_reference_normalisation_row_for_row(
    frame_name: str, request: pytest.FixtureRequest
) -> None:
    frame = request.getfixturevalue(frame_name)
    for options in OPTIONS:
        texts = DedupExact(DedupExactConfig(**options)).texts(frame, "sft")
        expected = [reference_text(row, "sft", **options) for row in frame.iter_rows(named=True)]
        assert_series_equal(texts, pl.Series("messages", expected, pl.String), check_names=False)


def test_dedup_exact_compares_variants_case_whitespace_and_unicode_as_documented() -> None:
    frame = sft_frame(variants("How do I Cancel my order?", "Go to\n\nOrders.") + UNICODE, seed=0)
    order = {row["id"]: i for i, row in enumerate(frame.iter_rows(named=True))}
    kept, removed = run_stage(frame, "sft")
    assert (kept, removed) == reference(frame, "sft")
    # Variants: the original, the \x1c one, the system turn and the "!" stay (9 of 13 are one text);
    # Unicode: NFC and NFD cafés stay apart, each other pair is one text once lowercased.
    assert len(kept) == 4 + 5
    assert all(order[json.loads(detail)["duplicate_of"]] < order[row] for row, detail in removed)


def test_dedup_exact_compares_every_conversation_column_of_a_preference_row() -> None:
    prompt = [{"role": "user", "content": "Pick one."}]
    rows = [
        (prompt, [{"role": "assistant", "content": "A"}], [{"role": "assistant", "content": "B"}]),
        (prompt, [{"role": "assistant", "content": " a "}], [{"role": "assistant", "content": "b"}]),
        (prompt, [{"role": "assistant", "content": "B"}], [{"role": "assistant", "content": "A"}]),
        (
            [{"role": "user", "content": "Pick one. A"}],
            [{"role": "assistant", "content": ""}],
            [{"role": "assistant", "content": "B"}],
        ),
        (None, [{"role": "assistant", "content": "A"}], [{"role": "assistant", "content": "B"}]),
        (None, [{"role": "assistant", "content": "C"}], [{"role": "assistant", "content": "D"}]),
    ]
    frame = pl.DataFrame(
        [
            {"id": f"p{i}", "source": "t", "meta": "{}", "prompt": p, "chosen": c, "rejected": r}
            for i, (p, c, r) in enumerate(rows * 3)
        ],
        schema=SCHEMAS["preference"],
    )
    for options in OPTIONS:
        assert run_stage(frame, "preference", **options) == reference(frame, "preference", **options)
    kept, removed = run_stage(frame, "preference")
    assert kept == ["p0", "p2", "p4"]
    assert ("p5", None) in removed  # a row with no prompt duplicates the first such row, without a detail


def test_first_equal_is_exact_when_hashes_collide() -> None:
    values = pl.Series(["ab", "ba", "ab", None, "ba", "c", None, "ab"])
    expected = [0, 1, 0, 3, 1, 5, 3, 0]
    assert first_equal(values.hash(), values.gather).to_list() == expected
    # Every value hashed to 0, or to its length: matches are compared as values, so results stay exact.
    assert first_equal(pl.zeros(len(values), pl.UInt64, eager=True), values.gather).to_list() == expected
    assert first_equal(values.str.len_bytes(), values.gather).to_list() == expected


def test_dedup_exact_rows_with_no_compared_turn_share_the_empty_text() -> None:
    prompts = [[{"role": "user", "content": f"Question {i % 3}?"}] for i in range(6)] + [[], None]
    frame = pl.DataFrame(
        [{"id": f"q{i}", "source": "t", "meta": "{}", "prompt": p} for i, p in enumerate(prompts)],
        schema=SCHEMAS["prompt"],
    )
    for options in OPTIONS:
        assert run_stage(frame, "prompt", **options) == reference(frame, "prompt", **options)
    kept, removed = run_stage(frame, "prompt", text="assistant")
    assert kept == ["q0", "q7"]  # "" for every prompt with a list, null for the null one
    assert removed[-1] == ("q6", '{"duplicate_of": "q0"}')


def test_dedup_exact_passes_an_empty_frame_through() -> None:
    frame = pl.DataFrame(schema=SCHEMAS["sft"])
    result = DedupExact(DedupExactConfig()).apply(frame, StageContext(dataset="t", kind="sft", base_dir=Path(".")))
    assert result.kept.schema == frame.schema and result.kept.is_empty() and result.removed.is_empty()
