"""Curation stages. Importing this package registers every built-in stage."""

from curate.stages import dedup_exact, split  # noqa: F401  (registration side effect)
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import get_stage, register, registered

__all__ = ["Stage", "StageConfig", "StageContext", "StageResult", "get_stage", "register", "registered"]
