"""``dedup_minhash``: near-duplicate removal with MinHash signatures and LSH banding.

Text -> shingles -> MinHash signatures (vectorised over whole batches, see ``_minhash``) ->
LSH bands -> candidate pairs -> optional verification -> connected components -> one kept row
per cluster. The normalisation is documented in :mod:`curate.stages._minhash` and docs/dedup.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from curate.records import text_of
from curate.stages._dedup_clusters import KEEP_DESCRIPTION, clusters, dedup_result, keep_priority, representatives
from curate.stages._minhash import MinHasher, jaccard_pairs, shingle_sets, sorted_unique
from curate.stages._minhash_lsh import band_pairs, choose_bands, estimated_jaccard, has_tokens, s_curve_errors
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register
from curate.stats import Phases

__all__ = ["DedupMinhash", "DedupMinhashConfig"]

log = logging.getLogger(__name__)


class DedupMinhashConfig(StageConfig):
    """Near duplicates by estimated Jaccard similarity of word (and character) n-gram sets."""

    # what is compared
    text: Literal["all", "user", "assistant"] = Field(
        "all", description="Which turns are compared: the whole conversation, user turns or assistant turns."
    )
    ngram: int = Field(5, ge=1, le=32, description="Word n-gram (shingle) size.")
    char_ngram: int | None = Field(
        None, ge=1, le=64, description="Also use character n-grams of this size; `None` uses word n-grams only."
    )
    numbers: bool = Field(
        True, description="Replace every number (`42`, `3.14`, `1,000`) by `0` before comparing (as datatrove does)."
    )
    # similarity and LSH
    threshold: float = Field(0.7, gt=0.0, lt=1.0, description="Jaccard similarity at which two rows are duplicates.")
    num_perm: int = Field(128, ge=2, le=1024, description="MinHash permutations (signature length).")
    bands: int | None = Field(
        None, ge=1, description="LSH bands; `None` chooses bands and rows from `threshold` and `num_perm`."
    )
    rows: int | None = Field(None, ge=1, description="Rows per LSH band; set together with `bands`.")
    verify: Literal["none", "signature", "jaccard"] = Field(
        "none",
        description="Check candidate pairs before clustering: `none` keeps every LSH candidate, `signature` "
        "keeps pairs whose signature-estimated Jaccard reaches `threshold`, `jaccard` computes the exact "
        "Jaccard of the two shingle sets.",
    )
    lsh_storage: dict[str, Any] | None = Field(
        None,
        description="A datasketch `storage_config` (e.g. `{type: redis, basename: support, redis: {host: "
        "localhost, port: 6379}}`) to hold the LSH index outside memory; `None` bands in memory with numpy.",
    )
    # outcome
    keep: str = Field("first", min_length=1, description=KEEP_DESCRIPTION)
    seed: int = Field(
        0,
        description="Seed of every hash function: the same seed, rows and polars version (tokens are hashed "
        "by polars) give the same result.",
    )
    batch_size: int = Field(20_000, ge=1, description="Rows hashed per vectorised batch (bounds memory).")

    @model_validator(mode="after")
    def _bands_and_rows(self) -> DedupMinhashConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both `bands` and `rows`, or neither (then they are chosen from threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


@register
class DedupMinhash(Stage):
    """Keeps one row per cluster of near duplicates; the others are removed with reason
    ``near_duplicate`` and ``detail = {"duplicate_of": <kept id>, "similarity": <Jaccard>,
    "cluster_size": k}``. The similarity is exact with ``verify: jaccard``, else estimated from
    the signatures. ``stats`` holds the chosen bands x rows and their S-curve error estimates."""

    name = "dedup_minhash"
    Config = DedupMinhashConfig

    def hasher(self) -> MinHasher:
        """The MinHash function of this config (the same on every worker of an engine)."""
        cfg: DedupMinhashConfig = self.config
        return MinHasher(ngram=cfg.ngram, char_ngram=cfg.char_ngram, num_perm=cfg.num_perm, seed=cfg.seed, numbers=cfg.numbers)

    def text(self, frame: pl.DataFrame, kind: str) -> pl.Series:
        """The compared text of each row."""
        return text_of(frame, kind, roles=None if self.config.text == "all" else [self.config.text])

    def bands_rows(self) -> tuple[int, int]:
        """LSH bands x rows: the config's, or chosen from threshold and num_perm."""
        cfg: DedupMinhashConfig = self.config
        return (cfg.bands, cfg.rows) if cfg.bands else choose_bands(cfg.threshold, cfg.num_perm)

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg: DedupMinhashConfig = self.config
        phases = Phases()
        text = self.text(frame, ctx.kind)
        with phases("signatures"):
            hasher = self.hasher()
            sig = np.empty((frame.height, cfg.num_perm), dtype=np.uint32)
            batches = range(0, frame.height, cfg.batch_size)
            for start in ctx.track(batches, description="minhash signatures", total=len(batches)):
                sig[start : start + cfg.batch_size] = hasher.signatures(text.slice(start, cfg.batch_size))
        with phases("lsh"):
            bands, rows = self.bands_rows()
            nonempty = np.flatnonzero(has_tokens(sig))
            if cfg.lsh_storage is None:
                pairs = band_pairs(sig, nonempty, bands=bands, rows=rows, seed=cfg.seed)
            else:
                pairs = _datasketch_pairs(sig, nonempty, cfg=cfg, bands=bands, rows=rows, ctx=ctx)

        def estimate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return estimated_jaccard(sig[a], sig[b])

        return self.finish(frame, ctx, pairs=pairs, estimate=estimate, phases=phases, text=text)

    def finish(
        self, frame: pl.DataFrame, ctx: StageContext, *, pairs: np.ndarray,
        estimate: Callable[[np.ndarray, np.ndarray], np.ndarray], phases: Phases, text: pl.Series | None = None,
    ) -> StageResult:
        """Verify the LSH candidate ``pairs``, cluster them and keep one row per cluster.

        ``estimate(a, b)`` gives the estimated Jaccard of the row pairs ``(a[i], b[i])`` from their
        signatures (:func:`estimated_jaccard`); it is only called with rows of ``pairs``, so engines
        that keep the signatures elsewhere pass one that fetches what it needs. ``text`` is the
        compared text of ``frame``'s rows; ``None`` computes it only where needed (``keep: longest``,
        and the paired rows for ``verify: jaccard``).
        """
        cfg: DedupMinhashConfig = self.config
        bands, rows = self.bands_rows()
        fp, fn = s_curve_errors(cfg.threshold, bands, rows)
        log.info("%s: LSH %d bands x %d rows at threshold %.2f (S-curve FP %.4f, FN %.4f)",
                 ctx.stage_id, bands, rows, cfg.threshold, fp, fn)
        candidates = len(pairs)
        with phases("verify"):
            exact = None
            if cfg.verify == "signature" and len(pairs):
                pairs = pairs[estimate(pairs[:, 0], pairs[:, 1]) >= cfg.threshold]
            elif cfg.verify == "jaccard" and len(pairs):
                paired = sorted_unique(pairs.ravel())
                paired_text = self.text(frame[paired], ctx.kind) if text is None else text.gather(paired)
                exact = _ExactJaccard(self.hasher(), paired_text, paired)
                pairs = pairs[exact(pairs[:, 0], pairs[:, 1]) >= cfg.threshold]
        with phases("clusters"):
            if text is None and cfg.keep == "longest":
                text = self.text(frame, ctx.kind)
            rep = representatives(
                clusters(frame.height, pairs), keep_priority(frame, text, keep=cfg.keep, stage_id=ctx.stage_id)
            )
            dup = np.flatnonzero(rep != np.arange(frame.height))
            similarity = np.ones(frame.height)
            similarity[dup] = exact(dup, rep[dup]) if exact else estimate(rep[dup], dup)
        stats = {
            "bands": bands,
            "rows": rows,
            "num_perm": cfg.num_perm,
            "threshold": cfg.threshold,
            "s_curve_false_positive": round(fp, 5),
            "s_curve_false_negative": round(fn, 5),
            "candidate_pairs": int(candidates),
            "pairs_after_verify": len(pairs),
            "similarity": "jaccard" if exact else "estimated_jaccard",
            "seconds": phases.rounded(),
        }
        return dedup_result(frame, rep, similarity, reason="near_duplicate", stats=stats)


