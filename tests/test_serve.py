"""`curate serve` as a real process on a free port, checked with the official `openai` client.

One server (module fixture) serves the tiny base and two LoRA runs trained to fixed replies
(``alpha alpha`` / ``beta beta``), so routing shows in the reply. Its log is flushed to a
feedback dataset every 0.3 s; a second server with a long interval checks the flush on shutdown.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import polars as pl
import pytest
import yaml
from lm_fixtures import REPLIES, ReplyAdapters, reply_adapters  # noqa: F401 - session fixture

from curate.errors import ConfigError, GenerationError, StoreError
from curate.generate.config import Sampling
from curate.generate.openai_backend import OpenAIGenerator
from curate.pipeline import run_pipeline
from curate.serve import resolve_sources
from curate.serve.feedback import FeedbackLog
from curate.store import Store

CURATE = str(Path(sys.executable).parent / "curate")
QUESTION = [{"role": "user", "content": "where is my parcel?"}]


@dataclass
class Server:
    url: str
    store: Path
    process: subprocess.Popen
    adapters: ReplyAdapters

    def model(self, word: str) -> str:
        return self.adapters.runs[word]

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key="unused", max_retries=0, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(adapters: ReplyAdapters, store: Path, *extra: str) -> Server:
    port = _free_port()
    runs = [adapters.runs["alpha"], adapters.runs["beta"]]
    args = [CURATE, "serve", *runs, "--runs", str(adapters.runs_root), "--port", str(port), "--store", str(store),
            *extra]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = Server(url=f"http://127.0.0.1:{port}/v1", store=store, process=process, adapters=adapters)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"curate serve exited with {process.returncode}:\n{process.stdout.read()}")
        try:
            server.client().models.list()
            return server
        except openai.APIConnectionError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError("curate serve did not answer within 180 s")


def _stop(server: Server) -> str:
    server.process.send_signal(signal.SIGINT)
    out, _ = server.process.communicate(timeout=60)
    return out


@pytest.fixture(scope="module")
def server(reply_adapters: ReplyAdapters, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # noqa: F811
    running = _start(reply_adapters, tmp_path_factory.mktemp("serve") / "store", "--flush-seconds", "0.3")
    yield running
    _stop(running)


def _ask(server: Server, word: str, **kwargs: object) -> openai.types.chat.ChatCompletion:
    params = {"temperature": 0, **kwargs}
    return server.client().chat.completions.create(model=server.model(word), messages=QUESTION, **params)


def _rows_of(server: Server, request_id: str, *, timeout: float = 30.0, where: object = None) -> pl.DataFrame:
    """The logged rows of one request, once a flush has committed them (and ``where`` holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Store(server.store).latest_version("feedback") is not None:
            rows = Store(server.store).read("feedback")
            rows = rows.filter(pl.col("meta").str.json_path_match("$.request_id") == request_id)
            if rows.height and (where is None or where(rows)):
                return rows
        time.sleep(0.2)
    raise AssertionError(f"{request_id} was not committed to the feedback dataset within {timeout} s")


# -- the official client ------------------------------------------------------------------


def test_models_list_names_the_base_and_every_adapter(server: Server) -> None:
    names = [m.id for m in server.client().models.list().data]
    assert names == [server.adapters.base.name, server.model("alpha"), server.model("beta")]


def test_completion_comes_from_the_adapter_the_model_field_names(server: Server) -> None:
    for word, reply in REPLIES.items():
        response = _ask(server, word, max_tokens=16)
        assert response.id.startswith("chatcmpl-")
        assert response.model == server.model(word)
        assert [c.message.content for c in response.choices] == [reply]
        assert response.choices[0].finish_reason == "stop"
        assert response.usage.completion_tokens > 0 and response.usage.prompt_tokens > 0


def test_concurrent_requests_to_different_adapters_never_mix(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    words = ["alpha", "beta"] * 6
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda w: _ask(server, w, max_tokens=16).choices[0].message.content, words))
    assert replies == [REPLIES[w] for w in words]


def test_base_model_answers_without_the_adapters(server: Server) -> None:
    response = server.client().chat.completions.create(
        model=server.adapters.base.name, messages=QUESTION, temperature=0, max_tokens=8
    )
    assert response.choices[0].message.content not in REPLIES.values()
    assert response.choices[0].finish_reason == "length"  # a random model never ends its turn in 8 tokens


