"""Generation throughput: the `transformers` backend against a plain `model.generate` loop.

Both sides get the same prompts (BANKING77 questions as user turns), the same chat template,
the same length-sorted left-padded batches and greedy decoding, on a random Llama built from a
config (default 4 layers, hidden 256, so the model's forward passes dominate). They run in
one process, alternating A B A B after a warm-up; the ratio is taken pair by pair and its
median quoted. The answers of both sides are checked to be identical first.

    .venv/bin/python bench/generate.py --prompts 64 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def build_model(layers: int, hidden: int, seed: int = 0):  # noqa: ANN201
    """A random Llama with the tiny test tokenizer (BPE trained on Bitext + hh-rlhf, ChatML template)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(REPO / "tests"))
    from lm_fixtures import _corpus, build_tiny_lm

    folder = REPO / "bench" / "work" / "generate-tokenizer"
    if not (folder / "tokenizer.json").is_file():
        build_tiny_lm(folder, corpus=_corpus(SHARED))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64), num_key_value_heads=max(1, hidden // 128),
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def plain_loop(model, tokenizer, prompts: list, *, batch_size: int, max_new_tokens: int) -> list[str]:  # noqa: ANN001
    """What a user writes by hand: chat template, sort by length, left-pad, model.generate, decode."""
    import torch

    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    tokenizer.padding_side = "left"
    answers = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            greedy = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **greedy)
        texts_out = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for i, text in zip(idx, texts_out, strict=True):
            answers[i] = text.strip()
    tokenizer.padding_side = "right"
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import polars as pl
    import torch

    from curate.generate import Sampling
    from curate.generate.transformers_backend import TransformersGenerator

    torch.set_num_threads(args.threads)
    model, tokenizer = build_model(args.layers, args.hidden)
    texts = pl.read_csv(SHARED / "banking77" / "train.csv")["text"].head(args.prompts).to_list()
    prompts = [[{"role": "user", "content": t}] for t in texts]
    sampling = Sampling(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    generator = TransformersGenerator(model, tokenizer, name="bench", sampling=sampling)

    def backend() -> list[str]:
        return [a[0] for a in generator.generate(prompts)]

    def plain() -> list[str]:
        return plain_loop(model, tokenizer, prompts, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)

    assert backend() == plain(), "the backend and the plain loop disagree"  # also the warm-up
    times: dict[str, list[float]] = {"backend": [], "plain": []}
    for _ in range(args.repeats):
        for name, fn in (("backend", backend), ("plain", plain)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ratios = [b / p for b, p in zip(times["backend"], times["plain"], strict=True)]
    tokens = args.prompts * args.max_new_tokens  # upper bound: rows that stop early generate fewer
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    report = {
        "model": f"random Llama, {args.layers} layers, hidden {args.hidden}, {params_m:.1f}M params",
        "prompts": args.prompts, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "threads": args.threads, "repeats": args.repeats,
        "backend_s_median": round(statistics.median(times["backend"]), 3),
        "plain_s_median": round(statistics.median(times["plain"]), 3),
        "backend_prompts_per_s": round(args.prompts / statistics.median(times["backend"]), 1),
        "plain_prompts_per_s": round(args.prompts / statistics.median(times["plain"]), 1),
        "max_new_tokens_per_s_backend": round(tokens / statistics.median(times["backend"]), 1),
        "ratio_backend_over_plain": {"min": round(min(ratios), 3), "median": round(statistics.median(ratios), 3),
                                     "max": round(max(ratios), 3)},
    }  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
