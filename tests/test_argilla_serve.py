"""`curate argilla serve` in the foreground, as a real process: termination signals stop the server too,
and no secret shows on the terminal, in `ps` or in a file others can read.

Starts the real argilla-server (its virtualenv is cached in ~/.cache/curate/argilla-server, see
tests/test_argilla_e2e.py) on a free port with a fresh database under tmp.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
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


def _accepts(url: str, key: str) -> bool:
    request = urllib.request.Request(f"{url}/api/v1/me", headers={"X-Argilla-Api-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status == 200
    except urllib.error.HTTPError:
        return False


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# sigterm: the key comes from ARGILLA_API_KEY; sighup: nothing is set, so serve generates the key
@pytest.mark.parametrize(
    ("sig", "given_key"), [(signal.SIGTERM, True), (signal.SIGHUP, False)], ids=["sigterm", "sighup"]
)
def test_foreground_serve_stops_the_server_when_terminated_and_shows_no_secret(sig, given_key, tmp_path):
    port = _free_port()
    data = tmp_path / "data"  # created by serve
    log = tmp_path / "serve.out"
    output = log.open("w")
    env = {k: v for k, v in os.environ.items() if k not in ("ARGILLA_API_KEY", "ARGILLA_PASSWORD")}
    if given_key:
        env |= {"ARGILLA_API_KEY": "serve-test-key-5f1e", "ARGILLA_PASSWORD": "serve-test-pw-77c2"}
    cli = subprocess.Popen(
        [sys.executable, "-c", "from curate.cli import main; main()", "argilla", "serve", "--port", str(port)]
        + ["--data-dir", str(data)],
        env=env,
        stdout=output,  # a file, not a pipe: the server inherits it
        stderr=subprocess.STDOUT,
    )
    try:
        state = data / f"server-{port}.json"
        _wait_for(lambda: "is up at" in log.read_text(), timeout=120, what="`serve` to report the server up")
        url = f"http://127.0.0.1:{port}"
        assert health(url) is not None
        server_pid = json.loads(state.read_text())["pid"]
        assert server_pid != cli.pid and _alive(server_pid)

        # no secret on the terminal or in any process's argv; files only their owner can read
        key_file, password_file = data / "owner-api-key", data / "owner-password"
        if given_key:
            key, password = env["ARGILLA_API_KEY"], env["ARGILLA_PASSWORD"]
            assert "export ARGILLA_API_KEY=<your key>" in log.read_text()
            assert not key_file.exists() and not password_file.exists()
        else:
            key, password = key_file.read_text().strip(), password_file.read_text().strip()
            assert f'export ARGILLA_API_KEY="$(cat {key_file})"' in log.read_text()
            assert _mode(key_file) == _mode(password_file) == 0o600
        shown = log.read_text()
        for pid in (cli.pid, server_pid):
            shown += Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert key not in shown and password not in shown
        assert _accepts(url, key) and not _accepts(url, key + "x")
        assert (_mode(data), _mode(data / "argilla.db")) == (0o700, 0o600)

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
