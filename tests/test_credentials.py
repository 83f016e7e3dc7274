"""Credentials: a key only from its documented variable, sent only to the URL configured beside it.

The runner tests point the `label` stage at a real HTTP server on 127.0.0.1 that records every
request's headers (http.server in a thread), so "no key was sent" is checked on the wire.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curate.credentials import Credentials, same_url
from curate.errors import ConfigError, CurateError, StageError
from curate.pipeline import run_pipeline

SECRET = "cloud-secret-0123456789"
KEY_HEADER = "x-argilla-api-key"


class _Recorder(BaseHTTPRequestHandler):
    """Answers Argilla's status endpoint and refuses everything else; records every request."""

    seen: list[dict[str, str]]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        ok = self.path.startswith("/api/v1/status")
        body = json.dumps({"version": "2.8.0"} if ok else {"detail": "Could not validate credentials"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A real HTTP server on a free 127.0.0.1 port: (its URL, the requests it received)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", server.seen
    server.shutdown()
    server.server_close()


def _label_pipeline(folder: Path, label: str) -> Path:
    (folder / "pairs.jsonl").write_text(
        '{"question": "Hi?", "good": "Hello!", "bad": "Go away."}\n{"question": "2+2?", "good": "4", "bad": "5"}\n'
    )
    path = folder / "label.yaml"
    path.write_text(
        "source: {path: pairs.jsonl, format: table, kind: preference,"
        " mapping: {prompt: question, chosen: good, rejected: bad}}\n"
        f"stages:\n  - label: {label}\noutput: prefs\n"
    )
    return path


def _keys_sent(seen: list[dict[str, str]]) -> list[str]:
    return [request[KEY_HEADER] for request in seen if KEY_HEADER in request]


# --- the rule -----------------------------------------------------------------------------------


def test_key_comes_only_from_its_documented_variable():
    assert Credentials.resolve("argilla", env={"ARGILLA_API_KEY": "k"}).key == "k"
    assert Credentials.resolve("argilla", env={"MY_CLOUD_SECRET": "k"}).key is None
    assert Credentials.resolve("openai", env={"OPENAI_BASE_URL": "http://h/v1", "OPENAI_API_KEY": "o"}).key == "o"


def test_key_goes_to_the_configured_url_or_the_local_default():
    env = {"ARGILLA_API_URL": "http://argilla.internal:6900", "ARGILLA_API_KEY": "k"}
    configured = Credentials.resolve("argilla", env=env)
    default = Credentials.resolve("argilla", env={"ARGILLA_API_KEY": "k"})
    assert (configured.url, configured.key) == ("http://argilla.internal:6900", "k")
    assert configured.url_from == "ARGILLA_API_URL"
    assert (default.url, default.key, default.url_from) == ("http://127.0.0.1:6900", "k", "the default")


def test_pipeline_url_other_than_the_configured_one_gets_no_key_and_a_note():
    env = {"ARGILLA_API_URL": "http://127.0.0.1:6900", "ARGILLA_API_KEY": SECRET}
    creds = Credentials.resolve("argilla", url_from_file="http://127.0.0.1:18777", env=env)
    assert (creds.url, creds.key, creds.url_from) == ("http://127.0.0.1:18777", None, "the pipeline file")
    assert creds.note == (
        "Argilla URL http://127.0.0.1:18777 comes from the pipeline file and is not ARGILLA_API_URL "
        "(http://127.0.0.1:6900): the API key in ARGILLA_API_KEY is not sent there. If you trust that "
        "server, set ARGILLA_API_URL=http://127.0.0.1:18777."
    )
    assert SECRET not in creds.note and SECRET not in repr(creds)


def test_pipeline_url_equal_to_the_configured_one_gets_the_key():
    env = {"OPENAI_BASE_URL": "HTTP://Localhost/v1/", "OPENAI_API_KEY": "o"}
    creds = Credentials.resolve("openai", url_from_file="http://localhost:80/v1", env=env)
    assert (creds.key, creds.note) == ("o", None)


def test_command_line_url_and_key_win_and_the_key_goes_there():
    env = {"ARGILLA_API_URL": "http://a:1", "ARGILLA_API_KEY": "env-key"}
    creds = Credentials.resolve(
        "argilla", url_from_file="http://file:2", url_from_cli="http://cli:3", key_from_cli="cli-key", env=env
    )
    assert (creds.url, creds.key, creds.url_from) == ("http://cli:3", "cli-key", "the command line")


def test_no_key_at_all_is_no_note_and_a_keyless_server_still_gets_its_url():
    creds = Credentials.resolve("openai", url_from_file="http://127.0.0.1:8000/v1", env={})
    assert (creds.url, creds.key, creds.note) == ("http://127.0.0.1:8000/v1", None, None)


def test_openai_without_any_url_is_a_config_error():
    with pytest.raises(ConfigError, match="No OpenAI-compatible server URL: set OPENAI_BASE_URL"):
        Credentials.resolve("openai", env={"OPENAI_API_KEY": "o"})


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://h:80/x/", "HTTP://H/x", True),
        ("https://h/", "https://h:443", True),
        ("http://h:6900", "https://h:6900", False),
        ("http://h:6900", "http://h:6901", False),
        ("http://h/v1", "http://h/v2", False),
        ("http://h:notaport", "http://h:notaport", False),
    ],
)
def test_urls_compare_by_scheme_host_port_and_path(a, b, same):
    assert same_url(a, b) is same


