"""``quality``: heuristic rules plus optional model scores; remove or flag, with the rule and value.

Rules run in the order of :class:`QualityConfig`'s fields; a removed row's ``reason`` is the
first rule it trips and its ``detail`` names that rule, the value that tripped it and every
other flag. The ``too_long`` bound is checked before anything reads the texts: a row over it is
judged by that rule alone (no other rule or model scans a 50 MB turn). With ``mode: flag``
nothing is removed and the reasons go into a ``quality_flags`` list column instead. Model scores
stay as columns (``quality_score``, ``perplexity``) either way, so later stages (``balance``
with ``score: quality_score``) can use them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import polars as pl
from pydantic import Field

from curate.records import text_of
from curate.stages import _quality_rules as rules
from curate.stages._quality_models import ClassifierScore, PerplexityScore, classifier_scores, perplexities
from curate.stages.base import Stage, StageConfig, StageContext, StageResult, detail_json
from curate.stages.registry import register

__all__ = ["Quality", "QualityConfig"]

# kind -> (column with user turns, column with assistant turns or None)
_CONVERSATION = {"sft": ("messages", "messages"), "preference": ("prompt", "chosen"), "prompt": ("prompt", None),
                 "feedback": ("prompt", "completion")}


class QualityConfig(StageConfig):
    """Heuristic rules (each switchable: `rule: false`, or tuned: `rule: {...}`) and optional model scores."""

    mode: Literal["filter", "flag"] = Field(
        "filter", description="`filter` removes rows that trip a rule; `flag` keeps them and lists the reasons in `quality_flags`."
    )
    # turn shape
    empty_response: rules.Rule = Field(default_factory=rules.Rule, description="`empty_response`: an assistant turn is blank.")
    truncated_response: rules.TruncationRule = Field(default_factory=rules.TruncationRule, description="See TruncationRule.")
    echoes_user: rules.EchoRule = Field(default_factory=rules.EchoRule, description="See EchoRule.")
    # content
    placeholder_leak: rules.PlaceholderRule = Field(default_factory=rules.PlaceholderRule, description="See PlaceholderRule.")
    ai_self_reference: rules.SelfReferenceRule = Field(default_factory=rules.SelfReferenceRule, description="See SelfReferenceRule.")
    boilerplate_refusal: rules.RefusalRule = Field(default_factory=rules.RefusalRule, description="See RefusalRule.")
    # size and statistics
    length: rules.LengthRule = Field(default_factory=rules.LengthRule, description="See LengthRule.")
    mean_word_length: rules.MeanWordLengthRule = Field(default_factory=rules.MeanWordLengthRule, description="See MeanWordLengthRule.")
    alpha_ratio: rules.AlphaRule = Field(default_factory=rules.AlphaRule, description="See AlphaRule.")
    symbol_ratio: rules.SymbolRule = Field(default_factory=rules.SymbolRule, description="See SymbolRule.")
    repetition: rules.RepetitionRule = Field(default_factory=rules.RepetitionRule, description="See RepetitionRule.")
    language: rules.LanguageRule = Field(default_factory=rules.LanguageRule, description="See LanguageRule (off by default).")
    # model scores
    classifier: ClassifierScore | None = Field(None, description="Quality classifier; `None` is off.")
    perplexity: PerplexityScore | None = Field(None, description="Perplexity under a causal LM; `None` is off.")


Check = Callable[[rules.Texts], tuple[pl.Series, pl.Series]]


def _texts(frame: pl.DataFrame, kind: str) -> rules.Texts:
    user_col, assistant_col = _CONVERSATION[kind]
    user = text_of(frame, kind, roles=["user"], columns=[user_col])
    if assistant_col is None:
        none = pl.Series([None] * frame.height, dtype=pl.String)
        return rules.Texts(user=user, assistant=none, last_assistant=none, empty_assistant=pl.Series([None] * frame.height, dtype=pl.Boolean))
    turns = pl.col(assistant_col).list.eval(
        pl.element().filter(pl.element().struct.field("role") == "assistant").struct.field("content")
    )
    shape = frame.select(last=turns.list.last(), empty=turns.list.eval(pl.element().fill_null("").str.strip_chars() == "").list.any())
    return rules.Texts(
        user=user,
        assistant=text_of(frame, kind, roles=["assistant"], columns=[assistant_col]),
        last_assistant=shape["last"],
        empty_assistant=shape["empty"],
    )


def _repetition(texts: rules.Texts, rule: rules.RepetitionRule) -> dict[str, tuple[pl.Series, pl.Series]]:
    found = [
        rules.repetition_of(t, rule) if t and len(t.split()) >= rule.min_words else None
        for t in texts.of(rule.role).to_list()
    ]
    out = {}
    for reason in ("repeated_lines", "repeated_paragraphs", "repeated_ngrams"):
        out[reason] = (
            pl.Series([f is not None and f[0] == reason for f in found]),
            pl.Series([f[1] if f is not None and f[0] == reason else None for f in found], dtype=pl.String),
        )
    return out


def _spread(values: pl.Series, rows: pl.Series, height: int) -> pl.Series:
    """``values`` of ``rows`` placed in a column of ``height`` rows; the other rows are null."""
    if len(rows) == height:
        return values
    return pl.repeat(None, height, dtype=values.dtype, eager=True).alias(values.name).scatter(rows, values)


@register
class Quality(Stage):
    """Heuristic and model-based quality filter; see :class:`QualityConfig` for every rule."""

    name = "quality"
    Config = QualityConfig

    def checks(self, texts: rules.Texts) -> dict[str, tuple[str, Check]]:
        """reason -> (rule name, check) for the enabled heuristic rules, in order."""
        cfg = self.config
        table: list[tuple[str, str, rules.Rule, Check]] = [
            ("empty_response", "empty_response", cfg.empty_response, lambda t: rules.check_empty(t, cfg.empty_response)),
            ("truncated_response", "truncated_response", cfg.truncated_response, lambda t: rules.check_truncated(t, cfg.truncated_response)),
            ("echoes_user", "echoes_user", cfg.echoes_user, lambda t: rules.check_echo(t, cfg.echoes_user)),
            ("placeholder_leak", "placeholder_leak", cfg.placeholder_leak, lambda t: rules.check_pattern(t, cfg.placeholder_leak)),
            ("ai_self_reference", "ai_self_reference", cfg.ai_self_reference, lambda t: rules.check_pattern(t, cfg.ai_self_reference)),
            ("boilerplate_refusal", "boilerplate_refusal", cfg.boilerplate_refusal, lambda t: rules.check_pattern(t, cfg.boilerplate_refusal)),
            ("too_short", "length", cfg.length, lambda t: rules.check_length(t, cfg.length, short=True)),
            ("too_long", "length", cfg.length, lambda t: rules.check_length(t, cfg.length, short=False)),
            ("mean_word_length", "mean_word_length", cfg.mean_word_length, lambda t: rules.check_mean_word_length(t, cfg.mean_word_length)),
            ("low_alpha_ratio", "alpha_ratio", cfg.alpha_ratio, lambda t: rules.check_alpha(t, cfg.alpha_ratio)),
            ("high_symbol_ratio", "symbol_ratio", cfg.symbol_ratio, lambda t: rules.check_symbols(t, cfg.symbol_ratio)),
            ("wrong_language", "language", cfg.language, lambda t: rules.check_language(t, cfg.language)),
        ]
        return {reason: (name, check) for reason, name, rule, check in table if rule.enabled}

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg = self.config
        texts = _texts(frame, ctx.kind)
        too_long = None
        rows = pl.int_range(frame.height, eager=True)  # the rows every rule judges
        if cfg.length.enabled:  # character and word counts only, before any rule scans the texts
            too_long = rules.check_length(texts, cfg.length, short=False)
            rows = (~too_long[0]).arg_true()
        judged = texts.gather(rows)
        results: dict[str, tuple[str, pl.Series, pl.Series]] = {}
        for reason, (rule, check) in ctx.track(self.checks(judged).items(), description="rules"):
            if reason == "too_long":
                tripped, value = too_long
            else:
                tripped, value = (_spread(v, rows, frame.height) for v in check(judged))
            results[reason] = (rule, tripped.fill_null(False), value.cast(pl.String))
        if cfg.repetition.enabled:
            for reason, (tripped, value) in _repetition(judged, cfg.repetition).items():
                results[reason] = ("repetition", _spread(tripped, rows, frame.height).fill_null(False),
                                   _spread(value, rows, frame.height))
        scored = self._scores(frame, judged, rows, ctx, results)
        return self._result(scored, results)

    def _scores(self, frame: pl.DataFrame, texts: rules.Texts, rows: pl.Series, ctx: StageContext,
                results: dict) -> pl.DataFrame:
        """Model score columns; ``texts`` are those of ``rows``, the other rows (too long) score null."""
        cfg = self.config
        if cfg.classifier is not None:
            roles = None if cfg.classifier.text == "all" else [cfg.classifier.text]
            cache = ctx.store.cache_dir("embeddings") if ctx.store is not None else None
            score = classifier_scores(text_of(frame, ctx.kind, roles=roles).gather(rows), cfg.classifier,
                                      base_dir=ctx.base_dir, cache_dir=cache, track=ctx.track)
            score = _spread(score, rows, frame.height)
            frame = frame.with_columns(score)
            if cfg.classifier.min_score is not None:
                results["low_quality_score"] = ("classifier", (score < cfg.classifier.min_score).fill_null(False),
                                                score.round(4).cast(pl.String))
        if cfg.perplexity is not None and texts.assistant.is_not_null().any():
            ppl = _spread(perplexities(texts.user, texts.assistant, cfg.perplexity, base_dir=ctx.base_dir), rows,
                          frame.height)
            frame = frame.with_columns(ppl)
            if cfg.perplexity.max_perplexity is not None:
                results["high_perplexity"] = ("perplexity", (ppl > cfg.perplexity.max_perplexity).fill_null(False),
                                              ppl.round(2).cast(pl.String))
        return frame

    def _result(self, frame: pl.DataFrame, results: dict[str, tuple[str, pl.Series, pl.Series]]) -> StageResult:
        flags = pl.DataFrame({r: tripped for r, (_, tripped, _) in results.items()}) if results else None
        lists = (
            flags.select(pl.concat_list([pl.when(pl.col(r)).then(pl.lit(r)) for r in results]).list.drop_nulls()).to_series()
            if flags is not None else pl.Series([[]] * frame.height, dtype=pl.List(pl.String))
        )
        counts = {r: int(t.sum()) for r, (_, t, _) in results.items()}
        stats = {"flagged_per_rule": counts, "mode": self.config.mode, "rules": list(results)}
        if self.config.mode == "flag":
            kept = frame.with_columns(quality_flags=lists)
            return StageResult(kept=kept, removed=kept.clear().with_columns(reason=pl.lit(None, pl.String), detail=pl.lit(None, pl.String)), stats=stats)
        first = lists.list.first()
        values = {r: v for r, (_, _, v) in results.items()}
        details = [
            None if reason is None else detail_json(rule=results[reason][0], reason=reason, value=values[reason][i], flags=row_flags)
            for i, (reason, row_flags) in enumerate(zip(first.to_list(), lists.to_list(), strict=True))
        ]
        return StageResult.partition(
            frame, first.is_null(), reason=pl.lit(first), detail=pl.lit(pl.Series(details, dtype=pl.String)), stats=stats
        )
