"""lm-evaluation-harness bridge: export a version's held-out split as an lm-eval task, and run lm-eval.

The exported folder holds ``<task>.jsonl`` (one document per row) and ``<task>.yaml``; point
lm-eval at it with ``include_path`` (``lm_eval --include_path DIR --tasks TASK``):

- sft rows with a ``label`` and labelled data -> ``multiple_choice`` over the labels seen in the split;
- other sft rows -> ``generate_until`` with exact match against the last assistant turn;
- preference rows -> ``multiple_choice`` between chosen (the target) and rejected.

lm-eval scores the flattened prompt (``prompt``); its ``--apply_chat_template`` wraps that whole
text as one user turn. The messages are kept as JSON in ``messages`` for custom task configs.

:func:`run_lm_eval` runs lm-eval's Hugging Face backend on a run or model folder and saves one
JSON per task under the run's ``eval/lm_eval/``. The task data is read from the local JSONL
(``dataset_path: json``), so nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from curate.errors import CurateError

from ._tokenize import plain_messages, prompt_and_answer

__all__ = ["LmEvalTaskResult", "export_lm_eval_task", "run_lm_eval", "task_name"]

log = logging.getLogger(__name__)


def task_name(ref: str, split: str) -> str:
    """lm-eval task name for a version and split: ``curate_support_3_test``."""
    return "curate_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{ref}_{split}")


def _flatten(messages: list[dict[str, Any]]) -> str:
    role = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
    lines = [f"{role.get(m['role'], m['role'])}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def export_lm_eval_task(
    store: Any, ref: str, out_dir: str | Path, *, split: str = "test", labels: bool | None = None
) -> Path:
    """Write an lm-eval task for ``ref``'s ``split`` into ``out_dir``; returns the YAML path.

    Parameters
    ----------
    store
        A :class:`curate.store.Store`.
    ref
        ``name@N`` or ``name`` (resolved to its version, which is part of the task name).
    out_dir
        Folder to pass to lm-eval as ``include_path``.
    split
        Which kept split to export.
    labels
        sft only: ``True`` exports label classification (needs the ``label`` column),
        ``False`` exports generation; ``None`` picks classification when every row has a label.
    """
    name, version = store.resolve(ref)
    full_ref = f"{name}@{version}"
    kind = store.kind(full_ref)
    rows = store.kept(full_ref, split=split).to_dicts()
    if not rows:
        raise CurateError(f"Dataset {full_ref} has no rows in split {split!r}; nothing to export for lm-eval.")
    task = task_name(full_ref, split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_path = (out / f"{task}.jsonl").resolve()
    config: dict[str, Any] = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_path)}},
        "test_split": "test",
        "doc_to_text": "{{prompt}}",
        "target_delimiter": "",  # choices and targets carry their own leading space
        "metadata": {"version": 1.0, "curate_dataset": full_ref, "split": split},
    }
    docs = []
    if kind == "preference":
        for r in rows:
            docs.append(
                {
                    "id": r["id"],
                    "prompt": _flatten(plain_messages(r["prompt"])),
                    "messages": json.dumps(plain_messages(r["prompt"])),
                    "choices": [" " + _answer(r["chosen"]), " " + _answer(r["rejected"])],
                    "target": 0,
                }
            )
        config |= {
            "output_type": "multiple_choice",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{target}}",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        }
    elif kind in ("sft", "prompt"):
        column = "messages" if kind == "sft" else "prompt"
        has_labels = all(r.get("label") for r in rows)
        use_labels = has_labels if labels is None else labels
        if use_labels and not has_labels:
            raise CurateError(
                f"Dataset {full_ref} split {split!r} has rows without `label`; export it with labels=False."
            )
        label_set = sorted({r["label"] for r in rows}) if use_labels else []
        for r in rows:
            prompt, answer = prompt_and_answer(r[column])
            doc = {"id": r["id"], "prompt": _flatten(prompt), "messages": json.dumps(prompt), "answer": answer}
            if use_labels:
                doc["target"] = label_set.index(r["label"])
            docs.append(doc)
        if use_labels:
            config |= {
                "output_type": "multiple_choice",
                "doc_to_choice": [" " + label for label in label_set],
                "doc_to_target": "{{target}}",
                "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
            }
        else:
            config |= {
                "output_type": "generate_until",
                "doc_to_target": "{{answer}}",
                "generation_kwargs": {"until": ["\nUser:", "\n\n"], "do_sample": False, "max_gen_toks": 256},
                "metric_list": [
                    {
                        "metric": "exact_match",
                        "aggregation": "mean",
                        "higher_is_better": True,
                        "ignore_case": True,
                        "ignore_punctuation": True,
                    }
                ],
            }
    else:
        raise CurateError(
            f"Dataset {full_ref} holds {kind} records; lm-eval export supports sft, prompt and preference."
        )
    with data_path.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    yaml_path = out / f"{task}.yaml"
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return yaml_path


def _answer(messages: Any) -> str:
    msgs = plain_messages(messages)
    return "\n".join(m["content"] for m in msgs if m["role"] == "assistant") or (msgs[-1]["content"] if msgs else "")


@dataclass(frozen=True)
class LmEvalTaskResult:
    """One task's scores from lm-eval, as :func:`run_lm_eval` returns and saves them."""

    task: str
    model: str  # run id or model path, as in curate's own reports
    metrics: dict[str, float]  # "acc", "exact_match"; a filter other than lm-eval's "none" is kept as "metric,filter"
    stderr: dict[str, float | None]  # same keys; None where lm-eval reports "N/A"
    higher_is_better: dict[str, bool]
    n_scored: int  # documents scored (after `limit`)
    n_documents: int  # documents in the task's split
    lm_eval_version: str
    config: dict[str, Any]  # the task config lm-eval ran (dataset files, output type, metrics)
    path: Path | None = None  # the saved JSON

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``path`` as a string)."""
        return asdict(self) | {"path": str(self.path) if self.path else None}


def run_lm_eval(
    model: str | Path,
    task_dir: str | Path,
    *,
    tasks: list[str],
    batch_size: int = 8,
    limit: int | None = None,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    include_defaults: bool = False,
) -> dict[str, LmEvalTaskResult]:
    """Run lm-eval's Hugging Face backend on exported (or any ``include_path``) tasks and save the scores.

    Parameters
    ----------
    model
        A run (``runs/<id>`` or an id under ``runs_root``; a PEFT or bottleneck run is evaluated as
        base + adapter) or a causal-LM model folder.
    task_dir
        Folder with the task YAMLs (``include_path``), e.g. from :func:`export_lm_eval_task`.
    tasks
        Task names to run; each must be defined in ``task_dir`` (or built in, with ``include_defaults``).
    batch_size, device
        Passed to ``lm_eval.simple_evaluate``.
    limit
        Score only the first ``limit`` documents of each task; ``None`` scores them all.
    out_dir
        Where ``<task>.json`` is written; ``None`` is ``runs/<id>/eval/lm_eval/`` for a run and
        ``eval/<folder name>/lm_eval/`` for a model folder.
    runs_root
        Where run ids are looked up.
    include_defaults
        Also index lm-eval's built-in tasks (about 9 s more) so they can run next to the exported ones.

    Returns
    -------
    dict
        Task name -> :class:`LmEvalTaskResult`.

    Examples
    --------
    >>> scores = run_lm_eval("runs/<id>", "lm_eval_tasks", tasks=["curate_support_3_test"])  # doctest: +SKIP
    >>> scores["curate_support_3_test"].metrics  # doctest: +SKIP
    {'acc': 0.41}
    """
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise CurateError(
            "lm-evaluation-harness is not installed; install it with `pip install lm-eval` or `pip install 'curate[lm-eval]'` "
            "(curate only exports the task YAML without it)."
        ) from None
    from .models import resolve_target
    from .output import lm_eval_folder

    target = resolve_target(model, runs_root=runs_root)
    if target.role != "causal_lm":
        raise CurateError(f"{target.name} is a {target.role} model; lm-eval scores causal language models only.")
    manager = TaskManager(include_path=str(task_dir), include_defaults=include_defaults)
    missing = [t for t in tasks if t not in manager.all_tasks]
    if missing:
        known = ", ".join(t for t in manager.all_tasks if t.startswith("curate_")) or "none"
        raise CurateError(
            f"lm-eval task(s) {', '.join(missing)} not found in {task_dir} (curate tasks there: {known}); "
            "export them with export_lm_eval_task or pass include_defaults=True for lm-eval's built-in tasks."
        )
    preloaded = _bottleneck_lm(target, batch_size=batch_size, device=device)
    out = lm_eval.simple_evaluate(
        model="hf" if preloaded is None else preloaded,
        model_args=_model_args(target),
        tasks=tasks,
        task_manager=manager,
        batch_size=batch_size,
        limit=limit,
        device=device,
        log_samples=False,
    )
    if out is None:  # only on non-zero ranks of a distributed run, which curate does not start
        return {}
    folder = lm_eval_folder(run_dir=target.run_dir, model=target.path, out_dir=out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for task in tasks:
        result = _task_result(out, task, model=target.name, path=folder / f"{task}.json")
        result.path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        log.info("lm-eval %s on %s: %s (wrote %s)", task, target.name, result.metrics, result.path)
        results[task] = result
    return results


def _bottleneck_lm(target: Any, *, batch_size: int, device: str) -> Any | None:
    """lm-eval's HF backend around a bottleneck run loaded by curate (lm-eval cannot apply those adapters by path)."""
    from curate.train.bottleneck import BOTTLENECK_CONFIG

    if not (isinstance(target.path, Path) and (target.path / BOTTLENECK_CONFIG).is_file()):
        return None
    from lm_eval.models.huggingface import HFLM

    from .models import load_model

    loaded = load_model(target, device=device)
    return HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size, device=device)


