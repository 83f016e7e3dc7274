"""What ``curate serve RUN_OR_MODEL [RUN ...]`` loads: one base model and the LoRA adapters on it.

The first source is a model folder, a full-weights run or an adapter run (whose base is then
served too); every further source is an adapter run trained on that same base, checked from the
manifests before any weights load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import ConfigError

__all__ = ["SERVABLE_ADAPTERS", "ServedSources", "resolve_sources"]

# PEFT adapters that stack on one base and switch per request with `set_adapter`
SERVABLE_ADAPTERS = ("lora", "dora", "qlora")


@dataclass(frozen=True)
class ServedSources:
    """The base to load once and the adapters to attach to it.

    Attributes
    ----------
    base
        Folder (or hub id) of the base weights.
    base_name
        The ``model`` name the base answers to: a run id for a full-weights run, else the folder name.
    identity
        The base's fingerprint (sha256 of a folder's weights, or hub id and revision), for the error
        when two runs disagree.
    adapters
        Served name (the run id) -> adapter folder (``runs/<id>/model``), in command-line order.
    """

    base: str
    base_name: str
    identity: dict[str, Any]
    adapters: dict[str, Path] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Every ``model`` name served: the base first, then the adapters."""
        return [self.base_name, *self.adapters]


def resolve_sources(sources: Sequence[str], *, runs_root: str | Path = "runs") -> ServedSources:
    """Check the sources and say what to load.

    Parameters
    ----------
    sources
        Run ids (under ``runs_root``), run folders or, first only, a model folder.
    runs_root
        Folder of the run registry.

    Raises
    ------
    ConfigError
        A source is neither a run nor a model folder, a run is unfinished or not a servable adapter,
        two runs were trained on different bases, or two sources share a name.
    """
    from curate.train.models import model_fingerprint
    from curate.runs import read_manifest, resolve_run

    if not sources:
        raise ConfigError("curate serve needs a run or a model folder to serve.")
    served: ServedSources | None = None
    adapters: dict[str, Path] = {}
    for position, source in enumerate(sources):
        run_dir = _run_folder(source, runs_root=runs_root, resolve_run=resolve_run)
        if run_dir is None:
            if position > 0 or not (Path(source) / "config.json").is_file():
                raise ConfigError(_not_found(source, runs_root=runs_root, first=position == 0))
            path = Path(source).resolve()
            served = ServedSources(base=str(path), base_name=path.name, identity=model_fingerprint(str(path)))
            continue
        manifest = read_manifest(run_dir)
        _check_run(run_dir, manifest, first=position == 0)
        model_dir = run_dir / manifest.get("artefact", "model")
        if manifest["adapter"] == "full":
            identity = model_fingerprint(str(model_dir))
            served = ServedSources(base=str(model_dir), base_name=run_dir.name, identity=identity)
            continue
        base = manifest.get("base_model") or {}
        if served is None:
            where = base.get("path") or base.get("id")
            served = ServedSources(base=str(where), base_name=Path(str(where)).name, identity=base)
        elif not _same_base(served.identity, base):
            raise ConfigError(
                f"Run {run_dir.name} was trained on {_describe(base)}, not on {_describe(served.identity)} like "
                f"{sources[0]!r}; curate serve loads one base model, so serve runs of different bases from two servers."
            )
        if run_dir.name in adapters or run_dir.name == served.base_name:
            raise ConfigError(f"{run_dir.name!r} is named twice on the command line; serve each run once.")
        adapters[run_dir.name] = model_dir
    assert served is not None  # the first source always sets it
    return ServedSources(base=served.base, base_name=served.base_name, identity=served.identity, adapters=adapters)


def _run_folder(source: str, *, runs_root: str | Path, resolve_run: Any) -> Path | None:
    from curate.runs import RunError

    try:
        return resolve_run(source, root=runs_root)
    except RunError:
        return None


def _check_run(run_dir: Path, manifest: dict[str, Any], *, first: bool) -> None:
    if manifest.get("status") != "completed":
        raise ConfigError(
            f"Run {run_dir.name} is {manifest.get('status')!r}, not completed; it has no final artefact to serve."
        )
    if manifest.get("method") == "reward" or manifest.get("adapter") == "head":
        raise ConfigError(
            f"Run {run_dir.name} trained a scorer ({manifest.get('method')}, {manifest.get('adapter')}), "
            "not a chat model; curate serve serves causal LMs."
        )
    adapter = manifest.get("adapter")
    if adapter == "full" and not first:
        raise ConfigError(
            f"Run {run_dir.name} holds full weights, which cannot share a base with other runs; name it first "
            "(it becomes the base) or serve it on its own."
        )
    if adapter != "full" and adapter not in SERVABLE_ADAPTERS:
        raise ConfigError(
            f"Run {run_dir.name} trained a {adapter!r} adapter; curate serve switches between "
            f"{', '.join(SERVABLE_ADAPTERS)} adapters on one base. Export it merged (curate export {run_dir.name}) "
            "and serve the exported folder instead."
        )


def _same_base(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.get("sha256") and b.get("sha256"):
        return a["sha256"] == b["sha256"]
    return (a.get("path") or a.get("id"), a.get("revision")) == (b.get("path") or b.get("id"), b.get("revision"))


def _describe(base: dict[str, Any]) -> str:
    if base.get("sha256"):
        return f"{base.get('path')} (sha256 {base['sha256'][:12]})"
    return f"{base.get('id') or base.get('path')} (revision {base.get('revision')})"


def _not_found(source: str, *, runs_root: str | Path, first: bool) -> str:
    what = f"a run id under {runs_root}, a run folder" + (" or a model folder (with config.json)" if first else "")
    extra = "" if first else " Only the first source may be a model folder; the others are adapter runs on it."
    return f"{source!r} is not {what}.{extra}"
