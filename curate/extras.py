"""Optional extras: which extra provides a module, and the install command when it is missing.

``pip install curate`` installs the curation side; training, evaluation, the lm-eval bridge,
Argilla and Ray come with extras (pyproject ``[project.optional-dependencies]``). A missing
extra is a user's set-up, not a bug, so it gets one sentence with the install command:
:func:`require_extra` where a library function starts (before any work), and
:func:`missing_extra` at the CLI boundary for any import that fails later.
"""

from __future__ import annotations

import importlib.util

from curate.errors import CurateError

__all__ = ["EXTRA_MODULES", "MissingExtraError", "missing_extra", "modules_of", "require_extra"]

# Top-level modules each extra's own requirements provide, in the order a missing module is
# matched to an extra. `requests`: trl 1.12 (GRPO / RLOO) and the argilla SDK import it without
# declaring it. tests/test_extras.py holds this table to pyproject.toml.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "train": ("peft", "trl", "bitsandbytes", "accelerate", "requests"),
    "argilla": ("argilla", "requests"),
    "eval": ("rouge_score", "sacrebleu"),
    "lm-eval": ("lm_eval",),
    "ray": ("ray",),
    "generate": ("openai",),
    "serve": ("fastapi", "uvicorn"),
    "augment": ("wn",),
    "onnx": ("onnxruntime", "onnx"),
}
# extras that install another one (pyproject: `eval = ["curate[train]", ...]`)
INCLUDES: dict[str, tuple[str, ...]] = {"eval": ("train",), "lm-eval": ("train",), "serve": ("train", "generate")}
# the extra a command needs, preferred when several provide the missing module
COMMAND_EXTRAS: dict[str, str] = {
    "train": "train",
    "export": "train",
    "eval": "eval",
    "compare": "eval",
    "label": "argilla",
    "argilla": "argilla",
    "serve": "serve",
}


class MissingExtraError(CurateError):
    """An optional extra that the operation needs is not installed (the message has the pip command)."""


def modules_of(extra: str) -> tuple[str, ...]:
    """Top-level modules ``extra`` installs, with those of the extras it includes."""
    included = [m for inner in INCLUDES.get(extra, ()) for m in modules_of(inner)]
    return (*EXTRA_MODULES[extra], *included)


def _message(modules: list[str], *, extra: str, what: str) -> str:
    names = ", ".join(modules)
    return f"{what} needs the `{extra}` extra ({names} not installed); install it with: pip install 'curate[{extra}]'"


def require_extra(extra: str, *, what: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` can be imported.

    Parameters
    ----------
    extra
        A key of :data:`EXTRA_MODULES`, e.g. ``"train"``.
    what
        What needs it, for the message, e.g. ``"Training"``.

    Examples
    --------
    >>> require_extra("train", what="Training")  # doctest: +SKIP
    MissingExtraError: Training needs the `train` extra (peft not installed); install it with: pip install 'curate[train]'
    """
    missing = [m for m in modules_of(extra) if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(_message(missing, extra=extra, what=what))


def missing_extra(exc: BaseException, *, command: str | None = None) -> MissingExtraError | None:
    """The install command for an import that failed because an extra is missing, else ``None``.

    Follows the exception's causes (trl wraps its own import errors in a RuntimeError) to a
    ``ModuleNotFoundError`` for a module some extra provides; the ``command``'s extra wins
    when it provides that module too.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            module = exc.name.split(".")[0]
            extras = [e for e in EXTRA_MODULES if module in modules_of(e)]
            if extras:
                preferred = COMMAND_EXTRAS.get(command or "")
                extra = preferred if preferred in extras else extras[0]
                return MissingExtraError(_message([module], extra=extra, what=f"`curate {command}`" if command else "This"))
        exc = exc.__cause__ or exc.__context__
    return None