def _model_args(target: Any) -> dict[str, str]:
    path = target.path
    if not (isinstance(path, Path) and (path / "adapter_config.json").is_file()):
        return {"pretrained": str(path)}
    adapter_cfg = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    base = target.base_model or adapter_cfg.get("base_model_name_or_path")
    if not base:
        raise CurateError(
            f"{path} holds a PEFT adapter but neither the run manifest nor adapter_config.json names its base model."
        )
    has_tokenizer = any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    return {"pretrained": str(base), "peft": str(path), "tokenizer": str(path if has_tokenizer else base)}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _task_result(out: dict[str, Any], task: str, *, model: str, path: Path) -> LmEvalTaskResult:
    """lm-eval's ``"acc,none"`` / ``"acc_stderr,none"`` keys -> ``metrics["acc"]`` / ``stderr["acc"]``."""
    raw = out["results"][task]
    metrics: dict[str, float] = {}
    stderr: dict[str, float | None] = {}
    for key, value in raw.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, filt = key.split(",", 1)
        name = metric if filt == "none" else key
        metrics[name] = float(value) if _number(value) is not None else math.nan
        stderr[name] = _number(raw.get(f"{metric}_stderr,{filt}"))
    counts = out.get("n-samples", {}).get(task, {})
    return LmEvalTaskResult(
        task=task,
        model=model,
        metrics=metrics,
        stderr=stderr,
        higher_is_better=dict(out.get("higher_is_better", {}).get(task, {})),
        n_scored=int(counts.get("effective", raw.get("sample_len", 0))),
        n_documents=int(counts.get("original", raw.get("sample_len", 0))),
        lm_eval_version=str(out.get("lm_eval_version", "")),
        config=dict(out.get("configs", {}).get(task, {})),
        path=path,
    )
