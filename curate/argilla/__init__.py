"""Labeling in Argilla: a local server, push of candidate pairs or intent rows, pull of answers.

Preference pairs: ``push`` / ``pull`` (``curate label``); intent labels with a model's suggestions:
``intent`` (the active-learning loop).

``curate.argilla.server`` needs nothing extra; ``push`` and ``pull`` need the ``argilla``
extra (``pip install 'curate[argilla]'``).
"""

from curate.argilla.errors import ArgillaError, NothingSubmittedError

__all__ = ["ArgillaError", "NothingSubmittedError"]
