"""``generate``: candidate answers per prompt from one or more generators, as preference pairs.

Each prompt (a ``prompt`` row, or the conversation before the last assistant turn of an ``sft``
row) gets ``n`` answers from every generator in ``generators`` (for example a run and its base
model, or one model at two temperatures). With ``include_reference`` the sft row's own
assistant answer is a candidate too, named ``reference``. The stage turns the rows into
``preference`` rows, one per prompt; the record kind changes, and the runner records that in
the lineage (``kind_changes``).

* With a ``judge`` (a reward-model run, or a chat model reading the MT-Bench pairwise template;
  the same block as ``curate eval``'s ``judge:``), every candidate is scored: ``chosen`` is the
  best, ``rejected`` the worst and ``margin`` their score difference. When that difference is
  at most ``judge.tie_margin``, the judge could not tell them apart and the pair is left unranked.
* Without one, the pair is two candidates (from two generators when there are two) in a seeded
  random order with ``margin`` null, ready for the ``label`` stage (Argilla annotators).

``meta.generate`` of every pair holds the source row's id, ``ranked``, the generators of
``chosen`` and ``rejected`` and every candidate with its generator and score. A prompt a
generator failed on is removed as ``generation_failed``; one with fewer than two distinct
non-empty candidates as ``empty_generation``; an sft row with no turn before its assistant
answer as ``no_prompt``. The removed rows keep their own (``sft`` / ``prompt``) columns.

.. code-block:: yaml

    stages:
      - generate:
          generators:
            - {model: runs/sft-lora-20260101-000000-abc123, sampling: {do_sample: true, temperature: 0.7}}
            - {model: models/base, sampling: {do_sample: true, temperature: 0.7}}
          n: 1
          judge: {kind: reward_model, model: runs/reward-full-20260101-000000-def456}
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl
import xxhash
from pydantic import Field

from curate.errors import CurateError, StageError
from curate.evaluate.config import JudgeConfig
from curate.generate import GeneratorConfig
from curate.records import SCHEMAS, record_id
from curate.stages._generate_rank import Candidate, Outputs, generate_candidates, judge_scores
from curate.stages.base import Stage, StageConfig, StageContext, StageResult, detail_json
from curate.stages.registry import register

__all__ = ["Generate", "GenerateConfig"]

log = logging.getLogger(__name__)


class GenerateConfig(StageConfig):
    """Who answers each prompt, how many times, and who ranks the answers."""

    generators: list[GeneratorConfig] = Field(
        min_length=1,
        description="Generators whose answers become candidates (same block as everywhere curate generates). Two "
        "generators with the same name are told apart as `name#2`.",
    )
    n: int = Field(2, ge=1, description="Answers per prompt from each generator (identical under greedy decoding).")
    include_reference: bool = Field(
        True,
        description="`sft` rows: the row's own last assistant answer is a candidate named `reference`, so one "
        "generator with `n: 1` already makes a pair. No effect on `prompt` rows.",
    )
    judge: JudgeConfig | None = Field(
        None,
        description="Ranks the candidates (`reward_model`: the reward; `llm`: mean pairwise win score): chosen is the "
        "best, rejected the worst, margin their difference. `None`: pairs are left unranked for the `label` stage.",
    )
    runs_root: str = Field("runs", description="Run registry for a judge given as a run id (relative to the pipeline).")
    seed: int = Field(0, description="Seed of the order of an unranked pair's two candidates.")


@register
class Generate(Stage):
    """Prompts in, preference pairs out; see :class:`GenerateConfig`."""

    name = "generate"
    Config = GenerateConfig
    accepts = ("sft", "prompt")
    produces = "preference"

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg: GenerateConfig = self.config
        if ctx.kind not in self.accepts:
            raise StageError(f"Stage {ctx.stage_id!r} (generate) reads sft or prompt rows; this pipeline has {ctx.kind} rows.")
        rows = frame.to_dicts()
        turns = [_turns(row, ctx.kind, include_reference=cfg.include_reference) for row in rows]
        asked = [i for i, (prompt, _) in enumerate(turns) if prompt]
        outputs = []
        for g, config in enumerate(ctx.track(cfg.generators, description="generators", total=len(cfg.generators))):
            try:
                _, out = generate_candidates(
                    config.resolved(ctx.base_dir), [turns[i][0] for i in asked], n=cfg.n, env=ctx.env
                )
            except CurateError as exc:  # a generator that cannot be built (GenerationError is a removal reason)
                raise StageError(
                    f"Stage {ctx.stage_id!r} (generate), generator {g + 1} of {len(cfg.generators)} "
                    f"({config.backend}, model {config.model!r}): {exc}"
                ) from None
            outputs.append(out)
        names = _unique_names([o.name for o in outputs])
        candidates, reasons = _sort_out(turns, asked, outputs, names)
        judged = sorted(candidates)
        judge = self._judge(ctx) if cfg.judge is not None and judged else None
        if judge is not None:
            judge_scores(judge, [turns[i][0] for i in judged], [candidates[i] for i in judged], swap=cfg.judge.swap)
        pairs = [_pair(rows[i], turns[i][0], candidates[i], cfg=cfg, kind=ctx.kind) for i in judged]
        kept = _kept_frame(pairs, frame, kind=ctx.kind)
        removed = frame.filter(pl.Series([i in reasons for i in range(len(rows))], dtype=pl.Boolean)).with_columns(
            reason=pl.Series([reasons[i][0] for i in sorted(reasons)], dtype=pl.String),
            detail=pl.Series([reasons[i][1] for i in sorted(reasons)], dtype=pl.String),
        )
        ranked = kept["margin"].is_not_null().sum()  # only ranked pairs have a margin
        stats = {
            "generators": [{"name": name, "backend": c.backend, "model": c.model, "sampling": c.sampling.model_dump()}
                           for name, c in zip(names, cfg.generators, strict=True)],
            "n": cfg.n,
            "include_reference": cfg.include_reference and ctx.kind == "sft",
            "judge": cfg.judge.model_dump() if cfg.judge else None,
            "pairs": len(pairs),
            "ranked": ranked,
            "unranked": len(pairs) - ranked,
            "judge_unparsed": getattr(judge, "unparsed", 0),  # llm judge answers with no verdict tag (ties)
        }
        log.info("generate: %d pairs (%d ranked) from %d prompts", len(pairs), ranked, len(rows))
        return StageResult(kept=kept, removed=removed, stats=stats, kind="preference")

    def _judge(self, ctx: StageContext) -> Any:
        from curate.evaluate.judges import load_judge

        runs_root = Path(self.config.runs_root)
        return load_judge(self.config.judge, runs_root=runs_root if runs_root.is_absolute() else ctx.base_dir / runs_root)


def _turns(row: dict[str, Any], kind: str, *, include_reference: bool) -> tuple[list[dict], str | None]:
    """The prompt to answer and, for sft rows when asked, the row's own answer."""
    if kind == "prompt":
        return list(row["prompt"]), None
    messages = list(row["messages"])
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return messages, None
    return messages[:last], messages[last]["content"] if include_reference else None


