"""Tie a foreground child process to this one: termination signals and parent death stop it too."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any


class Stop(Exception):
    """A termination signal arrived while a foreground server was starting or running."""


def raise_on(*signals: signal.Signals) -> dict[int, Any] | None:
    """Make ``signals`` raise :class:`Stop`; returns the handlers they replace (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, _frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    return {sig: signal.signal(sig, handler) for sig in signals}


def tie_to_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child SIGTERM when this process dies, even by SIGKILL (Linux, main thread)."""
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None  # PR_SET_PDEATHSIG fires when the creating *thread* exits
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: no dlopen in the forked child
    except (OSError, AttributeError):
        return None
    parent, sigterm = os.getpid(), int(signal.SIGTERM)

    def preexec() -> None:
        prctl(1, sigterm)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def terminate(process: subprocess.Popen, *, timeout: float) -> bool:
    """SIGTERM ``process``, SIGKILL it after ``timeout`` seconds; False when it had already exited."""
    if process.poll() is not None:
        return False
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return True
