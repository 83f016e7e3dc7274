"""``augment``: ``n`` variants of the user turn of each ``train`` row, kept only when they mean the same.

Methods: ``eda`` (model-free: WordNet synonyms, random insertion / swap / deletion; the default),
``noise`` (typos, casing, punctuation, whitespace) and ``llm`` (a generator paraphrases with
``prompt``). Every candidate is checked, in this order, and removed with the first reason that applies:

* ``paraphrase_drift`` / ``paraphrase_too_close``: cosine similarity to its source (bundled
  MiniLM) below ``min_similarity`` / above ``max_similarity``, or identical to its source;
* ``label_changed``: with ``head``, the classifier no longer predicts the source's label;
* ``duplicate``: same normalised text as, or word 3-gram Jaccard >= ``duplicate_threshold``
  with, another row of the frame (any split) or a kept candidate;
* ``over_max_per_label``: the label already reached ``max_per_label`` with earlier candidates.

Kept candidates are added rows with the source's label and split, their own content ``id``, and
two columns: ``augmented_from`` (the source's id) and ``augment_similarity``. Accounting:
rows in + candidates = rows kept (originals + accepted) + rejected candidates. Held-out rows
(``validation`` / ``test``) are never varied.

.. code-block:: yaml

    stages:
      - augment: {method: eda, n: 4, only_labels: [card_swallowed]}
"""

from __future__ import annotations

import logging
import random
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from curate.embeddings import EncoderName
from curate.generate import GeneratorConfig, Sampling, load_generator
from curate.records import conversation_columns, text_of
from curate.stages._augment_checks import cap_per_label, duplicates, label_check, load_head, meaning, similarities
from curate.stages._augment_eda import EDA_OPERATIONS, eda
from curate.stages._augment_noise import NOISE_KINDS, noise
from curate.stages._augment_rows import Selection, build_candidates, select_sources
from curate.stages._augment_wordnet import load_lexicon
from curate.stages.base import Stage, StageConfig, StageContext, StageResult, detail_json
from curate.stages.registry import register
from curate.stats import Phases

__all__ = ["Augment", "AugmentConfig", "DEFAULT_PROMPT", "WINDOWS"]

log = logging.getLogger(__name__)

DEFAULT_PROMPT = (
    "Rewrite the following text with different words, keeping its meaning. Answer with the rewritten text only.\n\n"
    "{text}"
)
# Default [min, max] similarity per method. min: below 0.8 a candidate's intent (kNN over other BANKING77 rows)
# drops more than 10% under the source rows' own kNN accuracy (bench/augment.py; docs/generation.md). max: eda
# candidates above 0.98 are mostly unchanged or reordered function words; noise variants are near copies on
# purpose (the encoder is uncased: a casing variant scores 1.0). llm: not measurable offline, eda's window.
WINDOWS = {"eda": (0.8, 0.98), "noise": (0.8, 1.0), "llm": (0.8, 0.98)}