class _ExactJaccard:
    """Exact Jaccard between rows of ``rows`` (global indices), from their shingle sets."""

    def __init__(self, hasher: MinHasher, text: pl.Series, rows: np.ndarray) -> None:
        self.rows = rows  # sorted; text[i] is row rows[i]'s
        self.sets = shingle_sets(hasher, text)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return jaccard_pairs(self.sets, np.searchsorted(self.rows, a), np.searchsorted(self.rows, b))


def _datasketch_pairs(
    sig: np.ndarray, nonempty: np.ndarray, *, cfg: DedupMinhashConfig, bands: int, rows: int, ctx: StageContext
) -> np.ndarray:
    """Candidate pairs through a datasketch ``MinHashLSH`` index (e.g. Redis-backed): query, then insert."""
    from datasketch import LeanMinHash, MinHashLSH

    lsh = MinHashLSH(
        threshold=cfg.threshold, num_perm=cfg.num_perm, params=(bands, rows), storage_config=cfg.lsh_storage
    )
    found = []
    for i in ctx.track(nonempty.tolist(), description="LSH index", total=len(nonempty)):
        minhash = LeanMinHash(seed=cfg.seed, hashvalues=sig[i].astype(np.uint64), scheme="affine32")
        found.extend((int(j), i) for j in lsh.query(minhash))
        lsh.insert(i, minhash, check_duplication=False)
    return np.array(sorted(set(found)), dtype=np.int64).reshape(-1, 2)
