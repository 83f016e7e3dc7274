"""Curation stages. Importing this package registers every built-in stage."""

from curate.stages import (  # noqa: F401  (registration side effect)
    augment,
    balance,
    decontaminate,
    dedup_exact,
    dedup_minhash,
    dedup_semantic,
    generate,
    label,
    quality,
    split,
)
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import get_stage, register, registered

__all__ = ["Stage", "StageConfig", "StageContext", "StageResult", "get_stage", "register", "registered"]
