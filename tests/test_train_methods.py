"""Real TRL trainers, a few steps each, on versions made by real pipelines from ../shared/data.

Every offline method x adapter: the loss on a fixed slice of the training data goes down, the
manifest names the resolved dataset version, and the saved artefact reloads with the logits
the trained model had in memory. Online RL (ppo, grpo, rloo) trains against a reward run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from curate.train.export import load_trained
from curate.train.models import model_fingerprint
from curate.train.recipe import Recipe
from curate.train.runner import train

FAST = {"max_steps": 8, "batch_size": 4, "max_length": 128, "logging_steps": 1, "eval_strategy": "no", "save_strategy": "no"}
# rates that move a random tiny model in 8 steps (the recipe defaults are for real models)
LR = {"full": 1e-3, "lora": 5e-3, "qlora": 5e-3, "dora": 5e-3, "adalora": 1e-2, "ia3": 5e-2, "prefix": 3e-2, "prompt": 3e-2}
CONVERSATION = [{"role": "user", "content": "how can I cancel my order?"}, {"role": "assistant", "content": "I can help with that."}]


class Capture(TrainerCallback):
    """Keeps the trained model as it is in memory when training ends."""

    model: Any = None

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        self.model = model


def _recipe(
    tiny_lm: Path, tmp_path: Path, method: str, adapter: str, dataset: str, *, rl: dict | None = None, **training: Any
) -> Recipe:
    return Recipe.model_validate({
        "model": str(tiny_lm), "method": method, "adapter": adapter, "dataset": dataset, "rl": rl or {},
        "output_dir": str(tmp_path / "runs"), "training": {**FAST, "learning_rate": LR[adapter], **training},
    })  # fmt: skip


def _logits(model: Any, tokenizer: Any) -> torch.Tensor:
    ids = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).logits


CASES = [
    ("sft", "full", "support@0"),
    ("sft", "lora", "support@0"),
    ("sft", "qlora", "support@0"),
    ("sft", "dora", "support@0"),
    ("sft", "adalora", "support@0"),
    ("sft", "ia3", "support@0"),
    ("sft", "prefix", "support@0"),
    ("sft", "prompt", "support@0"),
    ("pretrain", "lora", "support@0"),
    ("reward", "full", "hh@0"),
    ("reward", "lora", "hh@0"),
    ("dpo", "full", "hh@0"),
    ("dpo", "lora", "dpo-demo@0"),
    ("kto", "lora", "hh@0"),
]


@pytest.mark.parametrize(("method", "adapter", "dataset"), CASES, ids=[f"{m}-{a}" for m, a, _ in CASES])
def test_training_lowers_train_loss_and_artefact_reloads_identically(
    tiny_lm: Path, train_store: Path, tmp_path: Path, method: str, adapter: str, dataset: str
) -> None:
    capture = Capture()
    steps = {"max_steps": 16, "batch_size": 8} if method in ("dpo", "kto", "reward") else {}
    result = train(_recipe(tiny_lm, tmp_path, method, adapter, dataset.split("@")[0], **steps), store=train_store, callbacks=[capture])

    m = result.metrics
    assert m["train_sample_loss_after"] < m["train_sample_loss_before"], m
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["dataset"]["ref"] == dataset and manifest["dataset"]["version"] == 0
    assert manifest["dataset"]["requested"] == dataset.split("@")[0]  # asked for the latest, pinned to @0
    assert manifest["base_model"]["sha256"] == model_fingerprint(str(tiny_lm))["sha256"]
    assert manifest["method"] == method and manifest["adapter"] == adapter
    assert manifest["versions"]["trl"].startswith("1.12") and len(manifest["recipe_hash"]) == 64
    files = {p.name for p in (result.path / "model").iterdir()}
    assert ("adapter_model.safetensors" if adapter != "full" else "model.safetensors") in files
    assert "tokenizer.json" in files

    reloaded, tokenizer = load_trained(result.path)
    # 4-bit: the trained model still has TRL's input-grad hook, so bitsandbytes takes its dequantize
    # path there and its fused CPU kernel on the reload; the two differ by ~6e-4 on these logits
    atol = 2e-3 if adapter == "qlora" else 1e-6
    torch.testing.assert_close(_logits(reloaded, tokenizer), _logits(capture.model, tokenizer), rtol=0, atol=atol)


def test_lora_export_merges_into_a_standalone_checkpoint(tiny_lm: Path, train_store: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from curate.train.export import export_run

    result = train(_recipe(tiny_lm, tmp_path, "sft", "lora", "support@0"), store=train_store)
    out = export_run(result.path, out=tmp_path / "merged")
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").exists()
    adapter, tokenizer = load_trained(result.path)
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    torch.testing.assert_close(_logits(merged, tokenizer), _logits(adapter, tokenizer), rtol=0, atol=1e-5)
    assert json.loads((result.path / "manifest.json").read_text())["exports"] == [{"path": str(out), "merged": True}]


def test_killed_run_resumes_to_the_same_final_step(tiny_lm: Path, train_store: Path, tmp_path: Path) -> None:
    class Kill(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 5:
                raise KeyboardInterrupt("simulated kill after step 5")

    recipe = _recipe(tiny_lm, tmp_path, "sft", "full", "support@0", max_steps=8, save_strategy="steps", save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, store=train_store, callbacks=[Kill()])
    (killed,) = (tmp_path / "runs").iterdir()
    assert json.loads((killed / "manifest.json").read_text())["status"] == "failed"
    assert sorted(p.name for p in (killed / "checkpoints").iterdir())[-1] == "checkpoint-4"

    resumed = train(recipe, store=train_store, resume=True)
    assert resumed.path == killed and resumed.metrics["global_step"] == 8
    assert resumed.manifest["status"] == "completed"


def test_resume_without_an_unfinished_run_says_so(tiny_lm: Path, train_store: Path, tmp_path: Path) -> None:
    from curate.errors import ConfigError

    with pytest.raises(ConfigError, match="Nothing to resume: no unfinished run of this recipe"):
        train(_recipe(tiny_lm, tmp_path, "sft", "full", "support@0"), store=train_store, resume=True)


def test_method_and_dataset_kind_mismatch_fails_before_loading_a_model(tiny_lm: Path, train_store: Path, tmp_path: Path) -> None:
    from curate.errors import ConfigError

    with pytest.raises(ConfigError, match=r"Dataset support@0 holds sft records, but method 'dpo' trains on preference"):
        train(_recipe(tiny_lm, tmp_path, "dpo", "lora", "support@0"), store=train_store)
    assert not (tmp_path / "runs").exists()


def test_early_stopping_keeps_the_best_validation_checkpoint(tiny_lm: Path, train_store: Path, tmp_path: Path) -> None:
    recipe = _recipe(tiny_lm, tmp_path, "sft", "full", "support@0", max_steps=12, learning_rate=5e-2,
                     eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2, early_stopping_patience=1)  # fmt: skip
    m = train(recipe, store=train_store).metrics
    assert len(m["eval_loss_history"]) >= 2
    assert m["best_checkpoint"] == f"checkpoint-{2 * (m['eval_loss_history'].index(m['eval_loss_best']) + 1)}"
    assert m["global_step"] <= 12


@pytest.fixture(scope="module")
def reward_run(tiny_lm: Path, train_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("reward")
    return train(_recipe(tiny_lm, tmp, "reward", "full", "hh@0"), store=train_store).path


@pytest.mark.parametrize(("method", "adapter"), [("ppo", "lora"), ("grpo", "lora"), ("rloo", "full")])
def test_online_rl_trains_the_policy_against_a_reward_run(
    tiny_lm: Path, train_store: Path, tmp_path: Path, reward_run: Path, method: str, adapter: str
) -> None:
    from transformers import AutoModelForCausalLM

    rl = {"reward_model": str(reward_run), "max_completion_length": 8}
    recipe = _recipe(tiny_lm, tmp_path, method, adapter, "support@0", rl=rl, max_steps=3, batch_size=4)
    result = train(recipe, store=train_store)
    assert result.manifest["status"] == "completed" and result.metrics["global_step"] == 3
    trained, tokenizer = load_trained(result.path, merge=True)
    base = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32)
    assert not torch.allclose(_logits(trained, tokenizer), _logits(base, tokenizer))  # the policy moved


def test_recipe_optimizer_reaches_the_trainer(tiny_lm: Path, train_store: Path, tmp_path: Path) -> None:
    class Optimizer(TrainerCallback):
        seen: tuple[str, Any] = ("", None)

        def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kw: Any) -> None:
            self.seen = (args.optim, getattr(optimizer, "optimizer", optimizer))  # accelerate wraps the optimizer

    seen = Optimizer()
    recipe = _recipe(tiny_lm, tmp_path, "sft", "lora", "support@0", max_steps=2, optim="sgd")
    result = train(recipe, store=train_store, callbacks=[seen])
    assert seen.seen[0] == "sgd" and type(seen.seen[1]) is torch.optim.SGD
    assert result.metrics["global_step"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="paged optimizers run on a CUDA GPU")
def test_paged_optimizer_on_cpu_fails_before_any_model_loads(train_store: Path, tmp_path: Path) -> None:
    from curate.errors import ConfigError

    recipe = _recipe(tmp_path / "no-such-model", tmp_path, "sft", "qlora", "support@0", optim="paged_adamw_8bit")
    message = r"optim paged_adamw_8bit needs a CUDA GPU \(bitsandbytes paged optimizers\); on CPU use adamw_torch"
    with pytest.raises(ConfigError, match=message):
        train(recipe, store=train_store)
    assert not (tmp_path / "runs").exists()
