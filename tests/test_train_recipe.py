"""Recipe validation, defaults, schemas, accelerate configs and the run registry (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from curate.errors import ConfigError
from curate.train.defaults import Device, default_learning_rate
from curate.train.recipe import Recipe
from curate.train.registry import list_runs, record_evaluation, show_run, update_manifest
from curate.train.runner import load_recipe

ACCELERATE = Path(__file__).resolve().parents[1] / "train" / "accelerate"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_recipe_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "model: m\nmethod: sft\ntraining:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"recipe.yaml, line 4, training.batch_size: Input should be greater"):
        load_recipe(path)


def test_unknown_key_and_method_fail_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 2, lr: Extra inputs are not permitted"):
        load_recipe(_write(tmp_path, "model: m\nlr: 0.1\n"))
    with pytest.raises(ConfigError, match=r"method: Input should be 'sft', 'pretrain'"):
        load_recipe(_write(tmp_path, "model: m\nmethod: ppo2\n"))


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"method": "dpo", "adapter": "head"}, "adapter `head` trains a classifier"),
        ({"method": "ppo", "adapter": "lora"}, "needs rl.reward_model"),
        ({"method": "grpo", "adapter": "prefix", "rl": {"reward_model": "r"}}, "supports adapters full, lora"),
        ({"method": "dpo", "training": {"packing": True}}, "packing applies to sft and pretrain"),
        ({"training": {"early_stopping_patience": 2, "save_strategy": "steps", "save_steps": 5}}, "save_strategy equal to eval_strategy"),
        ({"training": {"eval_strategy": "steps"}}, "needs eval_steps"),
    ],
)
def test_incompatible_settings_fail_before_any_model_loads(recipe: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Recipe.model_validate({"model": "m", **recipe})


def test_learning_rate_defaults_follow_method_and_adapter() -> None:
    lr = {(m, a): default_learning_rate(Recipe(model="m", method=m, adapter=a)) for m, a in
          [("sft", "full"), ("sft", "lora"), ("sft", "qlora"), ("dpo", "full"), ("dpo", "lora"), ("sft", "head")]}  # fmt: skip
    assert lr == {("sft", "full"): 2e-5, ("sft", "lora"): 2e-4, ("sft", "qlora"): 2e-4, ("dpo", "full"): 5e-7,
                  ("dpo", "lora"): 5e-6, ("sft", "head"): 1e-3}  # fmt: skip
    assert default_learning_rate(Recipe(model="m", training={"learning_rate": 0.1})) == 0.1


def test_cpu_defaults_turn_off_bf16_and_checkpointing() -> None:
    from curate.train.defaults import detect_device

    device = detect_device(Recipe(model="m"))
    if device.kind == "cpu":
        assert device == Device(kind="cpu", bf16=False, activation_checkpointing=False)
    assert detect_device(Recipe(model="m", training={"bf16": False, "activation_checkpointing": True})).activation_checkpointing


def test_command_line_values_fill_required_fields_and_other_errors_keep_their_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"recipe.yaml, line 3, training.batch_size: Input should be greater"):
        load_recipe(_write(tmp_path, "adapter: lora\ntraining:\n  batch_size: 0\n"), model="m")
    with pytest.raises(ConfigError, match=r"recipe.yaml, line 1, model: Field required"):
        load_recipe(_write(tmp_path, "adapter: lora\n"))
    (tmp_path / "cli-model").mkdir()  # a command-line path is not resolved against the recipe folder
    recipe = load_recipe(_write(tmp_path, "model: file-model\ndataset: a@1\n"), model="cli-model", dataset="b@2")
    assert (recipe.model, recipe.dataset) == ("cli-model", "b@2")


def test_relative_model_path_resolves_against_the_recipe_folder(tmp_path: Path) -> None:
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    recipe = load_recipe(_write(tmp_path, "model: models/tiny\n"))
    assert recipe.model == str((tmp_path / "models" / "tiny").resolve())
    assert load_recipe(_write(tmp_path, "model: Qwen/Qwen2.5-0.5B\n")).model == "Qwen/Qwen2.5-0.5B"


def test_pipeline_train_block_is_a_recipe(tmp_path: Path) -> None:
    from curate.config import load_pipeline

    path = tmp_path / "p.yaml"
    path.write_text("source: {path: x.jsonl}\noutput: support\ntrain:\n  model: m\n  adapter: lora\n  lora: {r: 0}\n")
    with pytest.raises(ConfigError, match=r"line 6, train.lora.r: Input should be greater than or equal to 1"):
        load_pipeline(path)
    path.write_text("source: {path: x.jsonl}\noutput: support\ntrain: {model: m, method: dpo}\n")
    assert load_pipeline(path).train.method == "dpo"


def test_recipe_schema_file_is_up_to_date() -> None:
    from curate.schema import SCHEMAS_DIR, generate_schemas

    on_disk = json.loads((SCHEMAS_DIR / "recipe.schema.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(generate_schemas()["recipe.schema.json"]))
    assert set(on_disk["properties"]["method"]["enum"]) >= {"sft", "pretrain", "reward", "dpo", "ppo"}


@pytest.mark.parametrize(
    ("name", "kind"),
    [("ddp.yaml", "MULTI_GPU"), ("deepspeed_zero2.yaml", "DEEPSPEED"), ("deepspeed_zero3.yaml", "DEEPSPEED"), ("fsdp.yaml", "FSDP")],
)
def test_shipped_accelerate_configs_parse(name: str, kind: str) -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    raw = yaml.safe_load((ACCELERATE / name).read_text(encoding="utf-8"))
    assert raw["distributed_type"] == kind
    config = ClusterConfig.from_yaml_file(str(ACCELERATE / name))
    assert config.distributed_type.value == kind
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == int(name[-6])


def test_registry_lists_runs_newest_first_and_records_evaluations(tmp_path: Path) -> None:
    for n, created in enumerate(["2026-01-01T00:00:00", "2026-02-01T00:00:00"]):
        run = tmp_path / f"run-{n}"
        run.mkdir()
        update_manifest(run, run_id=run.name, status="completed", created=created, method="sft", adapter="lora",
                        dataset={"ref": "support@3"}, base_model={"path": "/m"}, metrics={"train_loss_last": 1.0})  # fmt: skip
    (tmp_path / "not-a-run").mkdir()
    assert [r.run_id for r in list_runs(tmp_path)] == ["run-1", "run-0"]
    record_evaluation("run-0", {"dataset": "support@3", "accuracy": 0.5}, root=tmp_path)
    assert show_run("run-0", root=tmp_path)["evaluation"] == {"support@3": {"dataset": "support@3", "accuracy": 0.5}}
    with pytest.raises(ConfigError.__mro__[1], match="No run 'nope'"):
        show_run("nope", root=tmp_path)


def test_unknown_optimizer_fails_at_load_and_names_the_known_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "model: m\ntraining:\n  optim: paged_adam_8bit\n")
    with pytest.raises(ConfigError, match=r"line 3, training.optim: unknown optimizer 'paged_adam_8bit'; .*paged_adamw_8bit"):
        load_recipe(path)
    assert Recipe(model="m", training={"optim": "paged_adamw_32bit"}).training.optim == "paged_adamw_32bit"
    with pytest.raises(ValueError, match="adapter `head` trains with its own AdamW; remove training.optim"):
        Recipe(model="m", adapter="head", training={"optim": "sgd"})
