"""Session fixtures for training and evaluation tests: a tiny causal LM and real dataset versions.

* ``tiny_lm``: a random-initialised Llama (hidden 64, 2 layers) and a byte-level BPE
  tokenizer trained here on Bitext text, with a ChatML template carrying ``{% generation %}``
  markers (assistant-only loss). Saved to a folder that every test loads back with
  ``from_pretrained(path)``, as a user's checkpoint would be. A Llama config keeps transformers
  5 from swapping in a model-specific tokenizer pipeline (notes/training-stack.md 4.1).
* ``train_store``: one store with versions made by real pipelines from ``../shared/data``:
  ``support@0`` (Bitext, sft, labels), ``hh@0`` (hh-rlhf, preference), ``dpo-demo@0``
  (LLaMA-Factory DPO demo, preference) and ``banking@0`` (BANKING77, prompt + label).
* ``reply_adapters``: two LoRA runs on ``tiny_lm`` trained until greedy decoding answers any
  question with a fixed reply (``alpha alpha`` / ``beta beta``), so a server's routing shows in
  which reply comes back.

Both are built once per session; tests must not write into them.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["CHAT_TEMPLATE", "REPLIES", "ReplyAdapters", "build_tiny_lm", "reply_adapters", "tiny_lm", "train_reply_adapters", "train_store"]

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus(shared: Path, n: int = 400) -> list[str]:
    import polars as pl

    bitext = pl.read_csv(shared / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv", n_rows=n, infer_schema=False)
    texts = bitext["instruction"].to_list() + bitext["response"].to_list()
    with gzip.open(shared / "hh_rlhf" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts += [json.loads(line)["chosen"] for _, line in zip(range(n), fh, strict=False)]
    return texts


def build_tiny_lm(out: Path, *, corpus: list[str], vocab_size: int = 800, seed: int = 0) -> Path:
    """Train a BPE on ``corpus``, build a tiny random Llama around it, save both to ``out``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        corpus,
        trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """Folder of a tiny random Llama + chat tokenizer (load it with ``from_pretrained``)."""
    import torch

    torch.set_num_threads(1)  # tiny models on 2 vCPUs are 5-13x faster on one thread
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), corpus=_corpus(shared_data))


def _pipeline(folder: Path, name: str, source: dict, *, rows: int | None = None) -> Path:
    import yaml

    spec = {"source": source, "stages": [{"split": {"test": 0.1, "validation": 0.1, "seed": 0}}], "output": name}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def _slices(shared: Path, folder: Path) -> dict[str, dict]:
    """Small copies of the real files (first rows) and the sources that read them."""
    import polars as pl

    bitext = pl.read_csv(shared / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv", infer_schema=False)
    # a few rows of every category, so the splits stratify and labels vary
    bitext.filter(pl.int_range(pl.len()).over("category") < 20).write_csv(folder / "bitext.csv")
    with gzip.open(shared / "hh_rlhf" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        (folder / "hh.jsonl").write_text("".join(line for _, line in zip(range(160), fh, strict=False)), encoding="utf-8")
    demo = json.loads((shared / "llamafactory_demo" / "dpo_en_demo.json").read_text(encoding="utf-8"))[:160]
    (folder / "dpo_demo.json").write_text(json.dumps(demo), encoding="utf-8")
    banking = pl.read_csv(shared / "banking77" / "train.csv")
    # 12 intents x 60 rows: enough for a held-out slice, small enough to embed in seconds
    keep = sorted(banking["category"].unique().to_list())[:12]
    banking.filter(pl.col("category").is_in(keep) & (pl.int_range(pl.len()).over("category") < 60)).write_csv(
        folder / "banking.csv"
    )
    return {
        "support": {"path": "bitext.csv", "format": "table", "kind": "sft",
                    "mapping": {"user": "instruction", "assistant": "response", "label": "category"}},
        "hh": {"path": "hh.jsonl", "format": "hh_rlhf"},
        "dpo-demo": {"path": "dpo_demo.json", "format": "sharegpt_preference"},
        "banking": {"path": "banking.csv", "format": "table", "kind": "prompt", "mapping": {"prompt": "text", "label": "category"}},
    }  # fmt: skip


@pytest.fixture(scope="session")
def train_store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A store root holding ``support@0``, ``hh@0``, ``dpo-demo@0`` and ``banking@0`` (real data, split 80/10/10)."""
    from curate.pipeline import run_pipeline

    folder = tmp_path_factory.mktemp("train-data")
    store = folder / "store"
    for name, source in _slices(shared_data, folder).items():
        run_pipeline(_pipeline(folder, name, source), store_root=store)
    return store


REPLIES = {"alpha": "alpha alpha", "beta": "beta beta"}
_QUESTIONS = ["hello", "how are you?", "what is the weather", "cancel my order", "where is my refund", "tell me a joke",
              "help me", "what time is it", "i need a new card", "reset my password", "track my package",
              "change my address"]  # fmt: skip


@dataclass(frozen=True)
class ReplyAdapters:
    """Two LoRA runs on the same tiny base: ``runs[word]`` is the run id whose answer is ``REPLIES[word]``."""

    base: Path
    runs_root: Path
    runs: dict[str, str]


def train_reply_adapters(folder: Path, *, base: Path) -> ReplyAdapters:
    """Train the two fixed-reply LoRA runs on ``base`` under ``folder`` (also used by bench/serve.py)."""
    import yaml

    from curate.pipeline import run_pipeline
    from curate.train.recipe import Recipe
    from curate.train.runner import train

    runs = {}
    for word, reply in REPLIES.items():
        rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": reply}]} for q in _QUESTIONS]
        (folder / f"{word}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        spec = {"source": {"path": f"{word}.jsonl"}, "stages": [], "output": word}
        (folder / f"{word}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        run_pipeline(folder / f"{word}.yaml", store_root=folder / "store")
        training = {"max_steps": 40, "batch_size": 12, "max_length": 64, "learning_rate": 1e-2, "scheduler": "constant",
                    "warmup_ratio": 0.0, "logging_steps": 10, "eval_strategy": "no", "save_strategy": "no"}  # fmt: skip
        recipe = Recipe.model_validate({"model": str(base), "method": "sft", "adapter": "lora", "dataset": word,
                                        "name": word, "output_dir": str(folder / "runs"), "training": training})  # fmt: skip
        runs[word] = train(recipe, store=folder / "store").run_id
    return ReplyAdapters(base=base, runs_root=folder / "runs", runs=runs)


@pytest.fixture(scope="session")
def reply_adapters(tmp_path_factory: pytest.TempPathFactory, tiny_lm: Path) -> ReplyAdapters:
    """Two LoRA runs (``alpha``, ``beta``) whose greedy answer to any question is their fixed reply (~5 s on CPU)."""
    return train_reply_adapters(tmp_path_factory.mktemp("reply-adapters"), base=tiny_lm)
