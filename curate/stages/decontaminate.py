"""``decontaminate``: remove rows that contain benchmark items or leak the held-out splits.

Each turn of a row is compared with the benchmark items; reasons say what matched:

* ``benchmark_exact_match``: a turn equals an item's prompt or query after normalisation;
* ``benchmark_ngram_overlap``: a turn shares a run of N words with an item's query (question plus
  answer / choices), or a near copy of a short item (adaptive N below ``ngram``);
* ``benchmark_contains_item``: a turn contains a whole short item (fewer than N words) whose words
  are rare in the checked data, or that makes up nearly all of the turn;
* ``benchmark_embedding_similar``: optional; the row's text is closer than a cosine threshold to
  a benchmark prompt (paraphrased test items);
* ``heldout_exact_match`` / ``heldout_ngram_overlap`` / ``heldout_contains_item``: the same
  checks between ``train`` rows and held-out rows (``validation`` / ``test``), so the held-out
  splits never leak into training. Rows whose split is still null are only checked against
  benchmarks.

Normalisation follows lm-eval-harness: lowercase, ASCII punctuation deleted, split on whitespace.
Indexing: :mod:`._decontam_index`; probing: :mod:`._decontam_match`; what counts:
:mod:`._decontam_judge`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curate import benchmarks
from curate.embeddings import EncoderName
from curate.errors import StageError
from curate.records import text_of
from curate.stages._decontam_heldout import heldout_matches
from curate.stages._decontam_index import BenchmarkIndex, build_index, cache_key, load_index, save_index
from curate.stages._decontam_judge import MatchRule, judge, per_row
from curate.stages._decontam_match import ProbeFn, probe, turns_of
from curate.stages._ngrams import Normalisation
from curate.stages.base import Stage, StageConfig, StageContext, StageResult, detail_json
from curate.stages.registry import register
from curate.stats import Phases

__all__ = ["BenchmarkFile", "Decontaminate", "DecontaminateConfig"]

logger = logging.getLogger(__name__)

TextChoice = Literal["all", "user", "assistant"]


class BenchmarkFile(BaseModel):
    """A benchmark read from any JSONL / JSON / CSV / Parquet file."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="The file; relative paths resolve against the pipeline file's folder.")
    name: str | None = Field(None, description="Name shown in removal details; `None` uses the file name.")
    fields: list[str] | None = Field(
        None, description="Columns joined into the query; the first is the prompt. `None` uses every text column."
    )
    id_field: str | None = Field(None, description="Column with item ids; `None` numbers the rows from 0.")


