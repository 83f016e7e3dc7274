"""Stages register by name so pipeline YAML can refer to them."""

from __future__ import annotations

import difflib

from curate.errors import ConfigError
from curate.stages.base import Stage

__all__ = ["register", "get_stage", "registered"]

_REGISTRY: dict[str, type[Stage]] = {}


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make ``cls`` available to pipelines under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"Two stages are registered under the name {cls.name!r}.")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Stage]]:
    """All registered stages by name (a copy)."""
    return dict(sorted(_REGISTRY.items()))


def get_stage(name: str) -> type[Stage]:
    """The stage class registered as ``name``; a ConfigError with suggestions otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(
            f"Unknown stage {name!r}.{hint} Known stages: {', '.join(sorted(_REGISTRY))}."
        ) from None
