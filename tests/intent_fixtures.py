"""Module fixtures for the loop's labeling tests: BANKING77 intent rows and a real ``head`` run on them.

``banking_head``: 5 BANKING77 intents x 24 rows (../shared/data) committed as ``intents@0`` (sft:
user = text, assistant = category, label = category, split 70/15/15) and a ``head`` run on the
bundled all-MiniLM-L6-v2 encoder trained from it (a few seconds on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["INTENTS", "BankingHead", "banking_head"]

INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_failed"]


@dataclass(frozen=True)
class BankingHead:
    """Where the intent rows and the head run are."""

    store: Path
    runs_root: Path
    run_id: str
    ref: str  # the sft version the head was trained on


@pytest.fixture(scope="module")
def banking_head(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> BankingHead:
    """``intents@0`` and a head run trained on it."""
    import polars as pl
    import yaml

    from curate.pipeline import run_pipeline
    from curate.train.recipe import Recipe
    from curate.train.runner import train

    folder = tmp_path_factory.mktemp("banking-head")
    banking = pl.read_csv(shared_data / "banking77" / "train.csv")
    banking.filter(pl.col("category").is_in(INTENTS) & (pl.int_range(pl.len()).over("category") < 24)).write_csv(
        folder / "intents.csv"
    )
    spec = {
        "source": {"path": "intents.csv", "format": "table",
                   "mapping": {"user": "text", "assistant": "category", "label": "category"}},
        "stages": [{"split": {"test": 0.15, "validation": 0.15, "stratify_by": "label", "seed": 0}}],
        "output": "intents",
    }  # fmt: skip
    (folder / "intents.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    run_pipeline(folder / "intents.yaml", store_root=folder / "store")
    recipe = Recipe.model_validate({
        "model": "all-MiniLM-L6-v2", "method": "sft", "adapter": "head", "dataset": "intents@0", "name": "intent-head",
        "output_dir": str(folder / "runs"), "training": {"epochs": 30, "batch_size": 32, "learning_rate": 1e-2},
    })  # fmt: skip
    run = train(recipe, store=folder / "store")
    return BankingHead(store=folder / "store", runs_root=folder / "runs", run_id=run.run_id, ref="intents@0")
