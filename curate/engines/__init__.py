"""Engines decide where the input files are read (:meth:`Engine.read`) and where a stage's ``apply``
runs; :meth:`curate.stages.base.Stage.run` does the rest.

``local`` (the default) reads and runs every stage in this process. ``ray`` reads the files in
chunks, and runs row stages and the MinHash signatures / LSH buckets, on a Ray cluster, the other
stages on the driver; see docs/engines.md.
"""

from __future__ import annotations

from curate.engines.base import Engine
from curate.errors import ConfigError
from curate.engines.local import LocalEngine

__all__ = ["ENGINES", "Engine", "LocalEngine", "get_engine"]

ENGINES = ("local", "ray")


def get_engine(name: str, *, address: str | None = None) -> Engine:
    """The engine called ``name`` (``local`` or ``ray``).

    Parameters
    ----------
    name
        ``local`` runs in this process; ``ray`` connects to (or starts) a Ray cluster.
    address
        Ray cluster address (``ray://host:10001`` or ``auto``); ``None`` joins the cluster this
        process already started, or starts a local one. Ignored by ``local``.
    """
    if name == "local":
        return LocalEngine()
    if name == "ray":
        from curate.engines.ray import RayEngine

        return RayEngine(address=address)
    raise ConfigError(f"Unknown engine {name!r}; use one of {', '.join(ENGINES)} (`engine:` in the pipeline or `curate run --engine`).")
