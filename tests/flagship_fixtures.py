"""The flagship pipeline run once per test session into a tmp store: support@0, and support@1 with one extra stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.pipeline import run_pipeline
from curate.store import Store

REPO = Path(__file__).resolve().parents[1]
FLAGSHIP = REPO / "pipelines" / "support.yaml"
# support@1 adds this stage at the end: assistant answers over 40 words are `too_long`.
EXTRA_STAGE = "  - quality: {length: {assistant: {max_words: 40}}}\n"


@pytest.fixture(scope="session")
def flagship_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store holding support@0 (pipelines/support.yaml as shipped) and support@1 (plus ``EXTRA_STAGE``)."""
    root = tmp_path_factory.mktemp("flagship") / "store"
    benchmarks = REPO.parent / "shared" / "data"
    benchmarks = benchmarks if benchmarks.is_dir() else None  # decontaminate skips missing benchmarks
    run_pipeline(FLAGSHIP, store_root=root, benchmarks_dir=benchmarks)
    text = FLAGSHIP.read_text(encoding="utf-8")
    text = text.replace("path: data/support_sample.jsonl", f"path: {FLAGSHIP.parent / 'data' / 'support_sample.jsonl'}")
    text = text.replace("output: support", EXTRA_STAGE + "output: support")
    variant = root.parent / "support_strict.yaml"
    variant.write_text(text, encoding="utf-8")
    run_pipeline(variant, store_root=root, benchmarks_dir=benchmarks)
    return Store(root)
