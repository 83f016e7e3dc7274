"""The lm-evaluation-harness bridge, end to end: a real version exported as an lm-eval task and
run by lm-eval itself on the tiny local model, offline (the task reads its local JSONL)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import yaml
from curate.evaluate.harness import export_lm_eval_task, run_lm_eval

from curate.errors import CurateError
from curate.store import Store

pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install 'curate[lm-eval]')")

LIMIT = 4


def _choice_logprobs(model_dir: Path, context: str, choices: list[str]) -> list[float]:
    """Sum of log p(choice | context), encoded as lm-eval's HF backend does (whole string, then split)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    scores = []
    for choice in choices:
        whole = tokenizer(context + choice, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([whole])
        with torch.no_grad():
            logprobs = model(ids).logits[0, :-1].log_softmax(-1)
        cont = range(len(context_ids), len(whole))  # positions of the choice's tokens
        scores.append(sum(logprobs[i - 1, whole[i]].item() for i in cont))
    return scores


def test_exported_tasks_run_through_lm_eval_on_a_local_model(tiny_lm: Path, train_store: Path, tmp_path: Path) -> None:
    store = Store(train_store)
    tasks = tmp_path / "tasks"
    labels = export_lm_eval_task(store, "support@0", tasks)  # sft with labels -> multiple_choice
    prefs = export_lm_eval_task(store, "hh@0", tasks)  # preference -> chosen vs rejected
    out = tmp_path / "scores"

    results = run_lm_eval(tiny_lm, tasks, tasks=[labels.stem, prefs.stem], limit=LIMIT, batch_size=4, out_dir=out)

    assert set(results) == {"curate_support_0_test", "curate_hh_0_test"}
    for ref, result in (("support@0", results[labels.stem]), ("hh@0", results[prefs.stem])):
        assert set(result.metrics) == {"acc"} and set(result.stderr) == {"acc"}
        assert result.n_scored == LIMIT
        assert result.n_documents == store.kept(ref, split="test").height
        assert math.isfinite(result.metrics["acc"]) and math.isfinite(result.stderr["acc"])
        assert result.metrics["acc"] * LIMIT == pytest.approx(round(result.metrics["acc"] * LIMIT))  # k of 4 right
        assert result.higher_is_better == {"acc": True}
        assert result.config["dataset_kwargs"]["data_files"]["test"].startswith(str(tasks))  # local file, no download
        saved = json.loads((out / f"{result.task}.json").read_text(encoding="utf-8"))
        assert saved["metrics"] == result.metrics and saved["n_scored"] == LIMIT

    # lm-eval's accuracy on the labelled task equals the argmax over the label log-probs, computed here
    docs = [json.loads(line) for line in (tasks / f"{labels.stem}.jsonl").read_text(encoding="utf-8").splitlines()]
    choices = yaml.safe_load(labels.read_text(encoding="utf-8"))["doc_to_choice"]  # " ACCOUNT", ...
    right = 0
    for doc in docs[:LIMIT]:
        scores = _choice_logprobs(tiny_lm, doc["prompt"], choices)
        right += scores.index(max(scores)) == doc["target"]
    assert results[labels.stem].metrics["acc"] == pytest.approx(right / LIMIT)


def test_exported_generation_task_scores_exact_match_through_lm_eval(
    tiny_lm: Path, train_store: Path, tmp_path: Path
) -> None:
    store = Store(train_store)
    task = export_lm_eval_task(store, "support@0", tmp_path / "tasks", labels=False)

    result = run_lm_eval(tiny_lm, tmp_path / "tasks", tasks=[task.stem], limit=2, out_dir=tmp_path / "scores")[
        task.stem
    ]

    assert result.config["output_type"] == "generate_until"
    assert set(result.metrics) == {"exact_match"} and result.n_scored == 2
    assert 0.0 <= result.metrics["exact_match"] <= 1.0


def test_unknown_lm_eval_task_is_refused_before_the_model_loads(tiny_lm: Path, tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    with pytest.raises(CurateError, match=r"lm-eval task\(s\) curate_nope_0_test not found in .*tasks"):
        run_lm_eval(tiny_lm, tmp_path / "tasks", tasks=["curate_nope_0_test"], out_dir=tmp_path / "scores")
    assert not (tmp_path / "scores").exists()


def test_missing_lm_eval_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` now raises ImportError
    with pytest.raises(CurateError, match=r"pip install 'curate\[lm-eval\]'"):
        run_lm_eval(tmp_path, tmp_path, tasks=["curate_support_0_test"])