class AugmentConfig(StageConfig):
    """How candidates are made, which rows get them, and the checks they pass."""

    # how
    method: Literal["eda", "noise", "llm"] | None = Field(
        None, description="`eda`, `noise` or `llm`; `None`: `llm` when `generator` is set, else `eda`."
    )
    n: int = Field(2, ge=1, le=64, description="Candidates made per source row (before the checks).")
    fields: list[Literal["user", "assistant"]] = Field(
        ["user"], min_length=1, max_length=2,
        description="Turns varied: the last `user` turn, and with `assistant` also the last assistant turn.",
    )  # fmt: skip
    alpha: float = Field(0.1, gt=0.0, le=0.5, description="`eda`: share of the words one operation changes.")
    operations: list[Literal["synonym", "insert", "swap", "delete"]] = Field(
        list(EDA_OPERATIONS), min_length=1, description="`eda`: operations used, one per candidate in turn."
    )
    noise: list[Literal["typo", "case", "punctuation", "whitespace"]] = Field(
        list(NOISE_KINDS), min_length=1, description="`noise`: kinds used, one per candidate in turn."
    )
    typo_rate: float = Field(0.1, gt=0.0, le=1.0, description="`noise`: share of the words that get a typo.")
    synonym_senses: int = Field(2, ge=1, description="`eda`: WordNet senses per word that synonyms come from, most frequent first.")
    generator: GeneratorConfig | None = Field(
        None, description="`llm`: the model that paraphrases (sampling is switched on; its seed defaults to `seed`)."
    )
    prompt: str = Field(DEFAULT_PROMPT, description="`llm`: the user message sent per turn; `{text}` is the turn's text.")
    # checks
    min_similarity: float | None = Field(
        None, ge=-1.0, le=1.0, description="Lowest similarity kept; `None`: the method's default (see `WINDOWS`)."
    )
    max_similarity: float | None = Field(
        None, ge=-1.0, le=1.0, description="Highest similarity kept; `None`: the method's default (see `WINDOWS`)."
    )
    encoder: EncoderName = Field(
        "minilm", description="Encoder of the similarity check (`minilm`, `onnx`, `static`); `WINDOWS` were measured with `minilm`."
    )
    head: str | None = Field(None, description="A `head` classifier run (id or folder); `None`: no label check.")
    runs_root: str = Field("runs", description="Run registry for `head` given as a run id (relative to the pipeline).")
    duplicate_threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="Word 3-gram Jaccard at which a candidate duplicates another row."
    )
    # which rows
    only_labels: list[str] | None = Field(None, description="Vary only rows with these labels; `None`: every label.")
    max_per_label: int | None = Field(
        None, ge=1, description="Vary a label only until it has this many train rows; `None`: no limit."
    )
    seed: int = Field(0, description="Seed of the variants (and of the generator's sampler unless it sets one).")

    @model_validator(mode="after")
    def _consistent(self) -> AugmentConfig:
        if self.method == "llm" and self.generator is None:
            raise ValueError("method `llm` needs a `generator` block (for example `generator: {model: runs/sft-0001}`)")
        if self.method in ("eda", "noise") and self.generator is not None:
            raise ValueError(f"method `{self.method}` uses no model; remove `generator` or set `method: llm`")
        if "{text}" not in self.prompt:
            raise ValueError("`prompt` must contain `{text}`, where the turn's text goes")
        low, high = self.window
        if low > high:
            raise ValueError(f"min_similarity ({low}) is above max_similarity ({high})")
        if len(set(self.fields)) != len(self.fields):
            raise ValueError(f"`fields` lists a turn twice: {self.fields}")
        sampling = self.generator.sampling if self.generator else None
        if sampling is not None and "do_sample" in sampling.model_fields_set and not sampling.do_sample and self.n > 1:
            raise ValueError("greedy decoding (`do_sample: false`) gives n identical paraphrases; remove it")
        return self

    @property
    def resolved_method(self) -> str:
        """The method used: ``method``, or ``llm`` / ``eda`` by whether a generator is set."""
        return self.method or ("llm" if self.generator is not None else "eda")

    @property
    def window(self) -> tuple[float, float]:
        """``[min_similarity, max_similarity]`` with the method's defaults filled in."""
        low, high = WINDOWS[self.resolved_method]
        return (
            low if self.min_similarity is None else self.min_similarity,
            high if self.max_similarity is None else self.max_similarity,
        )


