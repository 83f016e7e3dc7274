"""Preference labeling in Argilla: a local server, push of candidate pairs, pull of answers.

``curate.argilla.server`` needs nothing extra; ``push`` and ``pull`` need the ``argilla``
extra (``pip install 'curate[argilla]'``).
"""

from curate.argilla.errors import ArgillaError, NothingSubmittedError

__all__ = ["ArgillaError", "NothingSubmittedError"]
