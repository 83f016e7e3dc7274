"""Word n-gram hashing for decontamination, vectorised over a whole batch of texts.

Texts are normalised the lm-eval-harness way (lowercase, ASCII punctuation deleted, split on
whitespace); every token gets a 64-bit hash; the hash of the n-gram starting at token ``j`` is
the polynomial ``sum_k t[j+k] * B**(n-1-k)`` modulo 2**64. With prefix sums over
``t[i] * B**-i`` (B is odd, so it has an inverse modulo 2**64) the hash of any n-gram of any
length is two array operations, so one tokenisation serves every N. Hashes depend only on the
n-gram's words, never on its position, so benchmark and training hashes compare directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

Normalisation = Literal["lm_eval", "unicode"]

_B = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_B_INV = pow(_B, -1, 2**64)
_ASCII_PUNCT = r"[!-/:-@\[-`{-~]"  # string.punctuation as regex ranges
_SEED = 20240613  # token hash seed; part of the index cache key with the polars version


def normalise(texts: pl.Expr, *, normalisation: Normalisation = "lm_eval") -> pl.Expr:
    """Lowercased text with punctuation deleted (ASCII only for ``lm_eval``, all of Unicode's
    punctuation and symbols after NFKC folding for ``unicode``)."""
    if normalisation == "unicode":
        return texts.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"[\p{P}\p{S}]", "")
    return texts.str.to_lowercase().str.replace_all(_ASCII_PUNCT, "")


@dataclass
class Tokens:
    """The normalised tokens of a batch of texts, flattened.

    ``hashes[i]`` is the hash of token ``i``, ``row[i]`` the text it came from, ``end[i]`` the
    index one past the last token of that text, ``words[i]`` the token itself.
    """

    hashes: np.ndarray  # uint64 [T]
    row: np.ndarray  # int64 [T]
    end: np.ndarray  # int64 [T]
    words: pl.Series  # String [T]
    lengths: np.ndarray  # int64 [rows]: tokens per text

    @property
    def size(self) -> int:
        return len(self.hashes)


def tokenise(texts: pl.Series, *, normalisation: Normalisation = "lm_eval") -> Tokens:
    """Normalise and split ``texts``; a null text has no tokens."""
    words = pl.select(
        normalise(pl.lit(texts).fill_null(""), normalisation=normalisation).str.extract_all(r"\S+").alias("w")
    ).to_series()
    lengths = words.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = words.explode().drop_nulls()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    row = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    hashes = flat.hash(seed=_SEED).to_numpy().astype(np.uint64, copy=False)
    return Tokens(hashes=hashes, row=row, end=offsets[row + 1], words=flat, lengths=lengths)


def _powers(base: int, count: int) -> np.ndarray:
    out = np.full(count, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)  # wraps modulo 2**64


class GramHasher:
    """Hashes of the n-grams of one :class:`Tokens` batch, for any n."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        count = tokens.size + 1
        self._pow = _powers(_B, count)
        with np.errstate(over="ignore"):
            scaled = tokens.hashes * _powers(_B_INV, count)[:-1]
        self._prefix = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(scaled, dtype=np.uint64)])

    def grams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(hashes, starts)`` of every n-gram that lies inside one text."""
        tokens = self.tokens
        starts = np.flatnonzero(np.arange(tokens.size) + n <= tokens.end)
        with np.errstate(over="ignore"):
            h = self._pow[starts + n - 1] * (self._prefix[starts + n] - self._prefix[starts])
        return h, starts

    def whole(self, rows: np.ndarray) -> np.ndarray:
        """Hash of the whole token sequence of each text in ``rows`` (texts with >= 1 token)."""
        offsets = np.concatenate([[0], np.cumsum(self.tokens.lengths)])
        first, last = offsets[rows], offsets[rows + 1]
        with np.errstate(over="ignore"):
            return self._pow[last - 1] * (self._prefix[last] - self._prefix[first])


def gram_text(words: pl.Series, start: int, n: int) -> str:
    """The normalised n-gram at ``start`` as one string."""
    return " ".join(words.slice(start, n).to_list())
