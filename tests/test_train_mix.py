"""Data mixing (recipe `mix:`): weights, counts, determinism and the manifest, on real store versions.

The store holds `support@0` (Bitext, split 80/10/10), `general@0` and `general@1` (two commits
of LLaMA-Factory's Alpaca demo, different rows) and `prefs@0` (HH-RLHF preference pairs), all
written by real pipeline runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from curate.errors import ConfigError
from curate.store import Store
from curate.train.data import prepare_data
from curate.train.mix import mix_counts, mix_train, pin_mix, sample_indices
from curate.train.recipe import MixSource, Recipe
from curate.train.runner import train

FAST = {"max_steps": 2, "batch_size": 4, "max_length": 64, "eval_strategy": "no", "save_strategy": "no"}


def _commit(folder: Path, store: Path, name: str, source: dict, *, split: bool = False) -> None:
    from curate.pipeline import run_pipeline

    spec = {"source": source, "stages": [{"split": {"test": 0.1, "validation": 0.1, "seed": 0}}] if split else [], "output": name}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    run_pipeline(path, store_root=store)


@pytest.fixture(scope="module")
def mix_store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    import gzip

    import polars as pl

    folder = tmp_path_factory.mktemp("mix-data")
    store = folder / "store"
    csv = shared_data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    pl.read_csv(csv, n_rows=100, infer_schema=False).write_csv(folder / "bitext.csv")
    _commit(folder, store, "support", {"path": "bitext.csv", "format": "table", "kind": "sft",
                                       "mapping": {"user": "instruction", "assistant": "response"}}, split=True)  # fmt: skip
    alpaca = json.loads((shared_data / "llamafactory_demo" / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    for rows in (alpaca[:20], alpaca[20:70]):  # general@0: 20 rows, general@1: 50 other rows
        (folder / "alpaca.json").write_text(json.dumps(rows), encoding="utf-8")
        _commit(folder, store, "general", {"path": "alpaca.json", "format": "alpaca"})
    with gzip.open(shared_data / "hh_rlhf" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        (folder / "hh.jsonl").write_text("".join(line for _, line in zip(range(20), fh, strict=False)), encoding="utf-8")
    _commit(folder, store, "prefs", {"path": "hh.jsonl", "format": "hh_rlhf"})
    return store


def _mix(store: Path, mix: list[dict], *, size: int | None = None, seed: int = 0) -> tuple:
    st = Store(store)
    data = prepare_data(st.load("support@0"), method="sft", kind="sft", ref="support@0")
    pinned = pin_mix(st, [MixSource.model_validate(m) for m in mix])
    requested = ["support@0", *(m["dataset"] for m in mix)]
    return data, *mix_train(data, store=st, ref="support@0", kind="sft", method="sft", mix=pinned, requested=requested,
                            size=size, seed=seed)  # fmt: skip


def _keys(rows: list) -> list[str]:
    return [json.dumps(r, sort_keys=True) for r in rows]


def test_weights_are_fractions_of_the_mixed_split_with_every_primary_row_once() -> None:
    assert mix_counts(1000, [0.15], size=None) == [1000, 176]  # 176 / 1176 = 0.1497
    assert mix_counts(80, [0.1, 0.2], size=None) == [80, 11, 23]
    assert mix_counts(1000, [0.15], size=400) == [340, 60]
    rng = np.random.default_rng(0)
    assert sorted(sample_indices(5, 5, rng=rng)) == [0, 1, 2, 3, 4]
    over = sample_indices(4, 10, rng=rng)  # every row twice, two rows a third time
    assert sorted(np.bincount(over, minlength=4)) == [2, 2, 3, 3]


def test_mix_draws_the_counted_rows_from_each_version_deterministically(mix_store: Path) -> None:
    st = Store(mix_store)
    data, mixed, manifest = _mix(mix_store, [{"dataset": "general", "weight": 0.25}])
    primary_rows = len(data.train)
    general = set(_keys(prepare_data(st.load("general@1"), method="sft", kind="sft", ref="general@1").train["messages"]))
    keys = _keys(mixed.train["messages"])
    from_general = [k for k in keys if k in general]
    assert len(from_general) == round(primary_rows / 3) and len(set(from_general)) == len(from_general)  # no repeats
    assert sorted(k for k in keys if k not in general) == sorted(_keys(data.train["messages"]))  # the primary, once
    assert mixed.validation["messages"] == data.validation["messages"]  # validation from the primary only
    assert manifest == {"size": primary_rows + round(primary_rows / 3), "seed": 0, "sources": [
        {"ref": "support@0", "requested": "support@0", "weight": 0.75, "available": primary_rows, "rows": primary_rows,
         "with_replacement": False},
        {"ref": "general@1", "requested": "general", "weight": 0.25, "available": 50, "rows": round(primary_rows / 3),
         "with_replacement": False},
    ]}  # fmt: skip
    assert _mix(mix_store, [{"dataset": "general", "weight": 0.25}])[1].train["messages"] == mixed.train["messages"]
    other_seed = _mix(mix_store, [{"dataset": "general", "weight": 0.25}], seed=1)[1].train["messages"]
    assert set(_keys(other_seed)) & general != set(from_general)


def test_a_small_version_repeats_its_rows_and_the_manifest_says_so(mix_store: Path) -> None:
    _, mixed, manifest = _mix(mix_store, [{"dataset": "general@0", "weight": 0.5}], size=100)
    assert [(s["ref"], s["rows"], s["available"], s["with_replacement"]) for s in manifest["sources"]] == [
        ("support@0", 50, 80, False), ("general@0", 50, 20, True)]  # fmt: skip
    assert len(mixed.train) == 100 and manifest["size"] == 100


def test_mixing_another_record_kind_fails_before_any_model_loads(mix_store: Path, tmp_path: Path) -> None:
    recipe = Recipe(model=str(tmp_path / "no-such-model"), dataset="support", mix=[{"dataset": "prefs", "weight": 0.2}],
                    output_dir=str(tmp_path / "runs"))  # fmt: skip
    message = r"mix version prefs@0 holds preference records, but dataset support@0 holds sft records"
    with pytest.raises(ConfigError, match=message):
        train(recipe, store=mix_store)
    with pytest.raises(ConfigError, match=r"mix lists support@0 twice"):
        train(recipe.model_copy(update={"mix": [MixSource(dataset="support", weight=0.2)]}), store=mix_store)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mix": [{"dataset": "a", "weight": 0.6}, {"dataset": "b", "weight": 0.4}]}, r"mix weights add up to 1 \(0.6 \+ 0.4\)"),
        ({"mix": [{"dataset": "a", "weight": 0.1}, {"dataset": "a", "weight": 0.1}]}, "mix lists a version twice"),
        ({"mix_size": 100}, "mix_size sets the size of a mixed train split"),
        ({"mix": [{"dataset": "a", "weight": 0}]}, "greater than 0"),
    ],
)
def test_bad_mix_fails_when_the_recipe_loads(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Recipe.model_validate({"model": "m", **fields})


def test_training_on_a_mix_records_versions_weights_and_rows(mix_store: Path, tiny_lm: Path, tmp_path: Path) -> None:
    recipe = Recipe(model=str(tiny_lm), dataset="support", mix=[{"dataset": "general", "weight": 0.2}],
                    output_dir=str(tmp_path / "runs"), training=FAST)  # fmt: skip
    result = train(recipe, store=mix_store)
    manifest = json.loads((result.path / "manifest.json").read_text())
    primary = len(Store(mix_store).kept("support@0", split="train"))
    added = round(primary * 0.2 / 0.8)
    assert [(s["ref"], s["requested"], s["weight"], s["rows"]) for s in manifest["mix"]["sources"]] == [
        ("support@0", "support", 0.8, primary), ("general@1", "general", 0.2, added)]  # fmt: skip
    assert manifest["dataset"]["rows"] == {"train": primary + added, "validation": len(Store(mix_store).kept("support@0", split="validation"))}
    assert yaml.safe_load((result.path / "recipe.yaml").read_text())["mix"] == [{"dataset": "general@1", "weight": 0.2}]
    assert manifest["status"] == "completed" and result.metrics["global_step"] == 2
