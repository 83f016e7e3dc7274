"""Run the real argilla-server locally: its own virtualenv, SQLite, no Docker/Elasticsearch/Redis.

argilla-server 2.8.0 pins pydantic 2.9, fastapi 0.115, httpx 0.27 and urllib3 < 2, which
conflict with curate's stack, so it lives in a separate virtualenv (created on first use and
cached) and runs as a subprocess: ``_server/launcher.py`` registers the SQL-reading search
engine ``_server/sqlscan.py``, swaps Redis for fakeredis, migrates the database and creates the
owner user before starting uvicorn on 127.0.0.1.

Example
-------
>>> handle = start_server(port=6900, data_dir=Path("argilla-data"), api_key="owner.key", password="s3cret-pw")
>>> handle.url
'http://127.0.0.1:6900'
>>> stop_server(port=6900, data_dir=Path("argilla-data"))
True
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.argilla._private import open_private, private_dir
from curate.argilla._process import Stop, raise_on, terminate, tie_to_parent
from curate.argilla.errors import ArgillaError

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_VENV",
    "SERVER_REQUIREMENTS",
    "ServerHandle",
    "ensure_server_env",
    "health",
    "start_server",
    "stop_server",
]

log = logging.getLogger(__name__)

DEFAULT_VENV = Path.home() / ".cache" / "curate" / "argilla-server"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "curate" / "argilla-data"
# The newest argilla-server on PyPI; fakeredis stands in for Redis inside the server process.
SERVER_REQUIREMENTS = ("argilla-server==2.8.0", "fakeredis>=2.20,<3")
LAUNCHER = Path(__file__).parent / "_server" / "launcher.py"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_server_env(venv: Path = DEFAULT_VENV, *, python: str | None = None) -> Path:
    """Create (once) the virtualenv that holds argilla-server; returns its python.

    Parameters
    ----------
    venv
        Folder of the virtualenv. Reused when its marker file lists the same requirements.
    python
        Interpreter that creates the venv; ``None`` uses the one running curate.

    Raises
    ------
    ArgillaError
        ``venv`` creation or ``pip install`` failed (the pip output tail is in the message).
    """
    marker = venv / ".curate-requirements"
    wanted = "\n".join(SERVER_REQUIREMENTS)
    if marker.is_file() and marker.read_text() == wanted and _venv_python(venv).exists():
        return _venv_python(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:  # one creator at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == wanted:
            return _venv_python(venv)
        log.warning("Creating the argilla-server virtualenv in %s (first use; about a minute).", venv)
        steps = [
            [python or sys.executable, "-m", "venv", "--clear", str(venv)],
            [
                str(_venv_python(venv)),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *SERVER_REQUIREMENTS,
            ],
        ]
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = (done.stdout + done.stderr)[-2000:]
                raise ArgillaError(
                    f"Could not create the argilla-server virtualenv in {venv}: `{' '.join(cmd)}` failed "
                    f"with exit code {done.returncode}:\n{tail}\nCheck that the package index is reachable, "
                    "or point --venv at an environment where argilla-server==2.8.0 and fakeredis are installed."
                )
        marker.write_text(wanted)
    return _venv_python(venv)


def health(url: str, *, timeout: float = 2.0) -> dict | None:
    """``GET {url}/api/v1/status``: the server's version and engine, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/status", timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _state_file(data_dir: Path, port: int) -> Path:
    return data_dir / f"server-{port}.json"