@register
class Augment(Stage):
    """Adds checked variants of train rows; see :class:`AugmentConfig` and the module docstring."""

    name = "augment"
    Config = AugmentConfig
    accepts = ("sft", "prompt", "preference")

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg: AugmentConfig = self.config
        phases = Phases()
        notes: dict = {}  # stats the steps add: generator name, labels the head does not know
        with phases("generate"):
            head = load_head(cfg.head, runs_root=cfg.runs_root, base_dir=ctx.base_dir, stage_id=ctx.stage_id) if cfg.head else None
            selection = select_sources(
                frame, kind=ctx.kind, fields=cfg.fields, n=cfg.n, only_labels=cfg.only_labels,
                max_per_label=cfg.max_per_label, seed=cfg.seed,
            )  # fmt: skip
            if not selection.rows:
                return self._result(frame, None, [], [], selection=selection, seconds=phases.seconds, notes=notes)
            conversations = frame[conversation_columns(ctx.kind)[0]].gather(selection.rows).to_list()
            texts = [[c[t]["content"] for t in turns] for c, turns in zip(conversations, selection.turns, strict=True)]
            variants = self._variants(texts, frame["id"].gather(selection.rows).to_list(), ctx=ctx, notes=notes)
            candidates = build_candidates(frame, selection, variants, kind=ctx.kind, n=cfg.n)

        with phases("similarity"):
            sources = [row for row in texts for _ in range(cfg.n)]  # per candidate, its source's field texts
            made = [[field[k] for field in row] for row in variants for k in range(cfg.n)]
            per_field = [similarities([s[f] for s in sources], [m[f] for m in made], ctx=ctx, encoder=cfg.encoder) for f in range(len(cfg.fields))]
            candidates = candidates.with_columns(augment_similarity=pl.Series(np.min(per_field, axis=0), dtype=pl.Float64))
            reasons, details = meaning(candidates, window=cfg.window)

        with phases("label_check"):
            if head is not None:
                notes.update(label_check(candidates, reasons, details, head=head, kind=ctx.kind))

        with phases("duplicates"):
            self._duplicates(frame, candidates, reasons, details, kind=ctx.kind)
        cap_per_label(candidates["label"].to_list() if "label" in candidates.columns else None, reasons, details, selection.need)
        return self._result(frame, candidates, reasons, details, selection=selection, seconds=phases.seconds, notes=notes)

    def _duplicates(self, frame: pl.DataFrame, candidates: pl.DataFrame, reasons: list, details: list, *, kind: str) -> None:
        cfg: AugmentConfig = self.config
        column = conversation_columns(kind)[0]
        dup = duplicates(
            text_of(frame, kind, roles=cfg.fields, columns=[column]),
            text_of(candidates, kind, roles=cfg.fields, columns=[column]),
            existing_ids=frame["id"].to_list(), source_ids=candidates["augmented_from"].to_list(),
            active=np.array([r is None for r in reasons]), threshold=cfg.duplicate_threshold, seed=cfg.seed,
        )  # fmt: skip
        all_ids = frame["id"].to_list() + candidates["id"].to_list()
        for j, row in enumerate(dup):
            if row is not None:
                reasons[j], details[j] = "duplicate", {"duplicate_of": all_ids[row]}

    def _variants(self, texts: list[list[str]], ids: list[str], *, ctx: StageContext, notes: dict) -> list[list[list[str]]]:
        """``out[i][f][k]``: the ``k``-th variant of field ``f`` of source ``i``."""
        cfg: AugmentConfig = self.config
        method = cfg.resolved_method
        if method == "llm":
            return self._paraphrases(texts, ctx=ctx, notes=notes)
        lexicon = load_lexicon(senses=cfg.synonym_senses) if method == "eda" else None
        out = []
        for row, source_id in zip(texts, ids, strict=True):
            fields = []
            for f, text in enumerate(row):
                made = []
                for k in range(cfg.n):
                    rng = random.Random(f"{cfg.seed}:{source_id}:{f}:{k}")  # independent of row order
                    kind = self._operation(source_id, k)
                    if method == "eda":
                        made.append(eda(text, operation=kind, alpha=cfg.alpha, lexicon=lexicon, rng=rng))
                    else:
                        made.append(noise(text, kind=kind, rate=cfg.typo_rate, rng=rng))
                fields.append(made)
            out.append(fields)
        return out

    def _operation(self, source_id: str, k: int) -> str:
        """The eda operation / noise kind of candidate ``k`` of a source: the kinds in turn, from a seeded start."""
        cfg: AugmentConfig = self.config
        kinds = {"eda": cfg.operations, "noise": cfg.noise}.get(cfg.resolved_method, ["llm"])
        return kinds[(random.Random(f"{cfg.seed}:{source_id}").randrange(len(kinds)) + k) % len(kinds)]

    def _paraphrases(self, texts: list[list[str]], *, ctx: StageContext, notes: dict) -> list[list[list[str]]]:
        """``n`` sampled answers of the generator to ``prompt`` per field text."""
        cfg: AugmentConfig = self.config
        gen_cfg = cfg.generator.resolved(ctx.base_dir)
        update: dict = {"do_sample": True}
        if "seed" not in gen_cfg.sampling.model_fields_set:
            update["seed"] = cfg.seed
        sampling = Sampling.model_validate({**gen_cfg.sampling.model_dump(), **update})
        generator = load_generator(gen_cfg.model_copy(update={"sampling": sampling}), env=ctx.env)
        try:
            flat = [t for row in texts for t in row]
            prompts = [[{"role": "user", "content": cfg.prompt.replace("{text}", t)}] for t in flat]
            answers = generator.generate(prompts, n=cfg.n, sampling=sampling) if prompts else []
        finally:
            generator.close()
        notes["generator"] = generator.name
        width = len(cfg.fields)
        return [[[a.strip() for a in answers[i * width + f]] for f in range(width)] for i in range(len(texts))]

    def _result(
        self,
        frame: pl.DataFrame,
        candidates: pl.DataFrame | None,
        reasons: list[str | None],
        details: list[dict],
        *,
        selection: Selection,
        seconds: dict[str, float],
        notes: dict,
    ) -> StageResult:
        """Originals plus accepted candidates kept, rejected candidates removed with reason and detail, and the stats."""
        cfg: AugmentConfig = self.config
        method = cfg.resolved_method
        stats = {"method": method, "n": cfg.n, "fields": cfg.fields, "window": list(cfg.window),
                 "sources": len(selection.rows), "skipped": selection.skipped}  # fmt: skip
        if candidates is None:
            stats.update(candidates=0, accepted=0)
            return StageResult(kept=frame, removed=frame.head(0).with_columns(reason=pl.lit(None, pl.String),
                               detail=pl.lit(None, pl.String)), stats=stats)  # fmt: skip
        ok = pl.Series([r is None for r in reasons])
        operations = [self._operation(src, j % cfg.n) for j, src in enumerate(candidates["augmented_from"])]
        detail = [
            detail_json(source=src, similarity=round(float(s), 4), method=method, operation=op, **d)
            for src, s, op, d in zip(candidates["augmented_from"], candidates["augment_similarity"], operations, details,
                                     strict=True)
        ]  # fmt: skip
        per_operation: dict[str, dict[str, int]] = {}
        for op, reason in zip(operations, reasons, strict=True):
            counts = per_operation.setdefault(op, {"candidates": 0, "accepted": 0})
            counts["candidates"] += 1
            counts["accepted"] += reason is None
        tagged = candidates.with_columns(reason=pl.Series(reasons, dtype=pl.String), detail=pl.Series(detail))
        accepted = tagged.filter(ok).drop("reason", "detail")
        kept = pl.concat([frame, accepted], how="diagonal_relaxed")
        sims = accepted["augment_similarity"]
        stats.update(
            candidates=candidates.height, accepted=accepted.height,
            acceptance_rate=round(accepted.height / candidates.height, 4), per_operation=per_operation,
            similarity_accepted={"min": sims.min(), "median": sims.median(), "max": sims.max()} if len(sims) else None,
            added_per_label=dict(accepted.group_by("label").len().sort("label").iter_rows()) if "label" in accepted.columns else {},
            seconds={k: round(v, 3) for k, v in seconds.items()},
        )  # fmt: skip
        stats.update(notes)
        log.info("augment (%s): %d candidates, %d accepted", method, candidates.height, accepted.height)
        return StageResult(kept=kept, removed=tagged.filter(~ok), stats=stats, added=candidates.height)
