"""The error curate's Argilla integration raises: server, connection, dataset and answer problems."""

from __future__ import annotations

from curate.errors import CurateError

__all__ = ["ArgillaError", "NothingSubmittedError"]


class ArgillaError(CurateError):
    """Argilla refused or could not be reached (names the URL, dataset and what to do)."""


class NothingSubmittedError(ArgillaError):
    """The Argilla dataset exists but no annotator has submitted an answer yet."""
