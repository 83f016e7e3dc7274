"""``curate serve``: an OpenAI-compatible server over one base model and its LoRA adapter runs.

Every completion and the feedback posted on it land in a ``feedback``-kind dataset of the store.
"""

from ._sources import ServedSources, resolve_sources
from .server import serve

__all__ = ["ServedSources", "resolve_sources", "serve"]
