"""Export folders `datasets` reads back (parquet, hf) and the hh_rlhf / kto JSONL writers, read back by curate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import yaml

from curate.config import SourceConfig
from curate.errors import InputError
from curate.formats import read_source, write_records
from curate.pipeline import run_pipeline
from curate.report import export_folder
from curate.store import Store

from helpers import SUPPORT_ROWS, write_jsonl, write_pipeline

CURATE = str(Path(sys.executable).with_name("curate"))
CHAT = [{"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "It ships today."}]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    write_jsonl(tmp_path / "data.jsonl", SUPPORT_ROWS)
    run_pipeline(write_pipeline(tmp_path), store_root=tmp_path / "store")
    return Store(tmp_path / "store")


def _rows(dataset: datasets.DatasetDict) -> dict[str, list[dict]]:
    return {split: sorted(part.to_list(), key=lambda r: r["id"]) for split, part in dataset.items()}


def _kept(store: Store) -> dict[str, list[dict]]:
    kept = store.kept("support@0")
    return {split: sorted(kept.filter(kept["split"] == split).drop("split").to_dicts(), key=lambda r: r["id"])
            for split in ("train", "validation", "test") if (kept["split"] == split).any()}  # fmt: skip


def test_parquet_folder_loads_back_with_datasets_to_the_same_rows(store: Store, tmp_path: Path) -> None:
    counts = export_folder(store, "support@0", tmp_path / "out", format="parquet", license="mit")
    assert sorted(p.name for p in (tmp_path / "out" / "data").iterdir()) == sorted(f"{s}-00000-of-00001.parquet" for s in counts)
    expected = _kept(store)
    assert _rows(datasets.load_dataset("parquet", data_dir=str(tmp_path / "out"))) == expected
    assert _rows(datasets.load_dataset(str(tmp_path / "out"))) == expected  # through the card's configs
    card = yaml.safe_load((tmp_path / "out" / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert card["license"] == "mit" and card["size_categories"] == ["n<1K"]


def test_hf_folder_loads_back_from_disk_to_the_same_rows(store: Store, tmp_path: Path) -> None:
    export_folder(store, "support@0", tmp_path / "out", format="hf")
    assert _rows(datasets.load_from_disk(str(tmp_path / "out"))) == _kept(store)
    card = yaml.safe_load((tmp_path / "out" / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert card["configs"][0]["data_files"][0] == {"split": "train", "path": "train/data-*.arrow"}


def test_export_refuses_a_folder_that_is_not_empty(store: Store, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match=r"Cannot export into .*out: it is a file or a folder that is not empty"):
        export_folder(store, "support@0", tmp_path / "out", format="parquet")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_export_command_writes_a_parquet_folder_with_a_card(store: Store, tmp_path: Path) -> None:
    out = subprocess.run(
        [CURATE, "datasets", "export", "support@0", "--format", "parquet", "-o", str(tmp_path / "pq"), "--store", str(store.root)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "rows to" in out and (tmp_path / "pq" / "README.md").is_file()
    assert sum(len(v) for v in _rows(datasets.load_dataset("parquet", data_dir=str(tmp_path / "pq"))).values()) == store.kept("support@0").height


def _read(path: Path, **options: object):
    return read_source(SourceConfig(path=path.name, **options), base_dir=path.parent)


def test_hh_rlhf_export_reads_back_to_the_same_preference_records(tmp_path: Path) -> None:
    system = [{"role": "system", "content": "Be brief."}]
    rows = [{"prompt": system + CHAT + [{"role": "user", "content": "And the refund?"}],
             "chosen": [{"role": "assistant", "content": "Five days."}], "rejected": [{"role": "assistant", "content": "No."}]},
            {"prompt": CHAT[:1], "chosen": CHAT[1:], "rejected": [{"role": "assistant", "content": "Ask later."}]}]  # fmt: skip
    before = _read(write_jsonl(tmp_path / "p.jsonl", rows)).valid
    assert write_records(before, kind="preference", format="hh_rlhf", path=tmp_path / "hh.jsonl") == 2
    first = json.loads((tmp_path / "hh.jsonl").read_text().splitlines()[0])
    assert first["rejected"] == "Be brief.\n\nHuman: Where is my order?\n\nAssistant: It ships today.\n\nHuman: And the refund?\n\nAssistant: No."
    after = _read(tmp_path / "hh.jsonl", format="hh_rlhf").valid
    columns = ["id", "prompt", "chosen", "rejected"]
    assert after.select(columns).to_dicts() == before.select(columns).to_dicts()


def test_kto_export_writes_preference_as_a_desirable_and_an_undesirable_row(tmp_path: Path) -> None:
    rows = [{"prompt": CHAT[:1], "chosen": CHAT[1:], "rejected": [{"role": "assistant", "content": "Ask later."}]}]
    before = _read(write_jsonl(tmp_path / "p.jsonl", rows)).valid
    assert write_records(before, kind="preference", format="kto", path=tmp_path / "kto.jsonl") == 2
    after = _read(tmp_path / "kto.jsonl", format="kto").valid
    assert after["feedback"].to_list() == ["up", "down"]
    assert [c[0]["content"] for c in after["completion"]] == ["It ships today.", "Ask later."]
    assert after["prompt"].to_list() == [CHAT[:1], CHAT[:1]]


def test_kto_export_of_feedback_uses_the_verdict_and_names_a_row_without_one(tmp_path: Path) -> None:
    rows = [{"prompt": CHAT[:1], "completion": CHAT[1:], "feedback": {"thumbs": "down"}},
            {"prompt": CHAT[:1], "completion": [{"role": "assistant", "content": "Soon."}], "feedback": {"rating": 5}}]  # fmt: skip
    feedback = _read(write_jsonl(tmp_path / "f.jsonl", rows)).valid
    write_records(feedback, kind="feedback", format="kto", path=tmp_path / "kto.jsonl")
    assert [json.loads(line)["label"] for line in (tmp_path / "kto.jsonl").read_text().splitlines()] == [False, True]
    silent = _read(write_jsonl(tmp_path / "g.jsonl", [{"prompt": CHAT[:1], "completion": CHAT[1:], "feedback": {"rating": 3}}])).valid
    with pytest.raises(InputError, match=rf"Record {silent['id'][0]} cannot be written as kto: its feedback gives no verdict \(neutral_rating\)"):
        write_records(silent, kind="feedback", format="kto", path=tmp_path / "none.jsonl")


def test_sft_records_cannot_be_exported_as_hh_rlhf_or_kto(store: Store, tmp_path: Path) -> None:
    for format in ("hh_rlhf", "kto"):
        with pytest.raises(InputError, match=rf"The {format} format cannot hold sft records"):
            write_records(store.kept("support@0"), kind="sft", format=format, path=tmp_path / "x.jsonl")
