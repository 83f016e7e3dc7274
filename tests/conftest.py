"""Shared fixtures: the real public data folder and a fresh store per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` next to the repo (real public data); tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory: pytest.TempPathFactory):
    """One running local argilla-server per test session: url, owner API key, port, handle, data dir.

    Tests share it, so each uses its own Argilla dataset names. Skips without the argilla extra.
    """
    import secrets
    import socket

    pytest.importorskip("argilla", reason="the argilla extra is not installed")
    from curate.argilla.server import start_server

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = {"api_key": secrets.token_urlsafe(16), "password": secrets.token_urlsafe(12)}
    data_dir = tmp_path_factory.mktemp("argilla") / "data"  # start_server creates it
    handle = start_server(port=port, data_dir=data_dir, detach=True, **creds)
    yield {"url": handle.url, "api_key": creds["api_key"], "port": handle.port, "handle": handle, "data_dir": data_dir}
    assert handle.stop()


@pytest.fixture(scope="session")
def encoders() -> dict:
    """Every encoder of the bundled MiniLM; `static` (distilled, ~30 s on 2 idle cores) and `onnx` (exported,
    ~15 s) are built once into the user cache folder, as curate builds them, and reused by later sessions."""
    from curate.embeddings import ENCODERS, encoder_of

    return {name: encoder_of(name) for name in ENCODERS}


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """An empty dataset store root under tmp_path."""
    return tmp_path / "store"


from lm_fixtures import tiny_lm, train_store  # noqa: E402,F401 - session fixtures shared by train and eval tests
from flagship_fixtures import flagship_store  # noqa: E402,F401 - the flagship run shared by report and diff tests


@pytest.fixture(scope="session")
def ray_cluster():
    """One local 2-CPU Ray cluster per test session (about 10-20 s to start); skips without the ray extra."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
