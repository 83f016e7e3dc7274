"""JSON Schemas generated from the pydantic config models, for editor autocompletion of YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.config import pipeline_model

__all__ = ["SCHEMAS_DIR", "generate_schemas", "write_schemas"]

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"


def generate_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema for every config file curate reads."""
    from curate.loop.config import LoopConfig
    from curate.loop.simulate import SimulationConfig
    from curate.train.recipe import Recipe

    return {
        "loop.schema.json": LoopConfig.model_json_schema(),
        "pipeline.schema.json": pipeline_model().model_json_schema(),
        "recipe.schema.json": Recipe.model_json_schema(),
        "simulation.schema.json": SimulationConfig.model_json_schema(),
    }


def write_schemas(directory: Path = SCHEMAS_DIR) -> list[Path]:
    """Write every schema into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate_schemas().items():
        target = directory / name
        target.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(target)
    return written
