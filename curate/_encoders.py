"""The three sentence encoders behind :func:`curate.embeddings.embed`, and long-text chunking.

* ``minilm``: the sentence-transformers model itself (PyTorch).
* ``onnx``: the same transformer exported to ONNX with int8 weights, run by onnxruntime; mean
  pooling over the attention mask and unit length, as the sentence-transformers model does.
* ``static``: a model2vec model distilled from the same model (the mean of static token vectors).

Texts longer than a contextual encoder's window (256 tokens for MiniLM, special tokens included)
are cut into consecutive windows at token boundaries; each window is embedded and the document's
vector is the token-weighted mean of its windows' vectors, made unit length again. ``static``
has no window: it averages every token of the text, which is the same pooling over all its chunks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from curate._encoder_builds import build
from curate.extras import require_extra

__all__ = ["ENCODERS", "Encoder", "EncoderName", "load_encoder"]

EncoderName = Literal["static", "onnx", "minilm"]
ENCODERS: tuple[str, ...] = ("static", "onnx", "minilm")
Track = Callable[..., Iterable[Any]]


class Encoder:
    """One encoder of one source model: ``key`` names its embedding-cache folder, ``provenance`` says
    what it is (in stage stats); the weights are loaded on the first :meth:`encode`."""

    def __init__(self, name: str, *, source: str, source_key: str, models_dir: Path, device: str | None) -> None:
        self.name, self.source, self.device = name, source, device
        self.path: Path | None = None
        self.provenance: dict[str, Any] = {"encoder": name, "source_model": source}
        if name != "minilm":
            self.path, self.provenance = build(name, source, source_key=source_key, folder=models_dir)
        # the cache folder: a change of weights, builder or pooling is a new folder (vectors never mix)
        self.key = {"minilm": f"minilm-chunked-{source_key}", "onnx": f"{self.path.name if self.path else ''}-chunked",
                    "static": self.path.name if self.path else ""}[name]  # fmt: skip

    def encode(self, texts: list[str], *, batch_size: int, progress: Track | None = None) -> np.ndarray:
        """Unit-length float32 rows, one per text; long texts are pooled over all their windows."""
        model = _weights(self.name, self.source, str(self.path) if self.path else None, self.device)
        if self.name == "static":
            return _unit(model.encode(texts, max_length=None, batch_size=max(batch_size, 1024)).astype(np.float32))
        pieces, owner, weight = _chunks(texts, model.tokenizer, window=model.window)
        order = np.argsort([-len(t) for t in pieces], kind="stable")  # similar lengths share a batch: less padding
        step = batch_size * 8
        starts = range(0, len(pieces), step)
        vectors = np.empty((len(pieces), model.dim), dtype=np.float32)
        for start in progress(starts, description="embedding", total=len(starts)) if progress else starts:
            idx = order[start : start + step]
            vectors[idx] = model.encode([pieces[i] for i in idx], batch_size=batch_size)
        pooled = np.zeros((len(texts), model.dim), dtype=np.float32)
        np.add.at(pooled, owner, vectors * weight[:, None])
        return _unit(pooled)


def load_encoder(name: str, *, source: str, source_key: str, models_dir: Path, device: str | None) -> Encoder:
    """The encoder ``name`` of ``source``; ``static`` and ``onnx`` are built under ``models_dir`` first if absent."""
    return _encoder(name, source, source_key, Path(models_dir), device)


@functools.lru_cache(maxsize=8)
def _encoder(name: str, source: str, source_key: str, models_dir: Path, device: str | None) -> Encoder:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; use one of {', '.join(ENCODERS)}")
    return Encoder(name, source=source, source_key=source_key, models_dir=models_dir, device=device)


def _chunks(texts: list[str], tokenizer: Any, *, window: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts cut at token boundaries into pieces of at most ``window`` tokens: the pieces, the text each
    belongs to, and its weight (its share of a full window)."""
    pieces: list[str] = []
    owner: list[int] = []
    weight: list[float] = []
    for i, text in enumerate(texts):
        # a word piece covers at least one character, so a text this short fits without tokenising it
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"] if len(
            text
        ) > window else []
        spans = [offsets[lo : lo + window] for lo in range(0, len(offsets), window)] if len(offsets) > window else []
        for span in spans:
            pieces.append(text[span[0][0] : span[-1][1]])
            owner.append(i)
            weight.append(len(span) / window)
        if not spans:
            pieces.append(text)
            owner.append(i)
            weight.append(1.0)
    return pieces, np.array(owner, dtype=np.int64), np.array(weight, dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@functools.lru_cache(maxsize=3)
def _weights(name: str, source: str, built: str | None, device: str | None) -> Any:
    """The loaded model: ``static`` a model2vec StaticModel, the others an object with ``encode``."""
    if name == "static":
        from model2vec import StaticModel

        return StaticModel.from_pretrained(built)
    if name == "onnx":
        require_extra("onnx", what="The `onnx` encoder")
    return _Onnx(Path(built)) if name == "onnx" else _SentenceTransformer(source, device)


class _SentenceTransformer:
    def __init__(self, source: str, device: str | None) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(source, device=device)
        self.tokenizer = self.model.tokenizer
        self.window = self.model.max_seq_length - 2  # [CLS] and [SEP]
        self.dim = self.model.get_embedding_dimension()

    def encode(self, texts: list[str], *, batch_size: int) -> np.ndarray:
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)  # fmt: skip


class _Onnx:
    def __init__(self, folder: Path) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.session = onnxruntime.InferenceSession(str(folder / "model_int8.onnx"), providers=["CPUExecutionProvider"])
        self.max_tokens = json.loads((folder / "provenance.json").read_text())["max_seq_length"]  # 256 for MiniLM
        self.window = self.max_tokens - 2
        self.dim = self.session.get_outputs()[0].shape[-1] or 384

    def encode(self, texts: list[str], *, batch_size: int) -> np.ndarray:
        """One text per run: dynamic int8 quantisation scales activations over the whole input tensor, so
        batch-mates (and their padding) would move a text's vector (cosine 0.99 to itself alone)."""
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_tokens)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(len(texts)):
            feed = {k: np.asarray([enc[k][i]], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            (hidden,) = self.session.run(None, feed)  # (1, tokens, dim); no padding: every token counts
            out[i] = hidden[0].mean(axis=0)
        return _unit(out)
