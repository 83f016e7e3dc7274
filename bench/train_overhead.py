"""Tokens/s of `curate.train` SFT against a plain TRL script, and packing vs no packing.

Same tiny random Llama (tests/lm_fixtures.build_tiny_lm), same Bitext support conversations
(uneven lengths), same hyper-parameters, in one process, interleaved repeats. Throughput is
non-padding tokens of the train split (truncated to max_length) / seconds inside
``trainer.train()``; wall time also counts loading and curate's before/after train-slice loss.

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_overhead.py --rows 2048 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

BITEXT = REPO.parent / "shared" / "data" / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
MAX_LENGTH, BATCH, LR = 256, 8, 1e-3


def make_data(folder: Path, rows: int) -> str:
    import polars as pl
    import yaml

    from curate.pipeline import run_pipeline

    pl.read_csv(BITEXT, n_rows=rows, infer_schema=False).write_csv(folder / "bitext.csv")
    spec = {"source": {"path": "bitext.csv", "format": "table", "kind": "sft",
                       "mapping": {"user": "instruction", "assistant": "response", "label": "category"}},
            "stages": [{"split": {"test": 0.0, "validation": 0.0}}], "output": "support"}  # fmt: skip
    (folder / "p.yaml").write_text(yaml.safe_dump(spec))
    s = run_pipeline(folder / "p.yaml", store_root=folder / "store")
    return f"{s.dataset}@{s.version}"


def curate_run(model: Path, store: Path, ref: str, out: Path, *, packing: bool) -> tuple[float, float]:
    from curate.train.recipe import Recipe
    from curate.train.runner import train

    recipe = Recipe.model_validate({
        "model": str(model), "adapter": "full", "dataset": ref, "output_dir": str(out),
        "training": {"epochs": 1, "batch_size": BATCH, "max_length": MAX_LENGTH, "learning_rate": LR, "packing": packing,
                     "eval_strategy": "no", "save_strategy": "no", "logging_steps": 50, "warmup_ratio": 0.0},
    })  # fmt: skip
    t0 = time.perf_counter()
    result = train(recipe, store=store)
    return result.metrics["runtime_s"], time.perf_counter() - t0


def plain_trl_run(model: Path, store: Path, ref: str, out: Path) -> tuple[float, float]:
    """What a user would write by hand with TRL for the same run."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    import curate

    t0 = time.perf_counter()
    data = curate.load(ref, store=store)["train"].select_columns(["messages"])
    tokenizer = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=BATCH, max_length=MAX_LENGTH, learning_rate=LR,
        assistant_only_loss=True, bf16=False, use_cpu=True, activation_checkpointing=False, dataloader_pin_memory=False,
        save_strategy="no", logging_steps=50, report_to="none", lr_scheduler_type="cosine", seed=0,
    )  # fmt: skip
    trainer = SFTTrainer(model=lm, args=args, train_dataset=data, processing_class=tokenizer)
    t1 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t1
    trainer.save_model(str(out / "model"))
    return train_s, time.perf_counter() - t0


def count_tokens(model: Path, store: Path, ref: str) -> int:
    from transformers import AutoTokenizer

    import curate

    tok = AutoTokenizer.from_pretrained(model)
    rows = curate.load(ref, store=store)["train"]["messages"]
    return sum(min(MAX_LENGTH, len(tok.apply_chat_template(m, tokenize=True, return_dict=False))) for m in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import datasets
    import torch
    import transformers

    from lm_fixtures import _corpus, build_tiny_lm

    torch.set_num_threads(1)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    tmp = Path(tempfile.mkdtemp(prefix="train-bench-"))
    model = build_tiny_lm(tmp / "lm", corpus=_corpus(REPO.parent / "shared" / "data"))
    ref = make_data(tmp, args.rows)
    tokens = count_tokens(model, tmp / "store", ref)
    lengths = f"{tokens} tokens over {args.rows} conversations (truncated at {MAX_LENGTH})"
    print(f"data: {lengths}")
    configs = {
        "plain TRL SFTTrainer": lambda i: plain_trl_run(model, tmp / "store", ref, tmp / f"plain-{i}"),
        "curate sft (no packing)": lambda i: curate_run(model, tmp / "store", ref, tmp / f"ours-{i}", packing=False),
        "curate sft (packing bfd)": lambda i: curate_run(model, tmp / "store", ref, tmp / f"packed-{i}", packing=True),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    configs["plain TRL SFTTrainer"](-1)  # warm-up: first-run import and allocator costs go to nobody
    for i in range(args.repeats):
        for name, run in configs.items():
            results[name].append(run(i))
    base = statistics.median(tokens / t for t, _ in results["plain TRL SFTTrainer"])
    print("| config | tok/s in train() median (min-max) | vs plain TRL | wall s median |")
    print("|---|---|---|---|")
    for name, rs in results.items():
        tps = [tokens / t for t, _ in rs]
        med = statistics.median(tps)
        print(f"| {name} | {med:,.0f} ({min(tps):,.0f}-{max(tps):,.0f}) | {med / base:.3f} | {statistics.median(w for _, w in rs):.1f} |")


if __name__ == "__main__":
    main()
