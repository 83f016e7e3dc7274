"""The checks every ``augment`` candidate passes: meaning (similarity), label (a head run), duplicates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from curate.embeddings import EncoderName, embed
from curate.errors import CurateError, StageError
from curate.records import conversation_columns
from curate.stages._minhash import MinHasher, jaccard_pairs, shingle_sets
from curate.stages.dedup_exact import DedupExact, DedupExactConfig
from curate.stages._minhash_lsh import band_pairs, choose_bands
from curate.stages.base import StageContext

__all__ = ["Classifier", "cap_per_label", "duplicates", "label_check", "load_head", "meaning", "normalised", "similarities"]

log = logging.getLogger(__name__)

_NUM_PERM = 128
_NGRAM = 3  # word 3-grams: short user turns (BANKING77: ~12 words) still have several shingles


def similarities(
    sources: Sequence[str], candidates: Sequence[str], *, ctx: StageContext, encoder: EncoderName = "minilm"
) -> np.ndarray:
    """Cosine similarity of each candidate to its source with the bundled MiniLM's ``encoder`` (cached embeddings)."""
    cache = ctx.store.cache_dir("embeddings") if ctx.store is not None else None
    vectors = embed([*sources, *candidates], encoder=encoder, cache_dir=cache, progress=ctx.track)
    a, b = vectors[: len(sources)], vectors[len(sources) :]
    return np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0)  # unit vectors: the dot product is the cosine


class Classifier:
    """A ``head`` run from the registry, loaded as ``curate eval`` loads it; ``predict`` gives label names."""

    def __init__(self, model: object, name: str) -> None:
        self.model, self.name = model, name
        self.labels: set[str] = set(model.labels)

    def predict(self, texts: list[str]) -> list[str]:
        return self.model.predict(texts) if texts else []


def load_head(run: str, *, runs_root: str, base_dir: Path, stage_id: str) -> Classifier:
    """Resolve and load the head run ``run`` (an id under ``runs_root`` or a run folder)."""
    from curate.evaluate.models import load_model, resolve_target

    root = Path(runs_root) if Path(runs_root).is_absolute() else base_dir / runs_root
    target = run if Path(run).is_absolute() or not (base_dir / run).exists() else str(base_dir / run)
    try:
        ref = resolve_target(target, runs_root=root, role="classifier")
    except CurateError as exc:
        raise StageError(f"{stage_id}: `head: {run}` is not a run: {exc}") from None
    if ref.manifest.get("adapter") != "head":
        raise StageError(
            f"{stage_id}: `head: {run}` is a {ref.manifest.get('adapter') or 'plain model'} run, not a `head` "
            "classifier run; train one with `adapter: head` (pipelines/train-intent-head.yaml)."
        )
    return Classifier(load_model(ref, device="cpu").model, ref.name)


def normalised(texts: pl.Series) -> pl.Series:
    """The exact-duplicate key of ``dedup_exact`` (its defaults): lowercase, whitespace runs folded, ends stripped."""
    return DedupExact(DedupExactConfig()).normalise(texts)


def duplicates(
    existing: pl.Series,
    candidates: pl.Series,
    *,
    existing_ids: Sequence[str],
    source_ids: Sequence[str],
    active: np.ndarray,
    threshold: float,
    seed: int,
) -> list[int | None]:
    """For each candidate, the row it duplicates, or ``None``.

    A duplicate has the same normalised text as, or a word 3-gram Jaccard of at least
    ``threshold`` with, an existing row other than its own source (nor a repeat of it: same
    id), or an earlier candidate that was kept. Rows ``0 .. len(existing) - 1`` are existing rows, higher numbers are
    candidates (``len(existing) + j``). Only candidates where ``active`` is true are checked,
    and only those can be kept.
    """
    n_old = len(existing)
    texts = pl.concat([existing, candidates])
    keys = normalised(texts).to_list()
    same: dict[str, list[int]] = {}
    for i, key in enumerate(keys[:n_old]):  # per text, rows of two ids: one of them is not the source
        rows = same.setdefault(key, []) if key else []
        if key and len(rows) < 2 and not any(existing_ids[r] == existing_ids[i] for r in rows):
            rows.append(i)
    near = _near_pairs(texts, n_old=n_old, active=active, threshold=threshold, seed=seed)
    kept: set[int] = set()
    out: list[int | None] = [None] * len(candidates)
    for j in np.flatnonzero(active):
        me = n_old + j
        hits = [
            i for i in [*same.get(keys[me], []), *near.get(me, [])]
            if (i < n_old and existing_ids[i] != source_ids[j]) or i in kept
        ]
        if hits:
            out[j] = min(hits)
        else:
            kept.add(me)
            if keys[me]:
                same.setdefault(keys[me], []).append(me)
    return out


