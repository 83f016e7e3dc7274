"""Where this process stands among the processes of an ``accelerate launch`` (DDP), and how they agree.

Under ``accelerate launch --num_processes N`` every process runs ``curate train`` from the top.
The main process alone creates (or, with ``--resume``, finds) the run folder and shares its path
with the others (:meth:`Processes.share`: ``torch.distributed`` broadcast, so no clock or launch
id has to agree); it alone writes the manifest, the recipe copy and ``model/``, while the others
wait (:meth:`Processes.wait`). Everything that is collective (training, the trainer's
evaluations) runs on every process. A plain ``curate train`` is one process: ``count == 1``, and
sharing and waiting do nothing.

``curate run`` with a ``train:`` block curates through :meth:`Processes.on_main`: the main process
runs the pipeline and commits; the others wait for the version it committed, or for word that
it failed, then all train.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from curate.errors import CurateError

__all__ = ["Processes", "current_processes"]

T = TypeVar("T")


@dataclass(frozen=True)
class Processes:
    """This process's place in the launch: ``index`` of ``count`` (``local_index`` on its machine)."""

    count: int = 1
    index: int = 0
    local_index: int = 0

    @property
    def is_main(self) -> bool:
        """True on the process that writes the run folder (global index 0)."""
        return self.index == 0

    def wait(self) -> None:
        """Block until every process reaches this point (nothing to wait for in one process)."""
        if self.count > 1:
            import torch.distributed as dist

            dist.barrier()

    def share(self, value: T) -> T:
        """The main process's ``value`` on every process (a picklable object; given back as is in one process)."""
        if self.count == 1:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, work: Callable[[], T], *, what: str, patience: timedelta) -> T:
        """Run ``work`` on the main process alone; every process returns its result.

        Parameters
        ----------
        work
            What only the main process does (e.g. curate and commit a version); its result must pickle.
        what
            The work in a few words, for the error the other processes raise (``"curating x.yaml"``).
        patience
            How long the other processes wait for the result. They wait on a gloo group of their
            own: the launch's collective timeout (30 min for gloo, 10 min for NCCL) would end a
            long ``work`` with a timeout on every other process.

        Raises
        ------
        CurateError
            On the other processes, when ``work`` raised on the main process (which raises its own error).
        """
        if self.count == 1:
            return work()
        import torch.distributed as dist

        group = dist.new_group(backend="gloo", timeout=patience)  # every process, before the main one starts
        try:
            box: list = [None]
            if self.is_main:
                try:
                    box = [work()]
                except BaseException as exc:
                    dist.broadcast_object_list([_Failed(f"{type(exc).__name__}: {exc}")], src=0, group=group)
                    raise
            dist.broadcast_object_list(box, src=0, group=group)
        finally:
            dist.destroy_process_group(group)
        if isinstance(box[0], _Failed):
            raise CurateError(
                f"The main process of this accelerate launch failed while {what}, so process {self.index} of {self.count} "
                f"stops too; fix what the main process reported and launch again (it said: {box[0].error})"
            )
        return box[0]


@dataclass(frozen=True)
class _Failed:
    """What the main process shares instead of a result when its work raised."""

    error: str


def current_processes(*, cpu: bool) -> Processes:
    """The processes of this launch, as accelerate set them up (``cpu``: the gloo backend, as ``--cpu``).

    Initialises ``torch.distributed`` under a launcher (accelerate reads the launcher's rank
    variables, as the trainer would a moment later); a plain process gets ``Processes()``.
    """
    from accelerate import PartialState

    state = PartialState(cpu=cpu)
    return Processes(count=state.num_processes, index=state.process_index, local_index=state.local_process_index)
