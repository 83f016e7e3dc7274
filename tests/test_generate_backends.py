"""The generation layer's backends against real parts: local HTTP servers, the tiny Llama, a LoRA run.

The ``openai`` backend talks to a real ``http.server`` on 127.0.0.1 that answers with canned
chat-completion JSON (and records what it was sent); the ``curate serve`` end-to-end test is in
tests/test_serve.py. The ``transformers`` backend runs the tiny random Llama of tests/lm_fixtures.py.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lm_fixtures import REPLIES, ReplyAdapters, reply_adapters  # noqa: F401 - session fixture

from curate.errors import GenerationError
from curate.generate import Generator, GeneratorConfig, Sampling, load_generator

PROMPTS = [
    [{"role": "user", "content": "hello"}],
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "bye"}],
]


@dataclass
class ChatServer:
    """What the fake server does and what it saw."""

    url: str = ""
    honour_n: bool = True  # False: answer one choice whatever `n` says, as many servers do
    fail_first: int = 0  # answer this many requests with `status` first
    status: int = 429
    error_body: dict[str, Any] = field(default_factory=lambda: {"error": {"message": "slow down"}})
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append(body)
        if len(self.requests) <= self.fail_first:
            return self.status, self.error_body
        n = body.get("n", 1) if self.honour_n else 1
        user = body["messages"][-1]["content"]
        seed = body.get("seed", "greedy")
        choices = [
            {"index": i, "finish_reason": "stop",
             "message": {"role": "assistant", "content": f" {body['model']}:{user}:{seed}:{i} "}}
            for i in range(n)
        ]  # fmt: skip
        return 200, {"id": "c-1", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices}


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    state = ChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            code, payload = state.reply(body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("retry-after-ms", "10")  # keep the client's backoff short
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/v1"
    yield state
    server.shutdown()
    server.server_close()


def _openai(url: str, **kw: Any) -> GeneratorConfig:
    return GeneratorConfig(backend="openai", model="adapter-a", url=url, **kw)


def test_openai_backend_returns_n_answers_per_prompt_in_prompt_order(chat_server: ChatServer) -> None:
    gen = load_generator(_openai(chat_server.url, sampling=Sampling(do_sample=True, seed=7)))
    out = gen.generate(PROMPTS, n=3)
    assert out == [[f"adapter-a:hello:7:{i}" for i in range(3)], [f"adapter-a:bye:7:{i}" for i in range(3)]]
    assert {r["n"] for r in chat_server.requests} == {3}
    assert sorted(r["messages"][0]["role"] for r in chat_server.requests) == ["system", "user"]
    assert gen.name == "openai:adapter-a"


def test_openai_backend_repeats_requests_when_the_server_ignores_n(chat_server: ChatServer) -> None:
    chat_server.honour_n = False
    hot = Sampling(do_sample=True, seed=5, temperature=0.7, top_p=0.9)
    gen = load_generator(_openai(chat_server.url, sampling=hot))
    assert gen.generate(PROMPTS[:1], n=3) == [["adapter-a:hello:5:0", "adapter-a:hello:6:0", "adapter-a:hello:7:0"]]
    first = chat_server.requests[0]
    assert (first["n"], first["temperature"], first["top_p"], first["max_tokens"]) == (3, 0.7, 0.9, 64)


def test_openai_backend_greedy_sends_temperature_zero_once_per_prompt(chat_server: ChatServer) -> None:
    gen = load_generator(_openai(chat_server.url, sampling=Sampling(max_new_tokens=9)))
    assert gen.generate(PROMPTS[:1], n=2) == [["adapter-a:hello:greedy:0"] * 2]
    assert chat_server.requests == [
        {"messages": [{"role": "user", "content": "hello"}], "model": "adapter-a",
         "max_tokens": 9, "n": 1, "temperature": 0.0}
    ]


def test_openai_backend_retries_after_429_and_then_answers(chat_server: ChatServer) -> None:
    chat_server.fail_first = 2
    gen = load_generator(_openai(chat_server.url, max_retries=3))
    assert gen.generate(PROMPTS[:1]) == [["adapter-a:hello:greedy:0"]]
    assert len(chat_server.requests) == 3


def test_openai_backend_gives_up_after_max_retries_with_the_servers_message(chat_server: ChatServer) -> None:
    chat_server.fail_first = 10
    gen = load_generator(_openai(chat_server.url, max_retries=1))
    refused = r"127\.0\.0\.1:\d+/v1 refused a request for model 'adapter-a': HTTP 429: slow down"
    with pytest.raises(GenerationError, match=refused):
        gen.generate(PROMPTS[:1])
    assert len(chat_server.requests) == 2


def test_openai_backend_reports_a_4xx_with_the_servers_message_without_retrying(chat_server: ChatServer) -> None:
    chat_server.fail_first, chat_server.status = 10, 404
    chat_server.error_body = {"detail": "no adapter named 'adapter-a'; known: a, b"}
    gen = load_generator(_openai(chat_server.url, max_retries=3))
    with pytest.raises(GenerationError, match=r"HTTP 404: no adapter named 'adapter-a'; known: a, b"):
        gen.generate(PROMPTS)
    assert len(chat_server.requests) <= 2  # one per prompt in flight, none retried


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_openai_backend_names_the_url_of_a_server_that_is_down_within_the_timeout() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    gen = load_generator(_openai(url, max_retries=1, timeout_s=5, concurrency=4))
    start = time.monotonic()
    with pytest.raises(GenerationError) as err:
        gen.generate(PROMPTS * 4)
    assert time.monotonic() - start < 5
    assert str(err.value).startswith(f"Cannot reach the OpenAI-compatible server at {url} (")
    assert "start it or fix `url` / OPENAI_BASE_URL" in str(err.value)


def test_openai_key_is_sent_to_openai_base_url(chat_server: ChatServer) -> None:
    env = {"OPENAI_BASE_URL": chat_server.url, "OPENAI_API_KEY": "sk-secret"}
    load_generator(GeneratorConfig(backend="openai", model="m"), env=env).generate(PROMPTS[:1])
    assert chat_server.headers[0]["authorization"] == "Bearer sk-secret"


def test_openai_key_is_withheld_from_a_pipeline_url_even_when_the_process_environment_has_it(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the client library falls back to os.environ when given None: the backend must never let it
    for name, value in {"OPENAI_API_KEY": "sk-secret", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
                        "OPENAI_ADMIN_KEY": "sk-admin", "OPENAI_CUSTOM_HEADERS": "Authorization: Bearer sk-custom",
                        "OPENAI_ORG_ID": "org-secret"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OPENAI_API_KEY": "sk-secret"}
    with caplog.at_level(logging.WARNING, logger="curate.generate.openai_backend"):
        gen = load_generator(_openai(chat_server.url), env=env)
        gen.generate(PROMPTS)
    sent = chat_server.headers
    assert len(sent) == 2 and all("authorization" not in h and "openai-organization" not in h for h in sent)
    assert not any("sk-" in v or "org-secret" in v for h in sent for v in h.values())
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and f"{chat_server.url} comes from the pipeline file" in notes[0]
    assert "sk-secret" not in notes[0]


# --- transformers backend: the tiny random Llama and LoRA runs on it --------------------------------

QUESTIONS = [[{"role": "user", "content": "where is my order " * (1 + i % 4)}] for i in range(7)]  # uneven lengths


@pytest.fixture(scope="module")
def tiny_gen(tiny_lm: Path) -> Generator:
    return load_generator(GeneratorConfig(model=str(tiny_lm), sampling=Sampling(max_new_tokens=8)))


def test_transformers_greedy_answers_do_not_depend_on_batching(tiny_gen: Generator) -> None:
    one_by_one = tiny_gen.generate(QUESTIONS, sampling=Sampling(max_new_tokens=8, batch_size=1))
    batched = tiny_gen.generate(QUESTIONS, n=2, sampling=Sampling(max_new_tokens=8, batch_size=5))
    assert [[a, a] for [a] in one_by_one] == batched
    assert any(a for [a] in one_by_one)  # the random model writes something
    assert tiny_gen.tokenizer.padding_side == "right"  # restored


def test_transformers_samples_differ_repeat_with_their_seed_and_leave_the_global_rng_alone(tiny_gen: Generator) -> None:
    import torch

    hot = Sampling(do_sample=True, temperature=1.5, max_new_tokens=8, seed=3, batch_size=4)
    torch.manual_seed(123)
    first = tiny_gen.generate(QUESTIONS[:3], n=3, sampling=hot)
    after = torch.rand(1)
    torch.manual_seed(123)
    again = tiny_gen.generate(QUESTIONS[:3], n=3, sampling=hot)
    assert torch.equal(after, torch.rand(1))  # the caller's random stream is where it was
    assert first == again
    assert all(len(answers) == 3 and len(set(answers)) > 1 for answers in first)
    assert tiny_gen.generate(QUESTIONS[:3], n=3, sampling=hot.model_copy(update={"seed": 4})) != first


def test_transformers_progress_hook_counts_every_prompt(tiny_lm: Path) -> None:
    from curate.generate.transformers_backend import TransformersGenerator

    seen: list[int] = []
    gen = load_generator(GeneratorConfig(model=str(tiny_lm), sampling=Sampling(max_new_tokens=2, batch_size=3)))
    assert isinstance(gen, TransformersGenerator)
    gen.progress = seen.append
    gen.generate(QUESTIONS)
    assert seen == [3, 3, 1]


def test_transformers_runs_a_lora_run_by_id_and_by_folder(reply_adapters: ReplyAdapters) -> None:
    by_id = load_generator(GeneratorConfig(model=reply_adapters.runs["alpha"], runs_root=str(reply_adapters.runs_root)))
    by_folder = load_generator(GeneratorConfig(model=str(reply_adapters.runs_root / reply_adapters.runs["beta"])))
    assert by_id.name == reply_adapters.runs["alpha"]
    assert by_id.generate(QUESTIONS[:2], sampling=Sampling(max_new_tokens=12)) == [[REPLIES["alpha"]]] * 2
    assert by_folder.generate(QUESTIONS[:2], sampling=Sampling(max_new_tokens=12)) == [[REPLIES["beta"]]] * 2


def test_transformers_without_a_chat_template_says_how_to_add_one(tiny_lm: Path) -> None:
    from curate.generate.transformers_backend import TransformersGenerator
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    tokenizer.chat_template = None
    gen = TransformersGenerator(AutoModelForCausalLM.from_pretrained(tiny_lm), tokenizer, name="plain-lm")
    with pytest.raises(GenerationError, match=r"The tokenizer of plain-lm has no chat template.*save_pretrained"):
        gen.generate(QUESTIONS[:1])


def test_transformers_missing_model_names_the_runs_root(tmp_path: Path) -> None:
    from curate.errors import CurateError

    with pytest.raises(CurateError, match=r"No run or model 'nope-0001': not a run folder, not a run id under .*runs"):
        load_generator(GeneratorConfig(model="nope-0001", runs_root=str(tmp_path / "runs")))


# --- vllm backend: only its clear error runs here ------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_how_to_install_it(tiny_lm: Path) -> None:
    with pytest.raises(GenerationError, match=r"^vLLM is not installed: pip install vllm \(needs a CUDA GPU\)"):
        load_generator(GeneratorConfig(backend="vllm", model=str(tiny_lm)))


def test_a_url_with_a_local_backend_is_refused_when_the_config_is_read() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"`url` is for `backend: openai`; the `transformers` backend loads"):
        GeneratorConfig(model="runs/x", url="http://127.0.0.1:8000/v1")
