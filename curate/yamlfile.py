"""Load a YAML file into a pydantic model, keeping line numbers for error messages.

PyYAML's ``compose()`` keeps a position on every node; we walk the node tree alongside the
pydantic error location so a config error says ``pipelines/support.yaml, line 12,
stages[1].split.test: ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from curate.errors import ConfigError

__all__ = ["load_yaml_model", "format_validation_error"]

M = TypeVar("M", bound=BaseModel)


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node along a pydantic error location."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
            if child is None:
                # unknown key: point at the key itself
                return next((k for k, _ in node.value if k.value == str(part)), node)
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union tags from a location: ``stages.1.split.split.test`` -> ``stages.1.split.test``."""
    out: list[Any] = []
    for part in loc:
        if isinstance(part, str) and (part.startswith(("function-", "__")) or (out and out[-1] == part)):
            continue
        out.append(part)
    return tuple(out)


def _loc_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def format_validation_error(error: ValidationError, *, path: Path, root: yaml.Node | None) -> str:
    """One line per problem: file, line, field path, message, and the bad value."""
    lines = [f"{path} is not a valid {error.title} file:"]
    for problem in error.errors():
        loc = _clean_loc(problem["loc"])
        node = _node_at(root, loc)
        where = f"line {node.start_mark.line + 1}" if node is not None else "line ?"
        value = problem.get("input")
        shown = "" if problem["type"] == "missing" or isinstance(value, dict | list) else f" (got {value!r})"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {path}, {where}, {_loc_text(loc)}: {message}{shown}")
    return "\n".join(lines)


def load_yaml_model(
    path: str | Path, model: type[M], *, context: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None
) -> M:
    """Parse ``path`` and validate it into ``model``.

    Parameters
    ----------
    path
        The YAML file.
    model
        The pydantic model the file describes.
    context
        Passed to pydantic validators (e.g. the file's folder to resolve relative paths).
    overrides
        Top-level values that replace the file's before validation, so they can fill required
        fields (command-line options); ``None`` values are ignored.

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or does not validate; the message names the line and
        field of each problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where} is not valid YAML: {getattr(exc, 'problem', exc)}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping at the top level, not {type(data).__name__}.")
    data.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return model.model_validate(data, context={"base_dir": path.parent, **(context or {})})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path=path, root=root)) from exc
