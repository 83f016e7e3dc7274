"""Requests/s of `curate serve` on the tiny model with 1 and 2 LoRA adapters, against in-process generate.

The tiny random Llama of tests/lm_fixtures and its two fixed-reply LoRA runs (``alpha alpha`` /
``beta beta``, 16 tokens at most). `curate serve` runs as a real process on 127.0.0.1; a local
client sends ``--requests`` chat completions (greedy, Bitext questions), ``--concurrency`` at a
time, through the official `openai` client. With 2 adapters the requests alternate between them,
so every other request switches the active adapter. The reference is the same requests answered
in one process by the same PeftModel (``set_adapter`` + ``model.generate``, no HTTP, no log).

    OMP_NUM_THREADS=1 .venv/bin/python bench/serve.py --requests 64 --concurrency 4 --repeats 3
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
SHARED = REPO.parent / "shared" / "data"
BITEXT = SHARED / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
CURATE = str(Path(sys.executable).parent / "curate")
MAX_TOKENS = 16


def questions(n: int) -> list[list[dict[str, str]]]:
    import polars as pl

    texts = pl.read_csv(BITEXT, n_rows=n, infer_schema=False)["instruction"].to_list()
    return [[{"role": "user", "content": t}] for t in texts]


def start(runs: list[str], *, runs_root: Path, store: Path) -> tuple[subprocess.Popen, str]:
    import openai

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [CURATE, "serve", *runs, "--runs", str(runs_root), "--port", str(port), "--store", str(store)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            openai.OpenAI(base_url=url, api_key="x", max_retries=0).models.list()
            return process, url
        except openai.APIConnectionError:
            time.sleep(0.3)
    raise RuntimeError("curate serve did not start")


def over_http(url: str, models: list[str], prompts: list, *, concurrency: int) -> tuple[float, list[float]]:
    import openai

    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=120)

    def one(i: int) -> float:
        t = time.perf_counter()
        model = models[i % len(models)]
        client.chat.completions.create(model=model, messages=prompts[i], temperature=0, max_tokens=MAX_TOKENS)
        return time.perf_counter() - t

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(len(prompts))))
    return len(prompts) / (time.perf_counter() - t0), latencies


def in_process(runs_root: Path, runs: list[str], prompts: list) -> float:
    """The same requests answered by the same model in this process, one at a time."""
    from curate.generate.config import Sampling
    from curate.serve import resolve_sources
    from curate.serve.models import ServedModels

    served = ServedModels.load(resolve_sources(runs, runs_root=runs_root))
    sampling = Sampling(max_new_tokens=MAX_TOKENS)
    t0 = time.perf_counter()
    for i, prompt in enumerate(prompts):
        served.complete(runs[i % len(runs)], prompt, sampling=sampling)
    return len(prompts) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from lm_fixtures import _corpus, build_tiny_lm, train_reply_adapters

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    base = build_tiny_lm(work / "tiny", corpus=_corpus(SHARED))
    adapters = train_reply_adapters(work, base=base)
    prompts = questions(args.requests)
    print(f"{args.requests} requests, {args.concurrency} concurrent, greedy, max_tokens {MAX_TOKENS}, "
          f"{args.repeats} repeats (median)")
    print("| adapters | curate serve req/s | p50 latency ms | p95 latency ms | in-process req/s |")
    print("|---|---|---|---|---|")
    for count in (1, 2):
        runs = [adapters.runs["alpha"], adapters.runs["beta"]][:count]
        process, url = start(runs, runs_root=adapters.runs_root, store=work / f"store-{count}")
        over_http(url, runs, prompts[:8], concurrency=args.concurrency)  # warm-up
        rates, latencies = [], []
        for _ in range(args.repeats):
            rate, lat = over_http(url, runs, prompts, concurrency=args.concurrency)
            rates.append(rate)
            latencies += lat
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        local = statistics.median(in_process(adapters.runs_root, runs, prompts) for _ in range(args.repeats))
        q = statistics.quantiles(latencies, n=20)
        p50, p95 = statistics.median(latencies) * 1000, q[18] * 1000
        print(f"| {count} | {statistics.median(rates):.1f} | {p50:.0f} | {p95:.0f} | {local:.1f} |")


if __name__ == "__main__":
    main()
