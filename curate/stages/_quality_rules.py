"""The heuristic rules of ``quality``: one config model and one check per rule.

A check takes the row texts (:class:`Texts`) and its rule config and returns ``(tripped, value)``:
a boolean Series (null counts as not tripped) and the value that tripped it (number or text),
which goes into the removal detail. Defaults follow Gopher (Rae et al. 2021, as in datatrove)
where a rule comes from there, loosened for chat turns where those document-level limits
would flag ordinary short answers; each default is measured against the support data in
docs/quality.md.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["user", "assistant"]


@dataclass
class Texts:
    """Per-row texts of one frame: all user turns, all assistant turns, the last assistant turn,
    and whether any assistant turn is empty (null where the kind has no assistant turns)."""

    user: pl.Series
    assistant: pl.Series
    last_assistant: pl.Series
    empty_assistant: pl.Series

    def of(self, role: Role) -> pl.Series:
        return self.user if role == "user" else self.assistant

    def gather(self, rows: pl.Series) -> Texts:
        """The texts of ``rows`` (positions) only."""
        return Texts(*(s.gather(rows) for s in (self.user, self.assistant, self.last_assistant, self.empty_assistant)))


class Rule(BaseModel):
    """Base of every rule: `enabled` switches it; writing `false` in YAML is the same as `{enabled: false}`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Whether the rule runs.")

    @model_validator(mode="before")
    @classmethod
    def _bool_shorthand(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value


def _words(text: pl.Series) -> pl.Series:
    return text.fill_null("").str.extract_all(r"\S+")


# ---- length ---------------------------------------------------------------------------------


class Bounds(BaseModel):
    """Word and character bounds of one role's text (all its turns joined); `None` is unbounded."""

    model_config = ConfigDict(extra="forbid")

    min_words: int | None = Field(1, ge=0, description="Fewer words is `too_short`.")
    max_words: int | None = Field(None, ge=1, description="More words is `too_long`.")
    min_chars: int | None = Field(None, ge=0, description="Fewer characters is `too_short`.")
    max_chars: int | None = Field(None, ge=1, description="More characters is `too_long`.")


class LengthRule(Rule):
    """`too_short` / `too_long`: bounds per role. Defaults: at least one word per role, assistant text at most 4,000 words."""

    user: Bounds = Field(default_factory=Bounds, description="Bounds of the user turns.")
    assistant: Bounds = Field(default_factory=lambda: Bounds(max_words=4000), description="Bounds of the assistant turns.")


def check_length(texts: Texts, rule: LengthRule, *, short: bool) -> tuple[pl.Series, pl.Series]:
    tripped, value = pl.Series([False] * len(texts.user)), pl.Series([None] * len(texts.user), dtype=pl.String)
    for role in ("user", "assistant"):
        text = texts.of(role)
        if text.is_null().all():
            continue
        bounds: Bounds = getattr(rule, role)
        words, chars = text.fill_null("").str.count_matches(r"\S+"), text.fill_null("").str.len_chars()
        checks = (
            [("words", words, bounds.min_words), ("chars", chars, bounds.min_chars)] if short
            else [("words", words, bounds.max_words), ("chars", chars, bounds.max_chars)]
        )
        for unit, count, limit in checks:
            if limit is None:
                continue
            hit = (count < limit) if short else (count > limit)
            value = pl.select(pl.when(hit & ~tripped).then(pl.format(f"{role} {{}} {unit}", count)).otherwise(value)).to_series()
            tripped = tripped | hit
    return tripped, value


# ---- document statistics (Gopher) -----------------------------------------------------------


class DocRule(Rule):
    """Shared by the statistics rules: which role they read, and the shortest text they judge."""

    role: Role = Field("assistant", description="Whose turns the rule reads.")
    min_words: int = Field(10, ge=0, description="Texts with fewer words are not judged (statistics of a few words mean little).")


class MeanWordLengthRule(DocRule):
    """`mean_word_length`: mean word length outside [min, max] characters (Gopher: 3 to 10)."""

    min: float = Field(3.0, description="Shortest mean word length allowed.")
    max: float = Field(10.0, description="Longest mean word length allowed.")


class AlphaRule(DocRule):
    """`low_alpha_ratio`: too few words with a letter (Gopher 0.8; 0.5 here so math and code answers pass)."""

    min_ratio: float = Field(0.5, ge=0.0, le=1.0, description="Smallest fraction of words containing a letter.")


class SymbolRule(DocRule):
    """`high_symbol_ratio`: ('#' + '...' + '…') per word above the limit (Gopher 0.1)."""

    max_ratio: float = Field(0.1, ge=0.0, description="Largest symbols-per-word ratio allowed.")


def _gated(text: pl.Series, rule: DocRule, value: pl.Series) -> pl.Series:
    return pl.select(pl.when(_words(text).list.len() >= rule.min_words).then(value)).to_series()


def check_mean_word_length(texts: Texts, rule: MeanWordLengthRule) -> tuple[pl.Series, pl.Series]:
    text = texts.of(rule.role)
    words = _words(text)
    mean = _gated(text, rule, words.list.eval(pl.element().str.len_chars()).list.mean())
    return (mean < rule.min) | (mean > rule.max), mean.round(2)


def check_alpha(texts: Texts, rule: AlphaRule) -> tuple[pl.Series, pl.Series]:
    text = texts.of(rule.role)
    ratio = _gated(text, rule, _words(text).list.eval(pl.element().str.contains(r"\p{L}")).list.mean())
    return ratio < rule.min_ratio, ratio.round(3)


def check_symbols(texts: Texts, rule: SymbolRule) -> tuple[pl.Series, pl.Series]:
    text = texts.of(rule.role).fill_null("")
    count = text.str.count_matches("#") + text.str.count_matches(r"\.\.\.|…")
    ratio = _gated(text, rule, count / _words(text).list.len().cast(pl.Float64))
    return ratio > rule.max_ratio, ratio.round(3)


class RepetitionRule(DocRule):
    """`repeated_lines`, `repeated_paragraphs`, `repeated_ngrams`: Gopher's repetition limits.

    A duplicated line / paragraph is one seen earlier in the same text; n-gram fractions count
    the characters covered by the most frequent (n = 2..4) or by all duplicated (n = 5..10)
    word n-grams, counting only n-grams that occur at least twice."""

    max_dup_line_fraction: float = Field(0.3, description="Largest fraction of lines that repeat an earlier line.")
    max_dup_paragraph_fraction: float = Field(0.3, description="Largest fraction of paragraphs that repeat one.")
    max_dup_line_char_fraction: float = Field(0.2, description="Largest fraction of characters in repeated lines.")
    max_top_ngram_fraction: dict[int, float] = Field(
        {2: 0.2, 3: 0.18, 4: 0.16}, description="n -> largest character fraction of the most frequent n-gram."
    )
    max_dup_ngram_fraction: dict[int, float] = Field(
        {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n -> largest character fraction covered by repeated n-grams.",
    )


def _dup_fraction(parts: list[str]) -> tuple[float, float]:
    seen, dup, dup_chars = set(), 0, 0
    for part in parts:
        if part in seen:
            dup, dup_chars = dup + 1, dup_chars + len(part)
        seen.add(part)
    total_chars = sum(len(p) for p in parts) or 1
    return dup / max(len(parts), 1), dup_chars / total_chars


def _dup_ngram_share(words: list[str], n: int) -> int:
    """Characters of the words covered by an n-gram seen earlier in the same text."""
    seen, covered = set(), [False] * len(words)
    for i, gram in enumerate(zip(*(words[k:] for k in range(n)), strict=False)):
        if gram in seen:
            covered[i : i + n] = [True] * n
        seen.add(gram)
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c)


def repetition_of(text: str, rule: RepetitionRule) -> tuple[str, str] | None:
    """``(reason, value)`` of the first repetition limit ``text`` exceeds, else ``None``."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    frac, char_frac = _dup_fraction(lines)
    if frac > rule.max_dup_line_fraction or char_frac > rule.max_dup_line_char_fraction:
        return "repeated_lines", f"{frac:.2f} of lines, {char_frac:.2f} of characters"
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    frac, _ = _dup_fraction(paragraphs)
    if frac > rule.max_dup_paragraph_fraction:
        return "repeated_paragraphs", f"{frac:.2f} of paragraphs"
    words = text.split()
    total = len(text) or 1
    for n, limit in sorted(rule.max_top_ngram_fraction.items()):
        grams = Counter(zip(*(words[k:] for k in range(n)), strict=False))
        if grams:
            gram, count = grams.most_common(1)[0]
            share = count * len(" ".join(gram)) / total
            if count > 1 and share > limit:
                return "repeated_ngrams", f"top {n}-gram {' '.join(gram)!r} covers {share:.2f}"
    floor = min(rule.max_dup_ngram_fraction.values(), default=1.0)
    for n, limit in sorted(rule.max_dup_ngram_fraction.items()):
        share = _dup_ngram_share(words, n) / total
        if share > limit:
            return "repeated_ngrams", f"repeated {n}-grams cover {share:.2f}"
        if share <= floor:  # repeats of longer n-grams cover a subset of these characters
            break
    return None


# ---- content patterns ------------------------------------------------------------------------

PLACEHOLDER_PATTERNS = [
    r"\{\{[^{}\n]{1,80}\}\}",  # {{Order Number}}
    r"\[(?:[A-Z][A-Z0-9]{2,}(?:[ _][A-Z0-9]+)*|(?i:your|insert|customer|company|recipient)\b[^\[\]\n]{0,40})\]",  # [NAME]
    r"<(?:(?i:placeholder|insert\b[^<>\n]{0,40})|[A-Z][A-Z0-9]*_[A-Z0-9_]+)>",  # <placeholder>, <ORDER_ID>
]

AI_SELF_REFERENCE = [
    r"as an ai\b", r"as an artificial intelligence", r"as a (?:large )?language model", r"i(?:'m| am) an ai\b",
    r"i(?:'m| am) (?:just )?a (?:large )?language model", r"i(?:'m| am) an artificial intelligence",
    r"(?:trained|developed|created) by openai", r"i do(?:n't| not) have (?:personal )?(?:feelings|emotions|opinions)",
]

REFUSALS = [
    r"i(?:'m| am) sorry,? but i (?:can(?:'t|not)|am unable|won't)", r"i apologi[sz]e,? but i (?:can(?:'t|not)|am unable)",
    r"i can(?:'t|not) (?:assist|help) with (?:that|this)(?: request)?", r"i can(?:'t|not) fulfill",
    r"i(?:'m| am) (?:unable|not able) to (?:assist|help|comply) with (?:that|this)",
    r"i must decline", r"i(?:'m| am) not comfortable (?:providing|helping)",
]


class PatternRule(Rule):
    """A regular-expression rule: a row trips it when any pattern matches the chosen roles' text."""

    roles: list[Role] = Field(["assistant"], description="Whose turns are searched.")
    patterns: list[str] = Field(default_factory=list, description="Regular expressions (Rust `regex` syntax).")
    ignore_case: bool = Field(False, description="Match case-insensitively.")

    def regex(self) -> str:
        joined = "|".join(f"(?:{p})" for p in self.patterns)
        return f"(?i){joined}" if self.ignore_case else joined


class PlaceholderRule(PatternRule):
    """`placeholder_leak`: unfilled template slots such as `{{Order Number}}`, `[NAME]`, `<placeholder>`."""

    patterns: list[str] = Field(default_factory=lambda: list(PLACEHOLDER_PATTERNS), description="Placeholder regexes.")


class SelfReferenceRule(PatternRule):
    """`ai_self_reference`: "As an AI language model" and similar."""

    patterns: list[str] = Field(default_factory=lambda: list(AI_SELF_REFERENCE), description="Phrases (regex).")
    ignore_case: bool = True


class RefusalRule(PatternRule):
    """`boilerplate_refusal`: canned refusals. Turn it off for safety data, where refusals are the point."""

    patterns: list[str] = Field(default_factory=lambda: list(REFUSALS), description="Phrases (regex).")
    ignore_case: bool = True


def check_pattern(texts: Texts, rule: PatternRule) -> tuple[pl.Series, pl.Series]:
    text = pl.select(pl.concat_str([pl.lit(texts.of(r)) for r in rule.roles], separator="\n", ignore_nulls=True)).to_series()
    pattern = rule.regex()
    return text.str.contains(pattern), text.str.extract(f"({pattern})", 1)


# ---- turn shape ------------------------------------------------------------------------------


class TruncationRule(Rule):
    """`truncated_response`: the last assistant turn has an unclosed code fence or ends on a comma,
    an opening bracket, a hyphen or a dangling article / conjunction."""

    endings: list[str] = Field(
        ["and", "or", "but", "the", "a", "an", "to", "of", "with", "because"],
        description="Final words that mark a cut-off sentence.",
    )


def check_empty(texts: Texts, rule: Rule) -> tuple[pl.Series, pl.Series]:
    return texts.empty_assistant.fill_null(False), pl.Series([None] * len(texts.user), dtype=pl.String)


def check_truncated(texts: Texts, rule: TruncationRule) -> tuple[pl.Series, pl.Series]:
    last = texts.last_assistant.fill_null("").str.strip_chars()
    words = "|".join(re.escape(w) for w in rule.endings)
    tail = last.str.extract(r"(\S+\s*)$", 1)
    hit = (last.str.count_matches("```") % 2 == 1) | last.str.contains(r"[,(\[{\-–]$") | last.str.contains(
        rf"(?i)\b(?:{words})$"
    )
    return hit & (last.str.len_chars() > 0), tail


class EchoRule(Rule):
    """`echoes_user`: the assistant turns mostly repeat the user turns (word-set Jaccard similarity)."""

    min_similarity: float = Field(0.9, gt=0.0, le=1.0, description="Jaccard similarity of the word sets that trips it.")


def check_echo(texts: Texts, rule: EchoRule) -> tuple[pl.Series, pl.Series]:
    def words(text: pl.Series) -> pl.Series:
        return _words(text.str.to_lowercase().str.replace_all(r"[^\w\s]", "")).list.unique()

    user, assistant = words(texts.user), words(texts.assistant)
    frame = pl.DataFrame({"u": user, "a": assistant})
    sim = frame.select(
        pl.col("u").list.set_intersection("a").list.len() / pl.col("u").list.set_union("a").list.len().cast(pl.Float64)
    ).to_series()
    return (sim >= rule.min_similarity) & texts.assistant.is_not_null(), sim.round(3)


class LanguageRule(Rule):
    """`wrong_language`: the detected language (lingua, offline models) is not an allowed one.
    Off by default: loading lingua's models takes several seconds."""

    enabled: bool = False
    role: Role = Field("assistant", description="Whose turns are identified.")
    allowed: list[str] = Field(["en"], min_length=1, description="ISO 639-1 codes that pass.")
    candidates: list[str] | None = Field(
        None, description="ISO 639-1 codes the detector chooses among; `None` is every language lingua knows."
    )
    min_chars: int = Field(
        12, ge=1, description="Texts with fewer characters are not judged (characters, since Chinese or Japanese have no spaces)."
    )


def check_language(texts: Texts, rule: LanguageRule) -> tuple[pl.Series, pl.Series]:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    def language(code: str) -> Language:
        return Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))

    builder = (
        LanguageDetectorBuilder.from_languages(*{language(c) for c in [*rule.candidates, *rule.allowed]})
        if rule.candidates else LanguageDetectorBuilder.from_all_languages()
    )
    detector = builder.build()
    text = texts.of(rule.role).fill_null("")
    judged = (text.str.strip_chars().str.len_chars() >= rule.min_chars).to_list()
    found = detector.detect_languages_in_parallel_of([t if j else "" for t, j in zip(text.to_list(), judged, strict=True)])
    codes = [f.iso_code_639_1.name.lower() if f is not None and j else None for f, j in zip(found, judged, strict=True)]
    detected = pl.Series(codes, dtype=pl.String)
    return detected.is_not_null() & ~detected.is_in(rule.allowed), detected
