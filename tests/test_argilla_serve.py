"""`curate argilla serve` in the foreground, as a real process: termination signals stop the server too.

Starts the real argilla-server (its virtualenv is cached in ~/.cache/curate/argilla-server, see
tests/test_argilla_e2e.py) on a free port with a fresh database under tmp.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.argilla.server import health

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_foreground_serve_stops_the_server_when_terminated(sig, tmp_path):
    port = _free_port()
    log = tmp_path / "serve.out"
    output = log.open("w")
    env = {**os.environ, "ARGILLA_API_KEY": "serve-test-key", "ARGILLA_PASSWORD": "serve-test-pw"}
    cli = subprocess.Popen(
        [sys.executable, "-c", "from curate.cli import main; main()", "argilla", "serve", "--port", str(port)]
        + ["--data-dir", str(tmp_path)],
        env=env,
        stdout=output,  # a file, not a pipe: the server inherits it
        stderr=subprocess.STDOUT,
    )
    try:
        state = tmp_path / f"server-{port}.json"
        _wait_for(lambda: "is up at" in log.read_text(), timeout=120, what="`serve` to report the server up")
        assert health(f"http://127.0.0.1:{port}") is not None
        server_pid = json.loads(state.read_text())["pid"]
        assert server_pid != cli.pid and _alive(server_pid)

        cli.send_signal(sig)

        assert cli.wait(timeout=30) == 0, log.read_text()
        _wait_for(lambda: not _alive(server_pid), timeout=5, what=f"argilla-server (pid {server_pid}) to exit")
        assert _port_free(port)
        assert not state.exists()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        output.close()