class DecontaminateConfig(StageConfig):
    """N-gram (and optional embedding) decontamination against benchmarks and held-out splits."""

    # what to check against
    against: list[str | BenchmarkFile] = Field(
        default_factory=list,
        description="Benchmarks: built-in names (gsm8k, humaneval, mmlu, truthfulqa, hellaswag, mt_bench), "
        "file paths, or `{path, name, fields, id_field}` maps. Empty checks only the held-out splits.",
    )
    benchmarks_dir: str | None = Field(
        None,
        description="Folder holding the built-in benchmarks (shared/data layout); relative to the pipeline "
        "file. `None`: the CLI's CURATE_BENCHMARKS value if set, else the first `shared/data` found walking "
        "up from the pipeline file's folder.",
    )
    missing_benchmarks: Literal["error", "skip"] = Field(
        "error",
        description="A benchmark whose files are not found: `error` stops the run; `skip` leaves it out, logs a "
        "warning and lists it under `index.skipped` in the stage stats (for pipelines shared across machines).",
    )
    # how n-grams are formed
    ngram: int = Field(13, ge=1, le=64, description="N of the n-grams (the upper bound when `adaptive_ngram`).")
    adaptive_ngram: bool = Field(
        True, description="Per benchmark N = clip(5th-percentile query length in words, min_ngram, ngram), as GPT-3."
    )
    min_ngram: int = Field(8, ge=1, le=64, description="Lower bound of the adaptive N.")
    min_item_words: int = Field(
        5, ge=1, description="Items shorter than N are looked for whole inside turns when they have at least this many "
        "words (a turn equal to an item is an exact match whatever the item's length).",
    )
    # what counts (measured on BANKING77 vs itself and vs MMLU / TruthfulQA: docs/decontaminate.md)
    near_copy: float = Field(
        0.9, ge=0.0, le=1.0, description="A match shorter than `ngram` words (adaptive n-gram or contained short item) "
        "counts when turn and item are near copies: their longest common word subsequence is at least this fraction "
        "of the longer one. 0 counts every match.",
    )
    min_rare_words: float = Field(
        2.0, ge=0.0, description="A contained short item also counts when its words are this rare in the checked "
        "turns: the sum over its words of 1 - log(1+k)/log(1+N) (k: other turns with the word, N: turns). A word no "
        "other turn has adds 1, one in every turn about 0. 0 counts every contained item.",
    )
    normalisation: Normalisation = Field(
        "lm_eval",
        description="`lm_eval`: lowercase, ASCII punctuation deleted, split on whitespace. `unicode`: also "
        "NFKC and every Unicode punctuation mark or symbol deleted (catches curly quotes).",
    )
    text: TextChoice = Field("all", description="Turns of each row compared with benchmarks.")
    max_train_rows: int | None = Field(
        10,
        ge=1,
        description="Ignore a benchmark n-gram found in more than this many rows (boilerplate). `None` keeps all.",
    )
    # held-out splits
    heldout_splits: list[str] = Field(
        default_factory=lambda: ["validation", "test"],
        description="Splits that must not leak into `train`; empty turns the held-out check off. Needs a "
        "`split` stage before this one (rows with a null split are not checked).",
    )
    heldout_text: TextChoice = Field(
        "user",
        description="Turns compared between train and held-out rows. `user` (the prompts a model is tested on) "
        "suits templated support data, whose answers share boilerplate 13-grams; `all` is strictest.",
    )
    heldout_max_train_rows: int | None = Field(
        None, ge=1, description="Ignore a held-out n-gram found in more than this many train rows. `None`: strict."
    )
    # paraphrases
    embedding_threshold: float | None = Field(
        None, gt=0.0, le=1.0, description="Cosine similarity to a benchmark prompt that removes a row; `None` is off."
    )
    embedding_model: str | None = Field(None, description="Sentence-transformers model; `None`: the bundled MiniLM.")
    embedding_encoder: EncoderName = Field(
        "minilm", description="Encoder of `embedding_model` (`minilm`, `onnx`, `static`; see docs/dedup.md); "
        "`embedding_threshold` depends on it.",
    )  # fmt: skip
    # execution
    batch_rows: int = Field(20_000, ge=1, description="Rows tokenised and probed per batch.")
    cache: bool = Field(True, description="Cache the benchmark index in the store's cache folder.")

    @field_validator("against")
    @classmethod
    def _known_benchmarks(cls, value: list[str | BenchmarkFile]) -> list[str | BenchmarkFile]:
        for entry in value:
            if isinstance(entry, str) and entry not in benchmarks.BUILTIN_BENCHMARKS and not _looks_like_path(entry):
                raise ValueError(
                    f"unknown benchmark {entry!r}: use a built-in name ({', '.join(benchmarks.BUILTIN_BENCHMARKS)}) "
                    "or a path to a .jsonl/.json/.csv/.parquet file"
                )
        return value

    @model_validator(mode="after")
    def _ngram_bounds(self) -> DecontaminateConfig:
        if self.min_ngram > self.ngram:
            raise ValueError(f"min_ngram ({self.min_ngram}) must not exceed ngram ({self.ngram})")
        return self


def _looks_like_path(entry: str) -> bool:
    return "/" in entry or any(s in entry for s in (".jsonl", ".json", ".csv", ".parquet"))