# --- the label stage, on the wire ---------------------------------------------------------------


def test_pipeline_file_cannot_choose_the_key_variable(recorder, tmp_path):
    url, seen = recorder
    pipeline = _label_pipeline(tmp_path, f'{{dataset: x, api_key_env: MY_CLOUD_SECRET, default_url: "{url}"}}')
    env = {"MY_CLOUD_SECRET": SECRET}

    with pytest.raises(ConfigError) as raised:
        run_pipeline(pipeline, store_root=tmp_path / "store", env=env)

    assert f"{pipeline}, line 3, stages[0].label.api_key_env: `api_key_env` was removed" in str(raised.value)
    assert "the API key comes only from ARGILLA_API_KEY" in str(raised.value)
    assert seen == [] and SECRET not in str(raised.value)


def test_label_stage_sends_no_key_to_a_pipeline_url_other_than_argilla_api_url(recorder, tmp_path, caplog):
    url, seen = recorder
    pipeline = _label_pipeline(tmp_path, f'{{dataset: x, url: "{url}"}}')
    env = {"ARGILLA_API_URL": "http://127.0.0.1:6900", "ARGILLA_API_KEY": SECRET}

    with caplog.at_level(logging.WARNING), pytest.raises(StageError) as raised:
        run_pipeline(pipeline, store_root=tmp_path / "store", env=env)

    message = str(raised.value)
    assert f"Stage 'label' (label) has no API key for Argilla at {url}" in message
    assert "is not ARGILLA_API_URL (http://127.0.0.1:6900): the API key in ARGILLA_API_KEY is not sent" in message
    assert _keys_sent(seen) == [] and SECRET not in message + caplog.text


def test_label_stage_sends_the_key_to_argilla_api_url(recorder, tmp_path):
    pytest.importorskip("argilla", reason="the argilla extra is not installed")
    url, seen = recorder
    for label in ("{dataset: x}", f'{{dataset: x, url: "{url}/"}}'):  # unset, or the same URL written again
        seen.clear()
        with pytest.raises(CurateError, match="refused the API key") as raised:
            run_pipeline(_label_pipeline(tmp_path, label), store_root=tmp_path / "store",
                         env={"ARGILLA_API_URL": url, "ARGILLA_API_KEY": SECRET})  # fmt: skip
        assert set(_keys_sent(seen)) == {SECRET}, label
        assert SECRET not in str(raised.value)


def test_label_stage_without_a_key_names_the_variable_and_the_url(tmp_path):
    pipeline = _label_pipeline(tmp_path, "{dataset: x}")
    with pytest.raises(
        StageError,
        match=r"Stage 'label' \(label\) needs an Argilla API key for http://10\.9\.8\.7:6900 \(from ARGILLA_API_URL\): "
        r"set ARGILLA_API_KEY",
    ):
        run_pipeline(pipeline, store_root=tmp_path / "store", env={"ARGILLA_API_URL": "http://10.9.8.7:6900"})