def _near_pairs(texts: pl.Series, *, n_old: int, active: np.ndarray, threshold: float, seed: int) -> dict[int, list[int]]:
    """Candidate -> rows before it (existing, or earlier candidates) with Jaccard >= threshold.

    Pairs between two candidates are stored under the later one; :func:`duplicates` keeps only
    those whose earlier candidate was kept.
    """
    hasher = MinHasher(ngram=_NGRAM, char_ngram=None, num_perm=_NUM_PERM, seed=seed)
    sig = hasher.signatures(texts)
    use = np.concatenate([np.ones(n_old, dtype=bool), active])
    rows = np.flatnonzero(use & (sig != np.iinfo(np.uint32).max).any(axis=1))
    bands, per_band = choose_bands(threshold, _NUM_PERM)
    pairs = band_pairs(sig, rows, bands=bands, rows=per_band, seed=seed)
    pairs = pairs[pairs[:, 1] >= n_old]  # at least one candidate (the later index)
    found: dict[int, list[int]] = {}
    if len(pairs):
        exact = jaccard_pairs(shingle_sets(hasher, texts), pairs[:, 0], pairs[:, 1])
        for a, b in pairs[exact >= threshold]:
            found.setdefault(int(b), []).append(int(a))
    return found


def meaning(candidates: pl.DataFrame, *, window: tuple[float, float]) -> tuple[list[str | None], list[dict]]:
    """``paraphrase_drift`` below the window, ``paraphrase_too_close`` above it or when identical to the source."""
    low, high = window
    reasons: list[str | None] = [None] * candidates.height
    details: list[dict] = [{} for _ in reasons]
    same = (candidates["id"] == candidates["augmented_from"]).to_list()  # equal after whitespace folding
    for j, s in enumerate(candidates["augment_similarity"].to_list()):
        if same[j]:
            reasons[j], details[j] = "paraphrase_too_close", {"identical": True}
        elif s > high:
            reasons[j], details[j] = "paraphrase_too_close", {"max_similarity": high}
        elif s < low:
            reasons[j], details[j] = "paraphrase_drift", {"min_similarity": low}
    return reasons, details


def label_check(candidates: pl.DataFrame, reasons: list, details: list, *, head: Classifier, kind: str) -> dict:
    """Candidates still in the running whose label the head predicts differently become ``label_changed``."""
    from curate.train.data import head_text  # the text a head run is trained on

    column = conversation_columns(kind)[0]
    labels = candidates["label"].to_list()
    todo = [j for j, r in enumerate(reasons) if r is None and labels[j] in head.labels]
    conversations = candidates[column].gather(todo).to_list() if todo else []
    predicted = head.predict([head_text(c) for c in conversations])
    for j, p in zip(todo, predicted, strict=True):
        if p != labels[j]:
            reasons[j], details[j] = "label_changed", {"predicted": p, "head": head.name}
    unknown = sum(1 for j, r in enumerate(reasons) if r is None and labels[j] not in head.labels)
    if unknown:
        log.warning("augment: %d candidates have a label the head %s was not trained on; kept unchecked", unknown, head.name)
    return {"label_check_unknown_label": unknown} if unknown else {}


def cap_per_label(labels: list | None, reasons: list, details: list, need: dict[str, int]) -> None:
    """Past a label's remaining room under ``max_per_label``, accepted candidates become ``over_max_per_label``."""
    if not need or labels is None:
        return
    room = dict(need)
    for j, label in enumerate(labels):
        if reasons[j] is None:
            if room.get(label, 0) <= 0:
                reasons[j], details[j] = "over_max_per_label", {"max_per_label_room": need.get(label, 0)}
            else:
                room[label] -= 1
