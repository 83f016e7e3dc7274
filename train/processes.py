"""Where this process stands among the processes of an ``accelerate launch`` (DDP), and how they agree.

Under ``accelerate launch --num_processes N`` every process runs ``curate train`` from the top.
The main process alone creates (or, with ``--resume``, finds) the run folder and shares its path
with the others (:meth:`Processes.share`: ``torch.distributed`` broadcast, so no clock or launch
id has to agree); it alone writes the manifest, the recipe copy and ``model/``, while the others
wait (:meth:`Processes.wait`). Everything that is collective (training, the trainer's
evaluations) runs on every process. A plain ``curate train`` is one process: ``count == 1``, and
sharing and waiting do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

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


def current_processes(*, cpu: bool) -> Processes:
    """The processes of this launch, as accelerate set them up (``cpu``: the gloo backend, as ``--cpu``).

    Initialises ``torch.distributed`` under a launcher (accelerate reads the launcher's rank
    variables, as the trainer would a moment later); a plain process gets ``Processes()``.
    """
    from accelerate import PartialState

    state = PartialState(cpu=cpu)
    return Processes(count=state.num_processes, index=state.process_index, local_index=state.local_process_index)