def test_streamed_completion_arrives_in_chunks_that_join_to_the_reply(server: Server) -> None:
    chunks = list(_ask(server, "beta", stream=True, max_tokens=16))
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) > 1  # real token streaming, not one final chunk
    assert "".join(pieces) == REPLIES["beta"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1


def test_unknown_model_is_404_listing_the_served_models(server: Server) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        server.client().chat.completions.create(model="gpt-4o", messages=QUESTION)
    message = err.value.body["message"]
    assert "'gpt-4o' does not exist" in message and server.model("alpha") in message and server.model("beta") in message


def test_request_without_user_turn_is_422(server: Server) -> None:
    with pytest.raises(openai.UnprocessableEntityError, match="messages has no user turn"):
        system_only = [{"role": "system", "content": "x"}]
        server.client().chat.completions.create(model=server.model("alpha"), messages=system_only)


# -- the generation layer's `openai` backend ----------------------------------------------


def test_openai_backend_routes_by_model_name(server: Server) -> None:
    prompts = [QUESTION, [{"role": "user", "content": "can I change my card pin"}]]
    for word, reply in REPLIES.items():
        generator = OpenAIGenerator(server.model(word), url=server.url, sampling=Sampling(max_new_tokens=16))
        assert generator.generate(prompts, n=2) == [[reply, reply], [reply, reply]]
        generator.close()


def test_openai_backend_names_the_url_when_the_server_is_down() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    generator = OpenAIGenerator("alpha", url=url, timeout_s=5, max_retries=0)
    with pytest.raises(GenerationError, match=f"Cannot reach the OpenAI-compatible server at {url}"):
        generator.generate([QUESTION])


# -- the log and feedback -----------------------------------------------------------------


def test_feedback_lands_in_the_dataset_with_its_request(server: Server) -> None:
    response = _ask(server, "alpha", seed=7)
    given = {"thumbs": "down", "rating": 2, "correction": "It ships today."}
    posted = server.client().post("/feedback", body={"id": response.id, **given}, cast_to=object)
    assert posted["recorded"] == given
    rows = _rows_of(server, response.id, where=lambda r: r["feedback"][0] is not None)
    row = rows.row(0, named=True)
    assert row["prompt"] == QUESTION and row["model"] == server.model("alpha")
    assert row["completion"] == [{"role": "assistant", "content": "alpha alpha"}]
    feedback, meta = json.loads(row["feedback"]), json.loads(row["meta"])
    assert {k: feedback[k] for k in given} == given
    assert meta["request_id"] == response.id and meta["sampling"]["seed"] == 7 and meta["sampling"]["temperature"] == 0
    assert meta["latency_s"] > 0 and meta["usage"]["completion_tokens"] == response.usage.completion_tokens
    show = [CURATE, "datasets", "show", "feedback", "--store", str(server.store)]
    shown = subprocess.run(show, capture_output=True, text=True)
    assert shown.returncode == 0 and "(feedback)" in shown.stdout


def test_feedback_on_an_already_committed_completion_updates_its_row_in_the_next_version(server: Server) -> None:
    response = _ask(server, "beta")
    _rows_of(server, response.id)  # committed without feedback
    before = Store(server.store).latest_version("feedback")
    server.client().post("/feedback", body={"id": response.id, "thumbs": "up", "escalated": True}, cast_to=object)
    rows = _rows_of(server, response.id, where=lambda r: r["feedback"][0] is not None)
    assert rows.height == 1
    feedback = json.loads(rows["feedback"][0])
    assert (feedback["thumbs"], feedback["escalated"]) == ("up", True)
    assert Store(server.store).latest_version("feedback") > before


def test_bad_feedback_is_422_and_unknown_id_is_404(server: Server) -> None:
    client = server.client()
    response = _ask(server, "alpha")
    for body in ({"id": response.id, "thumbs": "meh"}, {"id": response.id, "rating": 6}, {"thumbs": "up"},
                 {"id": response.id, "stars": 3}):  # fmt: skip
        with pytest.raises(openai.UnprocessableEntityError):
            client.post("/feedback", body=body, cast_to=object)
    with pytest.raises(openai.NotFoundError, match="No completion with id 'chatcmpl-nope'"):
        client.post("/feedback", body={"id": "chatcmpl-nope", "thumbs": "up"}, cast_to=object)


def test_every_version_holds_every_earlier_row_and_balances(server: Server) -> None:
    ids = [_ask(server, word).id for word in ("alpha", "beta", "alpha")]
    _rows_of(server, ids[-1])
    store, seen = Store(server.store), set()
    for info in store.history("feedback"):
        rows = store.read(f"feedback@{info.version}")
        request_ids = rows["meta"].str.json_path_match("$.request_id").to_list()
        assert len(request_ids) == len(set(request_ids))  # one row per completion (n = 1)
        assert seen <= set(request_ids), f"version {info.version} lost rows"
        assert rows.height == info.lineage["rows"]["kept"] + info.lineage["rows"]["removed"]
        assert all(s.balanced for s in info.stages)
        seen = set(request_ids)
    assert set(ids) <= seen


def test_shutdown_commits_what_waits(reply_adapters: ReplyAdapters, tmp_path: Path) -> None:  # noqa: F811
    server = _start(reply_adapters, tmp_path / "store", "--flush-seconds", "3600", "--flush-every", "1000")
    response = _ask(server, "beta", n=2, temperature=0.8, seed=3)
    server.client().post("/feedback", body={"id": response.id, "thumbs": "up"}, cast_to=object)
    assert Store(tmp_path / "store").latest_version("feedback") is None  # nothing flushed yet
    _stop(server)
    assert server.process.returncode == 0
    rows = Store(tmp_path / "store").read("feedback@0")
    answers = [[{"role": "assistant", "content": c.message.content}] for c in response.choices]
    assert rows.height == 2 and rows["completion"].to_list() == answers
    assert [json.loads(f)["thumbs"] for f in rows["feedback"]] == ["up", "up"]


# -- library parts --------------------------------------------------------------------------


def test_serving_runs_of_different_bases_is_refused(
    reply_adapters: ReplyAdapters,  # noqa: F811
    tmp_path: Path,
) -> None:
    import shutil

    other = tmp_path / "runs" / "other-base"
    shutil.copytree(reply_adapters.runs_root / reply_adapters.runs["beta"], other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["base_model"] = {**manifest["base_model"], "sha256": "0" * 64, "path": "/models/other"}
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="Run other-base was trained on /models/other .* curate serve loads one base"):
        resolve_sources([reply_adapters.runs["alpha"], str(other)], runs_root=reply_adapters.runs_root)
    with pytest.raises(ConfigError, match="'nope' is not a run id under"):
        resolve_sources(["nope"], runs_root=reply_adapters.runs_root)


def test_a_model_folder_first_serves_it_as_the_base_of_the_runs(
    reply_adapters: ReplyAdapters,  # noqa: F811
) -> None:
    root, runs = reply_adapters.runs_root, reply_adapters.runs
    served = resolve_sources([str(reply_adapters.base), runs["alpha"], str(root / runs["beta"])], runs_root=root)
    assert served.names == [reply_adapters.base.name, runs["alpha"], runs["beta"]]
    assert served.adapters == {run: root / run / "model" for run in (runs["alpha"], runs["beta"])}
    with pytest.raises(ConfigError, match="is named twice on the command line"):
        resolve_sources([runs["alpha"], runs["alpha"]], runs_root=root)


def _completion(request_id: str, text: str) -> dict:
    return {"prompt": QUESTION, "completion": [{"role": "assistant", "content": text}], "model": "m",
            "ts": "2026-12-02T06:00:00+00:00", "source": "curate-serve",
            "meta": {"request_id": request_id}}  # fmt: skip


def test_a_failed_flush_commits_nothing_and_the_last_one_spills_a_readable_log(
    store_root: Path, tmp_path: Path
) -> None:
    log = FeedbackLog(Store(store_root), "fb")
    log.record([_completion("chatcmpl-1", "first")])
    assert log.flush() == 0
    log.record([_completion("chatcmpl-2", "second")])
    assert log.feedback("chatcmpl-1", {"thumbs": "up"}) and not log.feedback("chatcmpl-9", {"thumbs": "up"})
    # another writer takes the name with a pipeline version: the flush must refuse and keep its rows
    sft_row = {"messages": [*QUESTION, {"role": "assistant", "content": "x"}]}
    (tmp_path / "x.jsonl").write_text(json.dumps(sft_row) + "\n")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"source": {"path": "x.jsonl"}, "stages": [], "output": "fb"}))
    run_pipeline(tmp_path / "p.yaml", store_root=store_root)
    with pytest.raises(StoreError, match="was not written by curate serve"):
        log.flush()
    assert Store(store_root).latest_version("fb") == 1  # the pipeline's, nothing of ours
    log.close(spill_dir=tmp_path / "spill")
    (spilled,) = (tmp_path / "spill").glob("fb-unflushed-*.jsonl")
    spec = {"source": {"path": str(spilled)}, "stages": [], "output": "imported"}
    (tmp_path / "import.yaml").write_text(yaml.safe_dump(spec))
    run_pipeline(tmp_path / "import.yaml", store_root=store_root)
    imported = Store(store_root).read("imported")
    assert Store(store_root).kind("imported") == "feedback"
    assert imported["completion"].to_list() == [[{"role": "assistant", "content": "second"}]]
    assert json.loads(imported["meta"][0])["request_id"] == "chatcmpl-2"
    assert json.loads((spilled.with_suffix(".feedback.json")).read_text())["chatcmpl-1"]["thumbs"] == "up"


