"""``dedup_semantic``: remove rows whose sentence embeddings are nearly parallel to a kept row's.

Texts -> embeddings (``encoder``: static, onnx or minilm; cached in the store, see
:mod:`curate.embeddings`) -> pairs with cosine
similarity >= ``threshold`` (exact blockwise search, or a faiss IVF index for large inputs) ->
connected components -> one kept row per cluster. Large inputs are cut into k-means partitions first
(``partitions``, SemDeDup) and pairs are searched within each partition; an engine decides where each
partition's search runs (:mod:`curate.stages._semantic_partitions`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate.embeddings import EncoderName, embed, encoder_of
from curate.records import text_of
from curate.stages._dedup_clusters import KEEP_DESCRIPTION, clusters, dedup_result, keep_priority, representatives
from curate.stages._semantic_partitions import (
    MapPartitions,
    PartitionSearch,
    kmeans_partitions,
    local_map,
    partition_pairs,
)
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register
from curate.stats import Phases

if TYPE_CHECKING:
    from pathlib import Path

    from curate.embeddings import Track

__all__ = ["PARTITION_ROWS", "THRESHOLDS", "DedupSemantic", "DedupSemanticConfig"]

# Default threshold per encoder (bench/dedup_semantic.py on the shared dedup corpus, docs/dedup.md): static, the
# lowest with removal precision >= 0.98 on the 20k slice (0.982, recall 0.943); minilm 0.92 (0.990 / 0.981 on the
# 20k slice; 0.998 / 0.991 on the 2k slice, chunked); onnx 0.92 (0.998 / 0.981 on the 2k slice). Cosines differ
# between encoders.
THRESHOLDS: dict[str, float] = {"static": 0.985, "onnx": 0.92, "minilm": 0.92}
# `partitions: auto` (bench/dedup_semantic.py --partitions, docs/dedup.md; static, 0.985, margin 0.01): up to
# `exact_max_rows` (50,000) rows one exact search costs at most ~10 s, less than embedding those rows; above, one
# partition per 2,500 rows: at 100k rows 40 partitions searched in 1.6 s (exact: 17.7 s), 0.997 of the exact
# search's removals; 1,000 rows a partition is no faster (the k-means grows), 10,000 rows a partition is 2.6x slower.
PARTITION_ROWS = 2_500


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
        description="Neighbour search within each partition: `exact` (blockwise matrix products, every pair), "
        "`faiss` (IVF index, approximate), `auto` = exact up to `exact_max_rows` rows, faiss above.",
    )
    exact_max_rows: int = Field(
        50_000, ge=1, description="Largest partition that `search: auto` searches exactly (the whole input when "
        "`partitions` is 1); also the largest input that `partitions: auto` leaves in one partition.",
    )  # fmt: skip
    partitions: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        "auto",
        description="K-means partitions of the embeddings (SemDeDup): pairs are searched only within a partition, "
        "each partition on its own worker on `engine: ray`. `1`: one search over every row; `auto`: 1 up to "
        "`exact_max_rows` rows, above that one partition per 2,500 rows.",
    )
    margin: float = Field(
        0.01, ge=0.0, le=2.0,
        description="A row is also searched in its second-nearest partition when its cosine to that centroid is "
        "within `margin` of its cosine to its own (its duplicates may lie across the border); 0: one partition "
        "per row, as SemDeDup.",
    )  # fmt: skip
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
    seed: int = Field(0, description="Seed of the k-means partitions and of the faiss index's k-means.")


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

    def partition_count(self, rows: int) -> int:
        """How many k-means partitions ``rows`` embedded rows are cut into."""
        cfg: DedupSemanticConfig = self.config
        if cfg.partitions != "auto":
            return cfg.partitions
        return 1 if rows <= cfg.exact_max_rows else math.ceil(rows / PARTITION_ROWS)

    def finish(
        self, frame: pl.DataFrame, ctx: StageContext, *, text: pl.Series, rows: np.ndarray, vectors: np.ndarray,
        phases: Phases, map_partitions: MapPartitions = local_map,
    ) -> StageResult:
        """Search ``vectors`` (one per row of ``rows``) for pairs within each k-means partition, cluster them,
        keep one row per cluster. ``map_partitions`` runs each partition's search (the engine's choice)."""
        cfg: DedupSemanticConfig = self.config
        with phases("encoder_build"):  # ~0 once built (the embed phase built it)
            encoder = encoder_of(cfg.encoder, model=cfg.model, device=cfg.device)  # static / onnx: built once per user
        threshold = cfg.threshold if cfg.threshold is not None else THRESHOLDS[cfg.encoder]

        with phases("partition"):
            parts = kmeans_partitions(vectors, self.partition_count(len(rows)), seed=cfg.seed, margin=cfg.margin)
        search = PartitionSearch(threshold=threshold, search=cfg.search, exact_max_rows=cfg.exact_max_rows,
                                 nprobe=cfg.nprobe, seed=cfg.seed)  # fmt: skip
        with phases("search"):
            pairs = partition_pairs(vectors, parts, search, map_partitions=map_partitions)

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
            "search": "+".join(sorted({search.method(len(p)) for p in parts})),  # exact, faiss or exact+faiss
            "partitions": len(parts),
            "largest_partition": max(len(p) for p in parts),
            "searched_rows": sum(len(p) for p in parts),  # border rows count once per partition they are in
            "pairs": len(pairs),
            "embedded_rows": len(rows),
            "seconds": phases.rounded(),
        }
        return dedup_result(frame, rep, similarity, reason="semantic_duplicate", stats=stats)
