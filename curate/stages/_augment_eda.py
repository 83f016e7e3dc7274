"""EDA (Wei & Zou, 2019): synonym replacement, random insertion, random swap, random deletion.

A text is cut into whitespace-separated chunks; a chunk's word is its run of letters, digits
and apostrophes, and the punctuation around it stays where it was ("card?" swaps as "card").
With ``n_words`` words an operation changes ``k = max(1, round(alpha * n_words))`` of them:

* ``synonym``: k distinct non-stop words that WordNet knows are replaced by a random synonym
  (first letter's case kept);
* ``insert``: k times, a random synonym of a random non-stop word goes in at a random place;
* ``swap``: k times, two random words trade places;
* ``delete``: every word is dropped with probability ``alpha`` (at least one is dropped and one stays).

Stop words are scikit-learn's English list. Exact word forms are looked up (no lemmatising, as
in EDA): "cards" finds nothing, "card" does.
"""

from __future__ import annotations

import functools
import random
import re

from curate.stages._augment_wordnet import Lexicon

__all__ = ["EDA_OPERATIONS", "eda"]

EDA_OPERATIONS = ("synonym", "insert", "swap", "delete")
_CHUNK = re.compile(r"^(\W*)([\w']+)(\W*)$")


@functools.cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # imported here: sklearn takes ~1 s to import

    return ENGLISH_STOP_WORDS


def _split(text: str) -> tuple[list[list[str]], list[int]]:
    """Chunks as ``[before, word, after]`` (``word`` empty for pure punctuation) and the word indices."""
    chunks = []
    for raw in text.split():
        m = _CHUNK.match(raw)
        chunks.append([m.group(1), m.group(2), m.group(3)] if m else [raw, "", ""])
    return chunks, [i for i, c in enumerate(chunks) if c[1]]


def _join(chunks: list[list[str]]) -> str:
    return " ".join("".join(c) for c in chunks if "".join(c))


def _cased(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def eda(text: str, *, operation: str, alpha: float, lexicon: Lexicon, rng: random.Random) -> str:
    """One EDA variant of ``text`` made by ``operation`` (one of :data:`EDA_OPERATIONS`)."""
    chunks, words = _split(text)
    if not words:
        return text
    k = max(1, round(alpha * len(words)))
    replaceable = [i for i in words if chunks[i][1].lower() not in _stop_words() and lexicon.synonyms(chunks[i][1])]
    if operation == "synonym":
        for i in rng.sample(replaceable, min(k, len(replaceable))):
            chunks[i][1] = _cased(rng.choice(lexicon.synonyms(chunks[i][1])), chunks[i][1])
    elif operation == "insert":
        sources = [chunks[i][1] for i in replaceable]  # taken before inserting shifts the positions
        for _ in range(k if sources else 0):
            synonym = rng.choice(lexicon.synonyms(rng.choice(sources)))
            chunks.insert(rng.randrange(len(chunks) + 1), ["", synonym, ""])
    elif operation == "swap":
        for _ in range(k if len(words) > 1 else 0):
            a, b = rng.sample(words, 2)
            chunks[a][1], chunks[b][1] = chunks[b][1], chunks[a][1]
    elif operation == "delete":
        dropped = {i for i in words if rng.random() < alpha} or {rng.choice(words)}
        if len(dropped) == len(words):
            dropped.discard(rng.choice(words))
        for i in dropped:
            chunks[i][1] = ""
    else:
        raise ValueError(f"unknown EDA operation {operation!r}")
    return _join(chunks)
