"""The embedding cache survives damage: unreadable shards are cache misses, writes leave no temporary files."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curate.embeddings import embed, encoder_of
from curate.records import build_frame
from curate.stages.base import StageContext
from curate.stages.dedup_semantic import DedupSemantic, DedupSemanticConfig
from curate.store import Store

TEXTS = ["where is my card", "my card has not arrived yet", "has my card arrived", "I want to close my account"]


def _semantic(store: Store, tmp_path: Path):
    frame = build_frame("sft", [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "Okay."}]}
                                for t in TEXTS])[0]
    ctx = StageContext(dataset="t", kind="sft", base_dir=tmp_path, store=store, stage_id="dedup_semantic")
    return DedupSemantic(DedupSemanticConfig(text="user", threshold=0.8, encoder="minilm")).apply(frame, ctx)


def _model_folder(cache: Path) -> Path:
    return cache / encoder_of("minilm").key


def test_empty_or_corrupt_shards_are_cache_misses_named_in_a_warning(tmp_path: Path, caplog) -> None:
    store = Store(tmp_path / "store")
    first = _semantic(store, tmp_path)
    folder = _model_folder(store.cache_dir("embeddings"))
    (shard,) = folder.glob("*.npz")
    shard.write_bytes(shard.read_bytes()[:100])  # truncated
    (folder / "empty.npz").write_bytes(b"")
    (folder / "garbage.npz").write_bytes(b"not a numpy archive at all")

    with caplog.at_level(logging.WARNING, logger="curate.embeddings"):
        again = _semantic(store, tmp_path)
    assert again.removed.equals(first.removed) and again.kept.equals(first.kept)
    warned = " ".join(r.getMessage() for r in caplog.records)
    for bad in (shard, folder / "empty.npz", folder / "garbage.npz"):
        assert str(bad) in warned
    assert not (folder / "empty.npz").exists() and not (folder / "garbage.npz").exists()
    (rewritten,) = folder.glob("*.npz")  # the texts were embedded again and cached again
    assert rewritten.name == shard.name and rewritten.stat().st_size > 100


def test_a_failed_shard_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch, caplog) -> None:
    expected = embed(TEXTS)

    def disk_full(file: object, **arrays: object) -> None:
        file.write(b"PK\x03\x04 half a shard")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with caplog.at_level(logging.WARNING, logger="curate.embeddings"):
        vectors = embed(TEXTS, cache_dir=tmp_path)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert "No space left on device" in caplog.text
    assert sorted(p.name for p in _model_folder(tmp_path).iterdir()) == []

    def interrupted(file: object, **arrays: object) -> None:
        file.write(b"PK\x03\x04 half a shard")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        embed(TEXTS, cache_dir=tmp_path)
    assert sorted(p.name for p in _model_folder(tmp_path).iterdir()) == []


KILLED_WRITER = """
import os, signal, sys
import numpy as np
from pathlib import Path
from curate import embeddings

def killed(file, **arrays):
    file.write(b"PK\\x03\\x04 half a shard")
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)

np.savez = killed
keys = np.array([b"k" * 16], dtype="S16")
embeddings._write_shard(Path(sys.argv[1]), keys, np.ones((1, 384), dtype=np.float32))
"""


def test_a_writer_killed_mid_write_leaves_no_temporary_file_after_the_next_use(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == -9, done.stderr
    assert len(list(folder.glob("*.tmp"))) == 1, "the killed writer left its temporary file"

    vectors = embed(TEXTS[:2], cache_dir=tmp_path)
    assert vectors.shape == (2, 384)
    assert list(folder.glob("*.tmp")) == []
    assert len(list(folder.glob("*.npz"))) == 1
