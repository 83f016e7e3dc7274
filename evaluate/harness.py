"""lm-evaluation-harness bridge: export a version's held-out split as an lm-eval task, and run lm-eval.

The exported folder holds ``<task>.jsonl`` (one document per row) and ``<task>.yaml``; point
lm-eval at it with ``include_path`` (``lm_eval --include_path DIR --tasks TASK``):

- sft rows with a ``label`` and labelled data -> ``multiple_choice`` over the labels seen in the split;
- other sft rows -> ``generate_until`` with exact match against the last assistant turn;
- preference rows -> ``multiple_choice`` between chosen (the target) and rejected.

lm-eval applies no chat template unless run with ``--apply_chat_template``; the documents
carry the flattened prompt as ``prompt`` and the messages as JSON in ``messages``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from curate.errors import CurateError

from ._tokenize import plain_messages, prompt_and_answer

__all__ = ["export_lm_eval_task", "run_lm_eval", "task_name"]


def task_name(ref: str, split: str) -> str:
    """lm-eval task name for a version and split: ``curate_support_3_test``."""
    return "curate_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{ref}_{split}")


def _flatten(messages: list[dict[str, Any]]) -> str:
    role = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
    lines = [f"{role.get(m['role'], m['role'])}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def export_lm_eval_task(store: Any, ref: str, out_dir: str | Path, *, split: str = "test", labels: bool | None = None) -> Path:
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
            raise CurateError(f"Dataset {full_ref} split {split!r} has rows without `label`; export it with labels=False.")
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
        raise CurateError(f"Dataset {full_ref} holds {kind} records; lm-eval export supports sft, prompt and preference.")
    with data_path.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    yaml_path = out / f"{task}.yaml"
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return yaml_path


def _answer(messages: Any) -> str:
    msgs = plain_messages(messages)
    return "\n".join(m["content"] for m in msgs if m["role"] == "assistant") or (msgs[-1]["content"] if msgs else "")


def run_lm_eval(
    model_path: str | Path,
    task_dir: str | Path,
    *,
    tasks: list[str],
    batch_size: int = 8,
    limit: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Run lm-eval's Hugging Face backend on exported (or any ``include_path``) tasks.

    Parameters
    ----------
    model_path
        A model folder (for a PEFT run, the merged model or ``pretrained=BASE,peft=ADAPTER`` through lm-eval directly).
    task_dir
        Folder with the task YAMLs (``include_path``).
    tasks
        Task names to run.
    batch_size, limit, device
        Passed to ``lm_eval.simple_evaluate``; ``limit=None`` runs every document.

    Returns
    -------
    dict
        lm-eval's ``results`` section: task name -> metric -> value.
    """
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise CurateError(
            "lm-evaluation-harness is not installed; install it with `pip install lm-eval` "
            "(curate only exports the task YAML without it)."
        ) from None
    manager = TaskManager(include_path=str(task_dir))
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_path}",
        tasks=tasks,
        task_manager=manager,
        batch_size=batch_size,
        limit=limit,
        device=device,
    )
    return dict(out["results"]) if out else {}
