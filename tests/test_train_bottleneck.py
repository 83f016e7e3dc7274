"""Bottleneck adapters (adapter `bottleneck`) on the tiny Llama, trained by the real TRL trainers.

One module-scoped SFT run is trained, saved, reloaded by ``load_trained`` and by ``curate eval``'s
loader, and evaluated; the other tests build adapters on the tiny model directly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, TrainerCallback

from curate.errors import ConfigError
from curate.train.bottleneck import add_bottleneck, load_bottleneck, save_bottleneck
from curate.train.export import export_run, load_trained
from curate.train.recipe import BottleneckSettings, Recipe
from curate.train.runner import train

CONVERSATION = [{"role": "user", "content": "how can I cancel my order?"}, {"role": "assistant", "content": "I can help with that."}]
# 64 rows per batch: the validation split (about 54 rows) fits one eval batch, so the trainer's
# eval loss and curate eval's loss average the same tokens the same way
FAST = {"max_steps": 8, "batch_size": 64, "max_length": 128, "logging_steps": 1, "learning_rate": 1e-2,
        "eval_strategy": "steps", "eval_steps": 8, "save_strategy": "no"}  # fmt: skip


class Capture(TrainerCallback):
    """Keeps the trained model as it is in memory when training ends."""

    model: Any = None

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        self.model = model


def _recipe(tiny_lm: Path, out: Path, **fields: Any) -> Recipe:
    training = {**FAST, **fields.pop("training", {})}
    return Recipe.model_validate({"model": str(tiny_lm), "method": "sft", "adapter": "bottleneck", "dataset": "support",
                                  "output_dir": str(out), "training": training, **fields})  # fmt: skip


def _logits(model: Any, tokenizer: Any) -> torch.Tensor:
    ids = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).logits


def _base(tiny_lm: Path) -> Any:
    return AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32)


@pytest.fixture(scope="module")
def run(tiny_lm: Path, train_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Capture]:
    capture = Capture()
    result = train(_recipe(tiny_lm, tmp_path_factory.mktemp("runs")), store=train_store, callbacks=[capture])
    return result, capture


def test_bottleneck_training_lowers_train_loss_and_moves_only_the_adapters(run: tuple[Any, Capture], tiny_lm: Path) -> None:
    result, capture = run
    m = result.metrics
    assert m["train_sample_loss_after"] < m["train_sample_loss_before"], m
    assert result.manifest["status"] == "completed" and result.manifest["adapter"] == "bottleneck"
    trained = dict(capture.model.named_parameters())
    base = dict(_base(tiny_lm).named_parameters())
    assert set(trained) - set(base) and all(".bottleneck." in n for n in set(trained) - set(base))
    for name, weight in base.items():  # the frozen base is bit-identical after training
        assert torch.equal(trained[name].detach().cpu(), weight), name
    assert all(p.requires_grad == (".bottleneck." in n) for n, p in capture.model.named_parameters())


def test_saved_bottleneck_run_holds_only_the_adapters_and_reloads_with_identical_logits(
    run: tuple[Any, Capture], tiny_lm: Path
) -> None:
    result, capture = run
    files = {p.name for p in (result.path / "model").iterdir()}
    assert {"bottleneck_config.json", "bottleneck_model.safetensors", "tokenizer.json"} <= files
    assert "model.safetensors" not in files and "adapter_config.json" not in files
    adapter_bytes = (result.path / "model" / "bottleneck_model.safetensors").stat().st_size
    assert adapter_bytes < 0.05 * (tiny_lm / "model.safetensors").stat().st_size
    config = json.loads((result.path / "model" / "bottleneck_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_lm) and config["size"] == 64 // 8
    assert config["blocks"] == ["model.layers.0.self_attn", "model.layers.0.mlp", "model.layers.1.self_attn", "model.layers.1.mlp"]

    reloaded, tokenizer = load_trained(result.path)
    expected = _logits(capture.model, tokenizer)
    torch.testing.assert_close(_logits(reloaded, tokenizer), expected, rtol=0, atol=1e-6)
    assert not torch.allclose(_logits(_base(tiny_lm), tokenizer), expected)  # the adapters changed the outputs


def test_curate_eval_loads_a_bottleneck_run_and_its_loss_matches_the_trainer(
    run: tuple[Any, Capture], train_store: Path
) -> None:
    from curate.evaluate.config import EvaluateConfig
    from curate.evaluate.models import load_model, resolve_target
    from curate.evaluate.run import eval_run

    result, capture = run
    loaded = load_model(resolve_target(result.path), device="cpu")
    torch.testing.assert_close(
        _logits(loaded.model, loaded.tokenizer), _logits(capture.model, loaded.tokenizer), rtol=0, atol=1e-6
    )
    config = EvaluateConfig(split="validation", metrics=["loss"], baseline=None, max_length=128, batch_size=64)
    evaluated = eval_run(result.path, config=config, store_root=train_store, runs_root=result.path.parent, save=False)
    trainer_loss = result.metrics["eval_loss"]
    assert evaluated.metric("loss").value == pytest.approx(trainer_loss, rel=1e-5)
    assert evaluated.metric("perplexity").value == pytest.approx(math.exp(trainer_loss), rel=1e-5)


def test_lm_eval_scores_a_bottleneck_run_with_its_adapters(run: tuple[Any, Capture], train_store: Path, tmp_path: Path) -> None:
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install 'curate[lm-eval]')")
    import yaml

    from curate.evaluate.harness import export_lm_eval_task, run_lm_eval
    from curate.store import Store

    result, _ = run
    task = export_lm_eval_task(Store(train_store), "support@0", tmp_path / "tasks")
    score = run_lm_eval(result.path, tmp_path / "tasks", tasks=[task.stem], limit=4, batch_size=4, out_dir=tmp_path / "s")
    # lm-eval's accuracy equals the argmax over the label log-probs of base + adapters, computed here
    model, tokenizer = load_trained(result.path)
    docs = [json.loads(line) for line in (tmp_path / "tasks" / f"{task.stem}.jsonl").read_text(encoding="utf-8").splitlines()]
    choices = yaml.safe_load(task.read_text(encoding="utf-8"))["doc_to_choice"]
    right = 0
    for doc in docs[:4]:
        context = tokenizer(doc["prompt"], add_special_tokens=False)["input_ids"]
        scores = []
        for choice in choices:
            whole = tokenizer(doc["prompt"] + choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logprobs = model(torch.tensor([whole])).logits[0].log_softmax(-1)
            scores.append(sum(logprobs[i - 1, whole[i]].item() for i in range(len(context), len(whole))))
        right += scores.index(max(scores)) == doc["target"]
    assert score[task.stem].metrics["acc"] == pytest.approx(right / 4)


def test_export_refuses_to_merge_bottleneck_adapters_and_copies_them_without_merge(
    run: tuple[Any, Capture], tmp_path: Path
) -> None:
    result, _ = run
    with pytest.raises(ConfigError, match=r"trained bottleneck adapters, .* cannot be merged .* --no-merge"):
        export_run(result.path, out=tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
    out = export_run(result.path, out=tmp_path / "copy", merge=False)
    assert (out / "bottleneck_model.safetensors").is_file() and (out / "tokenizer.json").is_file()


@pytest.mark.parametrize(
    ("settings", "blocks_per_layer", "width"),
    [({}, 2, 8), ({"placement": "pfeiffer"}, 1, 8), ({"size": 16, "activation": "relu"}, 2, 16)],
    ids=["houlsby-default", "pfeiffer", "size-16"],
)
def test_fresh_adapters_add_the_expected_parameters_and_leave_outputs_unchanged(
    tiny_lm: Path, settings: dict, blocks_per_layer: int, width: int
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    base_logits = _logits(_base(tiny_lm), tokenizer)
    model = add_bottleneck(_base(tiny_lm), BottleneckSettings(**settings))
    hidden, layers = model.config.hidden_size, model.config.num_hidden_layers
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    # down (hidden x width + width) and up (width x hidden + hidden) per block
    assert trainable == layers * blocks_per_layer * (2 * hidden * width + width + hidden)
    if not settings:  # the default is in the 2-5 % the usual Houlsby setups add
        assert 0.02 <= trainable / (total - trainable) <= 0.05, trainable / (total - trainable)
    torch.testing.assert_close(_logits(model, tokenizer), base_logits, rtol=0, atol=0)  # up starts at zero


def test_adapters_saved_and_loaded_outside_a_run_round_trip(tiny_lm: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    model = add_bottleneck(_base(tiny_lm), BottleneckSettings(placement="pfeiffer"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".bottleneck." in name:
                p.normal_(0, 0.1)
    save_bottleneck(model, tmp_path / "adapter", base_model=str(tiny_lm))
    again = load_bottleneck(_base(tiny_lm), tmp_path / "adapter")
    torch.testing.assert_close(_logits(again, tokenizer), _logits(model, tokenizer), rtol=0, atol=0)
    assert not any(p.requires_grad for p in again.parameters())


def test_block_names_the_model_lacks_are_named_with_the_fix(tiny_lm: Path) -> None:
    with pytest.raises(ConfigError, match=r"LlamaForCausalLM has no module named 'feed_forward'; set bottleneck.attention_module"):
        add_bottleneck(_base(tiny_lm), BottleneckSettings(ffn_module="feed_forward"))


@pytest.mark.parametrize("method", ["reward", "grpo"])
def test_recipe_rejects_bottleneck_with_methods_it_does_not_train(method: str) -> None:
    with pytest.raises(ValueError, match=rf"adapter `bottleneck` trains with methods sft, pretrain, dpo, kto, not '{method}'"):
        Recipe.model_validate({"model": "m", "method": method, "adapter": "bottleneck", "rl": {"reward_model": "r"}})


@pytest.mark.parametrize(("method", "dataset"), [("pretrain", "support"), ("dpo", "dpo-demo"), ("kto", "hh")])
def test_other_offline_methods_train_bottleneck_adapters(
    tiny_lm: Path, train_store: Path, tmp_path: Path, method: str, dataset: str
) -> None:
    # dpo / kto: TRL loads the base from its path as the frozen reference (the adapters start as identity)
    training = {"max_steps": 16, "batch_size": 8, "eval_strategy": "no", "learning_rate": 1e-2}
    result = train(_recipe(tiny_lm, tmp_path, method=method, dataset=dataset, training=training), store=train_store)
    assert result.metrics["train_sample_loss_after"] < result.metrics["train_sample_loss_before"], result.metrics
    assert (result.path / "model" / "bottleneck_model.safetensors").is_file()


def test_killed_bottleneck_run_resumes_from_its_checkpoint_to_the_same_adapters(
    tiny_lm: Path, train_store: Path, tmp_path: Path
) -> None:
    class Kill(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 3:
                raise KeyboardInterrupt("simulated kill after step 3")

    training = {"max_steps": 4, "batch_size": 8, "eval_strategy": "no", "save_strategy": "steps", "save_steps": 2}
    recipe = _recipe(tiny_lm, tmp_path / "a", training=training)
    straight = train(recipe, store=train_store)
    killed = _recipe(tiny_lm, tmp_path / "b", training=training)
    with pytest.raises(KeyboardInterrupt):
        train(killed, store=train_store, callbacks=[Kill()])
    resumed = train(killed, store=train_store, resume=True)
    assert resumed.metrics["global_step"] == 4
    a, tokenizer = load_trained(straight.path)
    b, _ = load_trained(resumed.path)
    torch.testing.assert_close(_logits(b, tokenizer), _logits(a, tokenizer), rtol=0, atol=1e-5)
