"""QLoRA repack trap, the BANKING77 intent head, and training from `curate run` / the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from curate.train.recipe import Recipe

AVX512_BF16 = "avx512_bf16" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False


def _lora_grads(model_dir: Path, *, eval_forward_first: bool, fix: bool) -> dict[str, torch.Tensor]:
    """LoRA gradients of one training step on a 4-bit base, optionally after an eval no-grad forward."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer

    from curate.train.defaults import detect_device
    from curate.train.models import load_model

    recipe = Recipe(model=str(model_dir), adapter="qlora")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_model(recipe, device=detect_device(recipe), tokenizer=tokenizer)
    if not fix:  # undo what load_model did, to show the trap is real on this CPU
        for m in model.modules():
            if hasattr(m, "support_avx512bf16_for_cpu"):
                m.support_avx512bf16_for_cpu = True
    ids = tokenizer("how can I cancel my order? I can help with that.", return_tensors="pt")["input_ids"]
    if eval_forward_first:  # what generate() or Trainer evaluation does
        with torch.no_grad():
            model.eval()(input_ids=ids)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    model.train()(input_ids=ids, labels=ids).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def test_qlora_gradients_after_eval_forward_match_a_fresh_model(tiny_lm: Path) -> None:
    clean = _lora_grads(tiny_lm, eval_forward_first=False, fix=True)
    after_eval = _lora_grads(tiny_lm, eval_forward_first=True, fix=True)
    assert clean.keys() == after_eval.keys() and len(clean) > 0
    for name in clean:
        torch.testing.assert_close(after_eval[name], clean[name], msg=name)
    if AVX512_BF16:  # without the fix, bitsandbytes repacks the weights and layer-0 gradients go wrong
        broken = _lora_grads(tiny_lm, eval_forward_first=True, fix=False)
        assert any(not torch.allclose(broken[n], clean[n], atol=1e-4) for n in clean)


def test_intent_head_on_minilm_beats_the_majority_baseline(train_store: Path, tmp_path: Path) -> None:
    from curate.store import Store
    from curate.train.export import load_trained
    from curate.train.runner import train

    recipe = Recipe(
        model="all-MiniLM-L6-v2", method="sft", adapter="head", dataset="banking@0", output_dir=str(tmp_path / "runs"),
        training={"epochs": 30, "batch_size": 32, "early_stopping_patience": 3},
    )  # fmt: skip
    result = train(recipe, store=train_store)
    assert result.manifest["dataset"]["ref"] == "banking@0" and result.metrics["num_labels"] == 12

    test = Store(train_store).kept("banking@0", split="test")  # held out: never trained or early-stopped on
    texts = [p[0]["content"] for p in test["prompt"].to_list()]
    labels = test["label"].to_list()
    majority = max(labels.count(v) for v in set(labels)) / len(labels)
    classifier, _ = load_trained(result.path)
    accuracy = sum(p == y for p, y in zip(classifier.predict(texts), labels, strict=True)) / len(labels)
    assert accuracy > majority + 0.3, (accuracy, majority)
    again, _ = load_trained(result.path)
    assert torch.equal(again.logits(texts[:8]), classifier.logits(texts[:8]))


def _pipeline_with_train(tmp_path: Path, shared_data: Path, tiny_lm: Path) -> Path:
    import polars as pl

    csv = shared_data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    pl.read_csv(csv, n_rows=80, infer_schema=False).write_csv(tmp_path / "bitext.csv")
    spec = {
        "source": {"path": "bitext.csv", "format": "table", "kind": "sft",
                   "mapping": {"user": "instruction", "assistant": "response", "label": "category"}},
        "stages": [{"split": {"test": 0.1, "validation": 0.1}}],
        "output": "support",
        "train": {"model": str(tiny_lm), "adapter": "lora", "output_dir": str(tmp_path / "runs"),
                  "training": {"max_steps": 3, "batch_size": 4, "max_length": 64, "save_strategy": "no", "eval_strategy": "no"}},
    }  # fmt: skip
    path = tmp_path / "support.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_curate_run_trains_on_the_version_it_just_wrote(tmp_path: Path, shared_data: Path, tiny_lm: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    pipeline = _pipeline_with_train(tmp_path, shared_data, tiny_lm)
    runner = CliRunner()
    for expected in (0, 1):  # second run: a new version, and the new run trains on it
        out = runner.invoke(app, ["run", str(pipeline), "--store", str(tmp_path / "store")])
        assert out.exit_code == 0, out.output
        assert f"committed support@{expected}" in out.output and f"on support@{expected}" in out.output
    runs = sorted((tmp_path / "runs").iterdir(), key=lambda p: json.loads((p / "manifest.json").read_text())["dataset"]["version"])
    assert [json.loads((r / "manifest.json").read_text())["dataset"]["ref"] for r in runs] == ["support@0", "support@1"]

    listed = runner.invoke(app, ["runs", "list", "--runs", str(tmp_path / "runs")], env={"COLUMNS": "250"})
    assert listed.exit_code == 0 and "support@1" in listed.output and "completed" in listed.output
    shown = runner.invoke(app, ["runs", "show", runs[0].name, "--runs", str(tmp_path / "runs")])
    assert shown.exit_code == 0 and json.loads(shown.output)["dataset"]["version"] == 0
    exported = runner.invoke(app, ["export", runs[0].name, "--merge", "--runs", str(tmp_path / "runs")])
    assert exported.exit_code == 0, exported.output
    assert (runs[0] / "export" / "model.safetensors").is_file()


def test_curate_train_command_takes_recipe_and_dataset(tmp_path: Path, train_store: Path, tiny_lm: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": str(tiny_lm), "adapter": "full",
                                      "training": {"max_steps": 2, "batch_size": 4, "max_length": 64}}))  # fmt: skip
    out = CliRunner().invoke(
        app, ["train", str(recipe), "--dataset", "support", "--store", str(train_store), "--output", str(tmp_path / "runs")]
    )
    assert out.exit_code == 0, out.output
    assert "support@0" in out.output
    (run,) = (tmp_path / "runs").iterdir()
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved["dataset"] == "support@0" and resolved["training"]["learning_rate"] == 2e-5


def test_command_line_model_and_dataset_fill_a_recipe_without_them(tmp_path: Path, train_store: Path, tiny_lm: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"adapter": "lora", "training": {"max_steps": 2, "batch_size": 4, "max_length": 64}}))
    args = ["train", str(recipe), "--store", str(train_store), "--output", str(tmp_path / "runs")]
    out = CliRunner().invoke(app, [*args, "--model", str(tiny_lm), "--dataset", "support@0"])
    assert out.exit_code == 0, out.output
    (run,) = (tmp_path / "runs").iterdir()
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved["model"] == str(tiny_lm) and resolved["dataset"] == "support@0"
    assert json.loads((run / "manifest.json").read_text())["metrics"]["global_step"] == 2
