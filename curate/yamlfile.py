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

# Deepest nesting a curate file may use (real ones nest under 10). PyYAML composes recursively,
# a few frames per level, so an unbounded file would end in a RecursionError.
MAX_DEPTH = 50
_MERGE = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """YAML that parses but that curate does not read; ``line`` is 1-based."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line, self.problem = line, problem


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` with bounded nesting, and a line for an integer Python cannot convert."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self._depth >= MAX_DEPTH:
            line = self.peek_event().start_mark.line + 1
            raise _Refused(line, f"nested more than {MAX_DEPTH} levels deep; no curate setting needs that")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # more than 4,300 digits
            problem = "an integer of more than 4,300 digits, which Python does not read; quote it as a string"
            raise _Refused(node.start_mark.line + 1, problem) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


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


def _duplicate_key(node: yaml.Node | None, loc: tuple[Any, ...], seen: set[int]) -> _Refused | None:
    """The first mapping key that appears twice under ``node`` (YAML would keep the last silently)."""
    if node is None or id(node) in seen:  # an alias repeats a node already checked
        return None
    seen.add(id(node))
    children: list[tuple[Any, yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, Any], int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                if (key.tag, key.value) in first:
                    where = first[(key.tag, key.value)]
                    field = f"{_loc_text(loc)}: " if loc else ""
                    problem = f"key {key.value!r} appears twice, at lines {where} and {line}"
                    return _Refused(line, f"{field}{problem}; keep one (YAML would silently use the last)")
                first[(key.tag, key.value)] = line
            children.append((key.value if isinstance(key, yaml.ScalarNode) else "?", value))
    elif isinstance(node, yaml.SequenceNode):
        children = list(enumerate(node.value))
    for part, child in children:
        found = _duplicate_key(child, (*loc, part), seen)
        if found:
            return found
    return None


def _parse(data: bytes, *, path: Path) -> tuple[yaml.Node | None, Any]:
    """``(root node, data)`` of one YAML document; :class:`ConfigError` naming the line when it cannot."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}, line {line}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the file as UTF-8."
        ) from None
    try:
        loader = _Loader(text)  # checks every character
        root = loader.get_single_node()
        refused = _duplicate_key(root, (), set())
        if refused:
            raise refused
        return root, loader.construct_document(root) if root is not None else None
    except _Refused as exc:
        raise ConfigError(f"{path}, line {exc.line}: {exc.problem}.") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow; it has no mark
        line = text.count("\n", 0, exc.position) + 1
        problem = f"YAML does not allow the character U+{exc.character:04X}; remove it"
        raise ConfigError(f"{path}, line {line}: {problem}.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where} is not valid YAML: {getattr(exc, 'problem', exc)}.") from exc


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
        The file is missing, is not UTF-8 YAML, repeats a key, nests more than :data:`MAX_DEPTH`
        levels, or does not validate; the message names the line and field of each problem.
    """
    path = Path(path)
    try:
        root, data = _parse(path.read_bytes(), path=path)
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping at the top level, not {type(data).__name__}.")
    data.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return model.model_validate(data, context={"base_dir": path.parent, **(context or {})})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path=path, root=root)) from exc
