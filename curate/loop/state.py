"""Where a loop stands: ``loops/<name>/<iteration>/<step>.json``, one file per finished step.

A step's file is written once the step is done (write to a temporary file, then rename over the
target, so a killed process leaves either the old state or the new one). A step whose file exists
is never run again: resuming an iteration skips to the first step without a file. The ``label``
step also keeps its progress while annotators are still answering (``done: false``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["STEPS", "IterationState", "LoopState"]

STEPS = ("collect", "select", "propose", "push", "label", "merge", "train", "gate")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class IterationState:
    """One iteration's folder and the steps recorded in it."""

    folder: Path
    number: int

    def record(self, step: str) -> dict[str, Any] | None:
        """The JSON of ``step`` (``done``, ``outputs``, ``time``), or ``None`` when it has not run."""
        path = self.folder / f"{step}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def done(self, step: str) -> bool:
        """``step`` finished in this iteration."""
        record = self.record(step)
        return bool(record and record.get("done"))

    def outputs(self, step: str) -> dict[str, Any]:
        """What a finished step recorded (an empty dict when it has not run)."""
        record = self.record(step)
        return dict(record["outputs"]) if record else {}

    def save(self, step: str, outputs: dict[str, Any], *, done: bool = True) -> None:
        """Record ``step`` with its ``outputs`` (``done=False``: progress of a step that is still waiting)."""
        if step not in STEPS:
            raise ValueError(f"unknown loop step {step!r}; steps are {', '.join(STEPS)}")
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        write_json(self.folder / f"{step}.json", {"step": step, "done": done, "outputs": outputs, "time": stamp})

    @property
    def finished(self) -> bool:
        """Every step is done (the gate decided)."""
        return self.done(STEPS[-1])

    @property
    def next_step(self) -> str | None:
        """The first step not done yet; ``None`` when the iteration is finished."""
        return next((step for step in STEPS if not self.done(step)), None)

    def path(self, name: str) -> Path:
        """A file of this iteration (selection.parquet, report.md, ...)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / name


class LoopState:
    """The iterations of one loop under ``root/<name>/``.

    Parameters
    ----------
    root
        The loops folder (``loops``).
    name
        The loop's name.
    """

    def __init__(self, root: str | Path, name: str) -> None:
        self.folder = Path(root) / name

    def iterations(self) -> list[IterationState]:
        """Every iteration started so far, oldest first."""
        if not self.folder.is_dir():
            return []
        numbers = sorted(int(p.name) for p in self.folder.iterdir() if p.is_dir() and p.name.isdigit())
        return [IterationState(self.folder / str(n), n) for n in numbers]

    def open_iteration(self) -> IterationState | None:
        """The last iteration when it is not finished (the one to resume), else ``None``."""
        started = self.iterations()
        return started[-1] if started and not started[-1].finished else None

    def new_iteration(self) -> IterationState:
        """The next iteration's state (its folder is created by its first write)."""
        started = self.iterations()
        number = started[-1].number + 1 if started else 1
        return IterationState(self.folder / str(number), number)

    def promoted_run(self) -> str | None:
        """The run the last finished gate promoted (``None``: no iteration promoted one)."""
        for iteration in reversed(self.iterations()):
            if iteration.finished and iteration.outputs("gate").get("promoted"):
                return iteration.outputs("gate")["run"]
        return None