def _sort_out(
    turns: list[tuple[list[dict], str | None]], asked: list[int], outputs: list[Outputs], names: list[str]
) -> tuple[dict[int, list[Candidate]], dict[int, tuple[str, str]]]:
    """Per row index: its distinct candidates, or why it is removed (reason, detail)."""
    reasons = {
        i: ("no_prompt", detail_json(problem="no turn before the last assistant answer"))
        for i in sorted(set(range(len(turns))) - set(asked))
    }
    candidates: dict[int, list[Candidate]] = {}
    for k, i in enumerate(asked):  # k: position among the prompts the generators were asked
        failed = {names[g]: out.errors[k] for g, out in enumerate(outputs) if k in out.errors}
        if failed:
            reasons[i] = ("generation_failed", detail_json(generators=names, errors=failed))
            continue
        reference = [Candidate("reference", turns[i][1])] if turns[i][1] is not None else []
        answers = reference + [Candidate(names[g], t) for g, out in enumerate(outputs) for t in out.texts[k] or []]
        distinct = _distinct(answers)
        if len(distinct) < 2:
            empty = sum(not a.text.strip() for a in answers)
            reasons[i] = ("empty_generation", detail_json(
                generators=names, candidates=len(answers), empty=empty, distinct_non_empty=len(distinct)))
            continue
        candidates[i] = distinct
    return candidates, reasons


def _unique_names(names: list[str]) -> list[str]:
    """``name``, then ``name#2``, ``name#3`` for repeats (as stage ids are numbered)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _distinct(answers: list[Candidate]) -> list[Candidate]:
    """Non-empty answers, the first of each text (compared stripped)."""
    seen: set[str] = set()
    out = []
    for answer in answers:
        text = answer.text.strip()
        if text and text not in seen:
            seen.add(text)
            out.append(answer)
    return out


def _choose(candidates: list[Candidate], *, cfg: GenerateConfig, row_id: str) -> tuple[Candidate, Candidate, bool]:
    """(chosen, rejected, ranked): best and worst by score, else two candidates in a seeded order."""
    if candidates[0].score is not None:
        best = max(candidates, key=lambda c: c.score)
        worst = min(candidates, key=lambda c: c.score)
        if best.score - worst.score > cfg.judge.tie_margin:
            return best, worst, True
    first = candidates[0]
    second = next((c for c in candidates[1:] if c.generator != first.generator), candidates[1])
    flip = xxhash.xxh3_64_intdigest(f"{cfg.seed}:{row_id}".encode()) & 1
    return (second, first, False) if flip else (first, second, False)


def _pair(row: dict[str, Any], prompt: list[dict], candidates: list[Candidate], *, cfg: GenerateConfig, kind: str) -> dict:
    chosen, rejected, ranked = _choose(candidates, cfg=cfg, row_id=row["id"])
    meta = json.loads(row["meta"]) if row.get("meta") else {}
    meta["generate"] = {
        "from_id": row["id"],
        "from_kind": kind,
        "ranked": ranked,
        "chosen_generator": chosen.generator,
        "rejected_generator": rejected.generator,
        "judge": cfg.judge.model if cfg.judge else None,
        "candidates": [{"generator": c.generator, "text": c.text, "score": c.score} for c in candidates],
    }
    pair = {
        **{k: v for k, v in row.items() if k not in SCHEMAS[kind]},  # split and columns earlier stages added
        "source": row["source"],
        "label": row["label"],
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen.text}],
        "rejected": [{"role": "assistant", "content": rejected.text}],
        "margin": chosen.score - rejected.score if ranked else None,
        "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True),
    }
    return {"id": record_id("preference", pair), **pair}


def _kept_frame(pairs: list[dict], frame: pl.DataFrame, *, kind: str) -> pl.DataFrame:
    """Preference rows with the canonical schema, then the input's extra columns (``split`` ...)."""
    extra = {c: t for c, t in frame.schema.items() if c not in SCHEMAS[kind]}
    schema = {**SCHEMAS["preference"], **extra}
    return pl.DataFrame(pairs, schema=schema) if pairs else pl.DataFrame(schema=schema)
