"""Robustness variants for ``augment``'s ``noise`` method: typos, casing, punctuation, whitespace.

Each variant is what a hurried user types, and each changes the row's content id (ids fold
whitespace runs, so extra spaces alone would make the same row):

* ``typo``: ``k = max(1, round(rate * n_words))`` words of 3+ letters get one typo each: a
  QWERTY-adjacent key, two neighbouring letters swapped, or a letter dropped;
* ``case``: the whole text lower-cased, upper-cased, or its first letter's case flipped
  (whichever differs from the text, in a random order);
* ``punctuation``: every punctuation mark dropped, or, in a text without any, a ``?``, ``.``
  or ``!`` appended;
* ``whitespace``: two neighbouring words run together, or a word of 4+ letters split in two.
"""

from __future__ import annotations

import random
import re

__all__ = ["NOISE_KINDS", "noise"]

NOISE_KINDS = ("typo", "case", "punctuation", "whitespace")
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_PUNCT = re.compile(r"[^\w\s]")


def _neighbours() -> dict[str, str]:
    """Keys touching each letter on a QWERTY keyboard (each row sits half a key right of the one above)."""
    where = {(r, i): c for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    touching = {0: (-1, 1), -1: (0, 1), 1: (-1, 0)}  # row offset -> column offsets
    return {
        c: "".join(where[(r + dr, i + di)] for dr, dis in touching.items() for di in dis if (r + dr, i + di) in where)
        for (r, i), c in where.items()
    }


_ADJACENT = _neighbours()


def _typo(word: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(word) if c.lower() in _ADJACENT]
    i = rng.choice(letters)
    kind = rng.choice(("adjacent", "transpose", "drop"))
    if kind == "transpose" and i + 1 < len(word) and word[i + 1] != word[i]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    key = rng.choice(_ADJACENT[word[i].lower()])
    return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]


def noise(text: str, *, kind: str, rate: float, rng: random.Random) -> str:
    """One noisy variant of ``text`` of ``kind`` (one of :data:`NOISE_KINDS`); ``text`` itself when none applies."""
    words = text.split(" ")
    if kind == "typo":
        typable = [i for i, w in enumerate(words) if sum(c.lower() in _ADJACENT for c in w) >= 3]
        for i in rng.sample(typable, min(max(1, round(rate * len(typable))), len(typable))):
            words[i] = _typo(words[i], rng)
        return " ".join(words)
    if kind == "case":
        options = [text.lower(), text.upper(), text[:1].swapcase() + text[1:]]
        rng.shuffle(options)
        return next((o for o in options if o != text), text)
    if kind == "punctuation":
        return _PUNCT.sub("", text) if _PUNCT.search(text) else text.rstrip() + rng.choice("?.!")
    if kind == "whitespace":
        long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if len(words) > 1 and (not long or rng.random() < 0.5):
            i = rng.randrange(len(words) - 1)
            return " ".join(words[:i] + [words[i] + words[i + 1]] + words[i + 2 :])
        if long:
            i = rng.choice(long)
            cut = rng.randrange(2, len(words[i]) - 1)
            words[i] = words[i][:cut] + " " + words[i][cut:]
        return " ".join(words)
    raise ValueError(f"unknown noise kind {kind!r}")
