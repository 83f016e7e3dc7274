"""``dedup_semantic``: remove rows whose sentence embeddings are nearly parallel to a kept row's.

Texts -> embeddings (``encoder``: static, onnx or minilm; cached in the store, see
:mod:`curate.embeddings`) -> pairs with cosine
similarity >= ``threshold`` (exact blockwise search, or a faiss IVF index for large inputs) ->
connected components -> one kept row per cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate.embeddings import EncoderName, embed, encoder_of
from curate.records import text_of
from curate.stages._dedup_clusters import KEEP_DESCRIPTION, clusters, dedup_result, keep_priority, representatives
from curate.stages._similar_pairs import exact_pairs, ivf_pairs
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register
from curate.stats import Phases

if TYPE_CHECKING:
    from pathlib import Path

    from curate.embeddings import Track

__all__ = ["THRESHOLDS", "DedupSemantic", "DedupSemanticConfig"]

# Default threshold per encoder (bench/dedup_semantic.py on the shared dedup corpus, docs/dedup.md): static, the
# lowest with removal precision >= 0.98 on the 20k slice (0.982, recall 0.943); minilm 0.92 (0.990 / 0.981 on the
# 20k slice; 0.998 / 0.991 on the 2k slice, chunked); onnx 0.92 (0.998 / 0.981 on the 2k slice). Cosines differ
# between encoders.
THRESHOLDS: dict[str, float] = {"static": 0.985, "onnx": 0.92, "minilm": 0.92}


class DedupSemanticConfig(StageConfig):
    """Semantic duplicates: cosine similarity of sentence embeddings at or above a threshold."""

    # what is compared
    text: Literal["all", "user", "assistant"] = Field(
        "all", description="Which turns are compared: the whole conversation, user turns or assistant turns."
    )
    encoder: EncoderName = Field(
        "static",
        description="`static` (model2vec distilled locally from `model`, built once into ~/.cache/curate/encoders), "
        "`onnx` (`model` exported to ONNX with int8 weights, built once) or `minilm` (`model` itself). "
        "Texts longer than the window (256 tokens for MiniLM) are embedded window by window and pooled.",
    )
    model: str | None = Field(
        None, description="sentence-transformers model path or hub id; `None` is the bundled all-MiniLM-L6-v2 (offline)."
    )
    threshold: float | None = Field(
        None, gt=0.0, le=1.0,
        description="Cosine similarity at which two rows are duplicates; `None`: the encoder's measured default "
        "(static 0.985, onnx 0.92, minilm 0.92).",
    )  # fmt: skip
    # search
    search: Literal["auto", "exact", "faiss"] = Field(
        "auto",
        description="Neighbour search: `exact` (blockwise matrix products, every pair), `faiss` (IVF index, "
        "approximate), `auto` = exact up to `exact_max_rows` rows, faiss above.",
    )
    exact_max_rows: int = Field(50_000, ge=1, description="Largest input that `search: auto` searches exactly.")
    nprobe: int = Field(16, ge=1, description="faiss IVF cells searched per row (more: slower, fewer misses).")
    # embedding
    batch_size: int = Field(64, ge=1, description="Texts per encoder forward pass.")
    device: str | None = Field(
        None, description="Torch device such as `cpu` or `cuda`; `None` lets the encoder choose."
    )
    cache: bool = Field(
        True, description="Cache embeddings in the store by (model, text hash); no cache without a store."
    )
    # outcome
    keep: str = Field("first", min_length=1, description=KEEP_DESCRIPTION)
    seed: int = Field(0, description="Seed of the faiss k-means; exact search has no randomness.")


@register
class DedupSemantic(Stage):
    """Keeps one row per cluster of semantic duplicates; the others are removed with reason
    ``semantic_duplicate`` and ``detail = {"duplicate_of": <kept id>, "similarity": <cosine to the
    kept row>, "cluster_size": k}``. Rows whose compared text is empty are never duplicates."""

    name = "dedup_semantic"
    Config = DedupSemanticConfig

    def text(self, frame: pl.DataFrame, kind: str) -> tuple[pl.Series, np.ndarray]:
        """The compared text of each row, and the rows whose text is not blank (only those are embedded)."""
        cfg: DedupSemanticConfig = self.config
        text = text_of(frame, kind, roles=None if cfg.text == "all" else [cfg.text]).fill_null("")
        return text, np.flatnonzero(text.str.strip_chars().str.len_chars().to_numpy() > 0)

    def vectors(self, texts: list[str], *, cache_dir: Path | None, track: Track | None = None) -> np.ndarray:
        """Unit-length embeddings of ``texts`` with this config's encoder (engines call it on workers)."""
        cfg: DedupSemanticConfig = self.config
        return embed(texts, encoder=cfg.encoder, model=cfg.model, cache_dir=cache_dir, batch_size=cfg.batch_size,
                     device=cfg.device, progress=track)

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg: DedupSemanticConfig = self.config
        phases = Phases()
        text, rows = self.text(frame, ctx.kind)
        cache_dir = ctx.store.cache_dir("embeddings") if cfg.cache and ctx.store is not None else None
        with phases("embed"):
            vectors = self.vectors(text.gather(rows).to_list(), cache_dir=cache_dir, track=ctx.track)
        return self.finish(frame, ctx, text=text, rows=rows, vectors=vectors, phases=phases)

    def finish(
        self, frame: pl.DataFrame, ctx: StageContext, *, text: pl.Series, rows: np.ndarray, vectors: np.ndarray,
        phases: Phases,
    ) -> StageResult:
        """Search ``vectors`` (one per row of ``rows``) for pairs, cluster them, keep one row per cluster."""
        cfg: DedupSemanticConfig = self.config
        with phases("encoder_build"):  # ~0 once built (the embed phase built it)
            encoder = encoder_of(cfg.encoder, model=cfg.model, device=cfg.device)  # static / onnx: built once per user
        threshold = cfg.threshold if cfg.threshold is not None else THRESHOLDS[cfg.encoder]

        with phases("search"):
            search = cfg.search if cfg.search != "auto" else ("exact" if len(rows) <= cfg.exact_max_rows else "faiss")
            if len(rows) < 2:
                pairs = np.empty((0, 2), dtype=np.int64)
            elif search == "exact":
                pairs, _ = exact_pairs(vectors, threshold)
            else:
                pairs, _ = ivf_pairs(vectors, threshold, nprobe=cfg.nprobe, seed=cfg.seed)

        with phases("clusters"):
            rep = representatives(
                clusters(frame.height, rows[pairs]), keep_priority(frame, text, keep=cfg.keep, stage_id=ctx.stage_id)
            )
            dup = np.flatnonzero(rep != np.arange(frame.height))
            where = np.full(frame.height, -1)
            where[rows] = np.arange(len(rows))  # frame row -> row of `vectors`
            similarity = np.ones(frame.height)
            similarity[dup] = np.einsum("ij,ij->i", vectors[where[dup]], vectors[where[rep[dup]]])
        stats = {
            "model": cfg.model or "all-MiniLM-L6-v2 (bundled)",
            "encoder": encoder.provenance,
            "threshold": threshold,
            "search": search,
            "pairs": len(pairs),
            "embedded_rows": len(rows),
            "seconds": phases.rounded(),
        }
        return dedup_result(frame, rep, similarity, reason="semantic_duplicate", stats=stats)