def test_request_log_jsonl_reads_as_feedback_records(store_root: Path, tmp_path: Path) -> None:
    lines = [
        {"request_id": "cmpl-1", "model": "support-lora", "ts": "2026-12-02T06:00:00Z", "prompt": QUESTION,
         "completion": "It ships today.", "feedback": {"thumbs": "up", "rating": 5}, "latency_s": 0.4},
        {"request_id": "cmpl-2", "model": "support-lora", "ts": "2026-12-02T06:00:01Z", "prompt": QUESTION,
         "completion": [{"role": "assistant", "content": "Tomorrow."}], "feedback": None},
    ]  # fmt: skip
    (tmp_path / "vllm.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"source": {"path": "vllm.jsonl"}, "stages": [], "output": "prod"}))
    run_pipeline(tmp_path / "p.yaml", store_root=store_root)
    rows = Store(store_root).kept("prod")
    assert Store(store_root).kind("prod") == "feedback"
    assert rows.select("completion", "feedback", "model").to_dicts() == [
        {"completion": [{"role": "assistant", "content": "It ships today."}],
         "feedback": '{"rating": 5, "thumbs": "up"}', "model": "support-lora"},
        {"completion": [{"role": "assistant", "content": "Tomorrow."}], "feedback": None, "model": "support-lora"},
    ]  # fmt: skip
    assert json.loads(rows["meta"][0]) == {"request_id": "cmpl-1", "latency_s": 0.4, "line": 1}


def test_curate_serve_without_the_serve_extra_prints_the_install_command() -> None:
    code = ("import sys\nsys.modules['uvicorn'] = None\nsys.argv = ['curate', 'serve', 'x']\n"
            "from curate.cli import main\nmain()")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1
    expected = "curate serve needs the `serve` extra (uvicorn not installed); install it with: pip install"
    assert expected in out.stderr
    assert "Traceback" not in out.stderr


def test_exported_feedback_reads_back_with_the_same_ids(server: Server, tmp_path: Path) -> None:
    response = _ask(server, "alpha")
    server.client().post("/feedback", body={"id": response.id, "rating": 4}, cast_to=object)
    logged = _rows_of(server, response.id, where=lambda r: r["feedback"][0] is not None)
    out = tmp_path / "feedback.jsonl"
    export = [CURATE, "datasets", "export", "feedback", "--format", "messages", "-o", str(out),
              "--store", str(server.store)]  # fmt: skip
    assert subprocess.run(export, capture_output=True, text=True).returncode == 0
    spec = {"source": {"path": "feedback.jsonl"}, "stages": [], "output": "back"}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    run_pipeline(tmp_path / "p.yaml", store_root=tmp_path / "store")
    back = Store(tmp_path / "store").kept("back")
    assert Store(tmp_path / "store").kind("back") == "feedback"
    assert logged["id"][0] in back["id"].to_list()


def test_feedback_after_a_restart_updates_the_row_an_earlier_server_committed(store_root: Path) -> None:
    first = FeedbackLog(Store(store_root), "fb")
    first.record([_completion("chatcmpl-1", "first"), _completion("chatcmpl-2", "second")])
    first.close()
    later = FeedbackLog(Store(store_root), "fb")  # a new server process reads the logged ids back
    assert later.feedback("chatcmpl-2", {"thumbs": "down", "correction": "better"})
    assert later.flush() == 1
    rows = Store(store_root).read("fb@1")
    assert rows["feedback"][0] is None
    feedback = json.loads(rows["feedback"][1])
    assert (feedback["thumbs"], feedback["correction"]) == ("down", "better")
    assert rows["id"][1] != Store(store_root).read("fb@0")["id"][1]  # the content id covers the feedback
    assert Store(store_root).info("fb@1").lineage["parents"] == [{"dataset": "fb", "version": 0, "rows": 2}]