@register
class Decontaminate(Stage):
    """Removes benchmark-contaminated rows and train rows that leak the held-out splits."""

    name = "decontaminate"
    Config = DecontaminateConfig

    def __init__(self, config: DecontaminateConfig) -> None:
        super().__init__(config)
        self._index: dict[str, BenchmarkIndex] = {}  # built once per stage object, reused across runs

    @property
    def rule(self) -> MatchRule:
        """What counts as a match, from the config."""
        cfg = self.config
        return MatchRule(full_ngram=cfg.ngram, near_copy=cfg.near_copy, min_rare_words=cfg.min_rare_words)

    def apply(self, frame: pl.DataFrame, ctx: StageContext, *, probe_with: ProbeFn = probe) -> StageResult:
        """``probe_with`` finds the candidate matches (the ``ray`` engine's runs on its workers);
        everything frame-global (frequent n-grams, rare words, judging, held-out check) runs here."""
        cfg = self.config
        reason = np.full(frame.height, None, dtype=object)
        detail = np.full(frame.height, None, dtype=object)
        stats: dict = {}
        index = None
        if cfg.against:
            index, stats["index"] = self.index(ctx)
        if index is not None:
            roles = None if cfg.text == "all" else [cfg.text]
            turns = turns_of(frame, ctx.kind, roles=roles)
            found = probe_with(turns, index, batch_rows=cfg.batch_rows, normalisation=cfg.normalisation,
                               max_rows=cfg.max_train_rows, track=ctx.track)
            accepted = judge(found, index, self.rule)
            stats["ignored_frequent_ngrams"] = found.ignored
            stats["weak_matches_ignored"] = found.candidate_pairs() - accepted.select("turn", "item").n_unique()
            for row, (rsn, det) in per_row(accepted, turns.row, index, prefix="benchmark",
                                           labels=("benchmark", "item_id")).items():
                reason[row], detail[row] = rsn, det
            if cfg.embedding_threshold is not None:
                self._embedding_check(text_of(frame, ctx.kind, roles=roles), index, reason, detail, ctx)
        stats["heldout"] = heldout_matches(frame, ctx, cfg, self.rule, reason=reason, detail=detail)
        reasons = pl.Series("reason", reason.tolist(), dtype=pl.String)
        details = pl.Series("detail", detail.tolist(), dtype=pl.String)
        stats["removed_per_benchmark"] = _per_benchmark(details)
        return StageResult.partition(frame, reasons.is_null(), reason=pl.lit(reasons), detail=pl.lit(details), stats=stats)

    def index(self, ctx: StageContext) -> tuple[BenchmarkIndex | None, dict]:
        """The benchmark index for this config: from memory, the cache folder, or built now.

        ``None`` when every benchmark was skipped (``missing_benchmarks: skip``).
        """
        cfg = self.config
        root = cfg.benchmarks_dir or ctx.benchmarks_dir
        resolved = [(entry, _resolve(entry, root, ctx.base_dir, missing=cfg.missing_benchmarks)) for entry in cfg.against]
        sources = [source for _, source in resolved if source is not None]
        skipped = [entry if isinstance(entry, str) else entry.path for entry, source in resolved if source is None]
        for name in skipped:
            logger.warning("decontaminate: benchmark %r not found; skipped (missing_benchmarks: skip)", name)
        if not sources:
            return None, {"skipped": skipped}
        settings = dict(ngram=cfg.ngram, min_ngram=cfg.min_ngram, adaptive=cfg.adaptive_ngram,
                        min_item_words=cfg.min_item_words, normalisation=cfg.normalisation)
        key = cache_key([s["fingerprint"] for s in sources], **settings)
        phases, origin = Phases(), "memory"
        folder = ctx.store.cache_dir("decontaminate") if cfg.cache and ctx.store is not None else None
        with phases("index"):
            if key not in self._index:
                origin, index = "cache", load_index(folder, key) if folder is not None else None
                if index is None:
                    origin = "built"
                    items = pl.concat([s["load"]() for s in sources])
                    index = build_index(items, adaptive=cfg.adaptive_ngram, **{k: v for k, v in settings.items() if k != "adaptive"})
                    if folder is not None:
                        save_index(index, folder, key)
                self._index[key] = index
        index = self._index[key]
        counts = index.items.group_by("benchmark", maintain_order=True).len()
        info = {
            "origin": origin, "seconds": phases.rounded()["index"], "entries": index.grams.height,
            "benchmarks": {b: {"items": n, "ngram": index.ngram[b]} for b, n in counts.iter_rows()},
            "skipped": skipped,
        }
        return index, info

    def _embedding_check(self, texts: pl.Series, index: BenchmarkIndex, reason: np.ndarray, detail: np.ndarray,
                         ctx: StageContext) -> None:
        from curate.stages._decontam_embed import embedding_matches

        for row, det in embedding_matches(texts, index, reason=reason, config=self.config, ctx=ctx).items():
            reason[row], detail[row] = "benchmark_embedding_similar", det


def _resolve(entry: str | BenchmarkFile, benchmarks_dir: str | Path | None, base_dir: Path, *, missing: str) -> dict | None:
    """How to load one `against` entry, and the fingerprint of its files for the cache key.

    ``None`` when the entry's files are missing and ``missing`` is ``skip``.
    """
    if isinstance(entry, str) and entry in benchmarks.BUILTIN_BENCHMARKS:
        root = Path(benchmarks_dir) if benchmarks_dir else benchmarks.find_benchmarks_dir(base_dir)
        if root is None:
            if missing == "skip":
                return None
            raise StageError(
                f"decontaminate: no benchmarks folder for {entry!r}: none was configured and no shared/data "
                f"folder was found above {base_dir}. Set `benchmarks_dir` or CURATE_BENCHMARKS, or "
                "`missing_benchmarks: skip`."
            )
        root = root if root.is_absolute() else base_dir / root
        files = benchmarks.benchmark_files(entry, root)
        if not files and missing == "skip":
            return None
        return {"load": lambda: benchmarks.load_builtin(entry, root=root),
                "fingerprint": [entry, *(_stat(p) for p in files)]}
    spec = entry if isinstance(entry, BenchmarkFile) else BenchmarkFile(path=entry)
    path = Path(spec.path) if Path(spec.path).is_absolute() else base_dir / spec.path
    if not path.exists():
        if missing == "skip":
            return None
        raise StageError(f"decontaminate: benchmark file {path} does not exist (from `against` entry {spec.path!r}).")
    return {"load": lambda: benchmarks.load_file(path, name=spec.name, fields=spec.fields, id_field=spec.id_field),
            "fingerprint": [spec.model_dump(), _stat(path)]}


def _stat(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def _per_benchmark(details: pl.Series) -> dict[str, int]:
    counts = details.str.json_path_match("$.benchmark").drop_nulls().value_counts(sort=True)
    return dict(counts.iter_rows())
