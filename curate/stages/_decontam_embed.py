"""The optional embedding check of ``decontaminate``: rows too close to a benchmark prompt.

Paraphrased test items share no 13-gram with the original; their sentence embeddings (the bundled
MiniLM by default, through the shared embedding cache) stay close. A row whose text has cosine
similarity >= ``embedding_threshold`` with any benchmark prompt is removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from curate.embeddings import embed
from curate.stages.base import StageContext, detail_json

if TYPE_CHECKING:
    from curate.stages._decontam_index import BenchmarkIndex
    from curate.stages.decontaminate import DecontaminateConfig

_BLOCK = 4096  # rows per similarity block: 4096 x items float32 stays small


def embedding_matches(
    texts: pl.Series, index: BenchmarkIndex, *, reason: np.ndarray, config: DecontaminateConfig, ctx: StageContext
) -> dict[int, str]:
    """Row -> detail for rows not yet removed whose best benchmark similarity passes the threshold."""
    cache = ctx.store.cache_dir("embeddings") if ctx.store is not None else None
    prompts = index.items["prompt_words"].list.join(" ").to_list()
    bench = embed(prompts, encoder=config.embedding_encoder, model=config.embedding_model, cache_dir=cache,
                  progress=ctx.track)
    rows = np.flatnonzero(np.array([r is None for r in reason]))
    vectors = embed(texts.gather(rows).fill_null("").to_list(), encoder=config.embedding_encoder,
                    model=config.embedding_model, cache_dir=cache, progress=ctx.track)
    names, ids = index.items["benchmark"], index.items["item_id"]
    out = {}
    for lo in range(0, len(rows), _BLOCK):
        sims = vectors[lo : lo + _BLOCK] @ bench.T  # unit vectors: dot = cosine
        best = sims.argmax(axis=1)
        score = sims[np.arange(len(best)), best]
        for k in np.flatnonzero(score >= config.embedding_threshold):
            item = int(best[k])
            out[int(rows[lo + k])] = detail_json(
                rule="embedding", benchmark=names[item], item_id=ids[item], similarity=round(float(score[k]), 4),
                threshold=config.embedding_threshold, prompt=prompts[item],
            )
    return out
