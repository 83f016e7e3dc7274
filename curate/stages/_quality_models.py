"""Model-based scores of ``quality``: a classifier on sentence embeddings, and perplexity under a causal LM.

A reward-model score follows once ``curate.train`` ships reward models (the trainers issue).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate.embeddings import EncoderName
from curate.errors import StageError

TextChoice = Literal["all", "user", "assistant"]


class ClassifierScore(BaseModel):
    """`quality_score` column: P(good) from logistic regression on sentence embeddings of labelled examples."""

    model_config = ConfigDict(extra="forbid")

    examples: str = Field(description="JSONL / CSV / Parquet file of labelled examples, relative to the pipeline file.")
    text_field: str = Field("text", description="Column of the example texts.")
    label_field: str = Field("label", description="Column of the example labels.")
    good: list[str] = Field(["good", "1", "true", "yes"], description="Label values (as text) meaning good; any other is bad.")
    text: TextChoice = Field("assistant", description="Turns of each row that are scored.")
    min_score: float | None = Field(
        0.5, ge=0.0, le=1.0, description="Rows scoring below are `low_quality_score`. `None` only adds the column."
    )
    model: str | None = Field(None, description="Sentence-transformers model; `None`: the bundled MiniLM.")
    encoder: EncoderName = Field(
        "minilm", description="Encoder of `model` (`static`: ~100x faster on CPU; see docs/dedup.md)."
    )
    regularisation: float = Field(1.0, gt=0.0, description="Inverse regularisation strength C of the regression.")


class PerplexityScore(BaseModel):
    """`perplexity` column: perplexity of the assistant turns under a causal LM, given the user turns."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Local folder of a causal LM (`from_pretrained` path), relative to the pipeline file.")
    max_perplexity: float | None = Field(
        None, gt=1.0, description="Rows above are `high_perplexity`. `None` only adds the column."
    )
    max_length: int = Field(512, ge=8, description="Tokens per row; longer rows are cut from the left.")
    batch_size: int = Field(8, ge=1, description="Rows per forward pass.")


def _read_examples(path: Path) -> pl.DataFrame:
    name = path.name
    if name.endswith(".parquet"):
        return pl.read_parquet(path)
    if name.endswith(".csv"):
        return pl.read_csv(path, infer_schema=False)
    if name.endswith((".jsonl", ".jsonl.gz")):
        return pl.read_ndjson(path, infer_schema_length=None)
    raise StageError(f"quality: cannot read classifier examples {path}: use .jsonl, .csv or .parquet.")


def classifier_scores(
    texts: pl.Series, config: ClassifierScore, *, base_dir: Path, cache_dir: Path | None, track: object = None
) -> pl.Series:
    """P(good) for every text, from a logistic regression fitted on the labelled examples."""
    from sklearn.linear_model import LogisticRegression

    from curate.embeddings import embed

    path = Path(config.examples) if Path(config.examples).is_absolute() else base_dir / config.examples
    examples = _read_examples(path)
    missing = {config.text_field, config.label_field} - set(examples.columns)
    if missing:
        raise StageError(f"quality: classifier examples {path} lack column(s) {sorted(missing)}; columns: {examples.columns}.")
    labels = examples[config.label_field].cast(pl.String).str.to_lowercase().is_in([g.lower() for g in config.good])
    if labels.all() or not labels.any():
        raise StageError(f"quality: classifier examples {path} need both good and bad labels (good = {config.good}).")
    x = embed(examples[config.text_field].cast(pl.String).fill_null("").to_list(), model=config.model, encoder=config.encoder, cache_dir=cache_dir)
    clf = LogisticRegression(C=config.regularisation, max_iter=1000).fit(x, labels.to_numpy())
    vectors = embed(texts.fill_null("").to_list(), model=config.model, encoder=config.encoder, cache_dir=cache_dir,
                    progress=track)
    return pl.Series("quality_score", clf.predict_proba(vectors)[:, 1], dtype=pl.Float64)


def perplexities(user: pl.Series, assistant: pl.Series, config: PerplexityScore, *, base_dir: Path) -> pl.Series:
    """exp(mean token loss) of each assistant text given its user text; null where there is none."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(config.model) if Path(config.model).is_absolute() else base_dir / config.model
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    out: list[float | None] = []
    pairs = list(zip(user.fill_null("").to_list(), assistant.fill_null("").to_list(), strict=True))
    for lo in range(0, len(pairs), config.batch_size):
        for prompt, answer in pairs[lo : lo + config.batch_size]:
            out.append(_perplexity(model, tokenizer, prompt, answer, config.max_length, torch))
    return pl.Series("perplexity", out, dtype=pl.Float64)


def _perplexity(model: object, tokenizer: object, prompt: str, answer: str, max_length: int, torch: object) -> float | None:
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if not answer_ids:
        return None
    prompt_ids = tokenizer(prompt + "\n", add_special_tokens=False)["input_ids"] if prompt else []
    ids = (prompt_ids + answer_ids)[-max_length:]
    labels = ([-100] * len(prompt_ids) + answer_ids)[-max_length:]
    if len(ids) < 2 or all(t == -100 for t in labels[1:]):
        return None
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
    return float(math.exp(min(float(loss), 50.0))) if not np.isnan(float(loss)) else None