@dataclass
class ServerHandle:
    """A started server: its URL, process and whether the owner user was created just now."""

    url: str
    pid: int
    port: int
    data_dir: Path
    owner_created: bool
    process: subprocess.Popen | None = None
    log_file: Path | None = None
    # handlers that foreground mode replaced (see raise_on); restored by wait() and stop()
    signals: dict[int, Any] | None = field(default=None, repr=False)

    def wait(self) -> int:
        """Block until the server exits (foreground mode).

        Ctrl-C, SIGTERM and SIGHUP sent to this process stop the server cleanly (it would
        otherwise outlive a terminated parent) and return 0; otherwise the server's exit code.
        """
        if self.process is None:
            raise ArgillaError("This server was not started by this process; stop it with stop_server().")
        if self.signals is None:
            self.signals = raise_on(signal.SIGTERM, signal.SIGHUP)
        try:
            return self.process.wait()
        except (KeyboardInterrupt, Stop):
            self.stop()
            return 0
        finally:
            self._restore_signals()

    def stop(self, *, timeout: float = 15.0) -> bool:
        """Stop this server (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        self._restore_signals()
        if self.process is None:
            return stop_server(port=self.port, data_dir=self.data_dir, timeout=timeout)
        stopped = terminate(self.process, timeout=timeout)
        _state_file(self.data_dir, self.port).unlink(missing_ok=True)
        return stopped

    def _restore_signals(self) -> None:
        for sig, handler in (self.signals or {}).items():
            signal.signal(sig, handler)
        self.signals = None


def start_server(
    *,
    port: int = 6900,
    host: str = "127.0.0.1",
    data_dir: Path = DEFAULT_DATA_DIR,
    venv: Path = DEFAULT_VENV,
    username: str = "argilla",
    password: str,
    api_key: str,
    workspace: str = "argilla",
    reset_credentials: bool = True,
    detach: bool = False,
    timeout: float = 180.0,
    log_level: str = "warning",
) -> ServerHandle:
    """Start argilla-server on ``host:port`` and return once it answers its status endpoint.

    Parameters
    ----------
    port, host
        Where it listens; ``host`` defaults to loopback only.
    data_dir
        Holds the SQLite database, the server's temp files and ``server-<port>.json`` / ``.log``;
        created 0700, and every file the server writes there is 0600 (the database holds the key).
    venv
        The server's own virtualenv (created by :func:`ensure_server_env` when missing).
    username, password, api_key, workspace
        The owner user and its workspace, created on first start.
    reset_credentials
        When the owner already exists, give it this ``api_key`` and ``password`` (so the key
        you pass is the one that works); ``False`` keeps the stored ones (for generated keys).
    detach
        Run in a new session with output to ``data_dir/server-<port>.log`` so it outlives this
        process; otherwise the server shares this terminal and stops with it: SIGTERM or SIGHUP
        to this process stop it too (from here on, and in :meth:`ServerHandle.wait`).
    timeout
        Seconds to wait for the first successful status check (a cold start migrates the
        database and compiles the server's modules: 10-30 s).

    Raises
    ------
    ArgillaError
        The port is taken, the server exited during start-up (with its log tail), or it did
        not answer within ``timeout``.
    """
    url = f"http://{host}:{port}"
    if not _port_free(host, port):
        running = health(url)
        what = f"an Argilla {running.get('version')} server" if running else "another program"
        raise ArgillaError(
            f"Port {port} on {host} is already in use by {what}. Stop it (`curate argilla serve --stop "
            f"--port {port}` if curate started it) or pick another port with --port."
        )
    python = ensure_server_env(venv)
    data_dir = private_dir(Path(data_dir).resolve())  # its database holds the owner's key
    if len(password) < 8:
        raise ArgillaError("The owner password must have at least 8 characters (Argilla's rule).")
    log_file = data_dir / f"server-{port}.log"
    config = {
        "host": host,
        "port": port,
        "home": str(data_dir),
        "username": username,
        "password": password,
        "api_key": api_key,
        "reset": reset_credentials,
        "workspace": workspace,
        "log_level": log_level,
    }
    out = open_private(log_file) if detach else None  # handed to the child
    process = subprocess.Popen(
        [str(python), str(LAUNCHER)],
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=subprocess.STDOUT if detach else None,
        text=True,
        start_new_session=detach,
        preexec_fn=None if detach else tie_to_parent(),  # noqa: PLW1509
    )
    # In the foreground the server must not outlive this process: SIGTERM / SIGHUP stop it from
    # here on (ServerHandle.wait restores the handlers), and on Linux it also dies with us.
    signals = None if detach else raise_on(signal.SIGTERM, signal.SIGHUP)
    handle = ServerHandle(
        url=url,
        pid=process.pid,
        port=port,
        data_dir=data_dir,
        owner_created=False,
        process=process,
        log_file=log_file if detach else None,
        signals=signals,
    )
    if out is not None:
        out.close()
    try:
        _await_start(handle, config=config, timeout=timeout)
    except (KeyboardInterrupt, Stop) as exc:
        handle.stop()
        raise ArgillaError(
            f"argilla-server start-up was interrupted ({exc or 'Ctrl-C'}); the server was stopped."
        ) from None
    except BaseException:
        handle.stop()
        raise
    return handle


def _await_start(handle: ServerHandle, *, config: dict, timeout: float) -> None:
    """Send the launcher its settings and wait until the server answers its status endpoint."""
    process = handle.process
    process.stdin.write(json.dumps(config) + "\n")
    process.stdin.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_file = handle.data_dir / f"server-{handle.port}.log"
            tail = log_file.read_text()[-3000:] if handle.log_file else "(see the output above)"
            raise ArgillaError(f"argilla-server exited with code {process.returncode} during start-up:\n{tail}")
        if health(handle.url, timeout=1.0):
            state = json.loads(_state_file(handle.data_dir, handle.port).read_text())
            handle.owner_created = bool(state.get("owner_created"))
            return
        time.sleep(0.25)
    raise ArgillaError(
        f"argilla-server did not answer on {handle.url} within {timeout:.0f} s; "
        f"see {handle.log_file or 'the output above'}."
    )


def _is_launcher(pid: int) -> bool:
    try:
        return LAUNCHER.name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop_server(*, port: int = 6900, data_dir: Path = DEFAULT_DATA_DIR, timeout: float = 15.0) -> bool:
    """Stop the server curate started on ``port`` with this ``data_dir``; False when none runs."""
    state = _state_file(Path(data_dir).resolve(), port)
    if not state.is_file():
        return False
    pid = int(json.loads(state.read_text())["pid"])
    if not _is_launcher(pid):
        state.unlink(missing_ok=True)  # stale: the process is gone (or the pid was reused)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_launcher(pid):
        time.sleep(0.2)
        try:  # reap our own child, if it is one
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    if _is_launcher(pid):
        os.kill(pid, signal.SIGKILL)
    state.unlink(missing_ok=True)
    return True
