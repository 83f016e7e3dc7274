"""The few named exceptions curate raises. Messages are complete sentences: where, what, how to fix."""

from __future__ import annotations

__all__ = ["CurateError", "ConfigError", "GenerationError", "InputError", "StageError", "StoreError"]


class CurateError(Exception):
    """Base class of every error curate raises on purpose."""


class ConfigError(CurateError):
    """A pipeline or recipe file is invalid (names the file, line and field)."""


class InputError(CurateError):
    """An input file cannot be read or mapped (names the file, line and field)."""


class StageError(CurateError):
    """A stage failed at run time (names the stage and the column)."""


class StoreError(CurateError):
    """The dataset store refused an operation (names the dataset and version)."""


class GenerationError(CurateError):
    """A generator could not produce text (names the backend, model or URL and why)."""
