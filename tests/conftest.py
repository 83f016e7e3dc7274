"""Shared fixtures: the real public data folder and a fresh store per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` next to the repo (real public data); tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is not present")
    return SHARED_DATA


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """An empty dataset store root under tmp_path."""
    return tmp_path / "store"


from lm_fixtures import tiny_lm, train_store  # noqa: E402,F401 - session fixtures shared by train and eval tests
