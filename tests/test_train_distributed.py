"""`curate train` and `curate run` under `accelerate launch --num_processes 2` on CPU (DDP over gloo) on the tiny Llama.

Two real processes train one run: one run folder and one manifest, written by the main
process; the loss curve equals one process's with the same global batch (2 processes x 2 rows
vs 1 process x 4 rows); a killed run resumes from its checkpoint across both processes.
`curate run` with a `train:` block curates once, on the main process: one version committed,
one run trained on it; a stage that fails stops both processes with one error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curate.runs import read_manifest, update_manifest
from curate.train.recipe import Recipe
from curate.train.registry import recipe_hash

STEPS = 6
# Two processes vs one: the same rows in each global batch (accelerate deals the sampler's batches
# out to the processes) and gradients averaged over the tokens of all processes, so the curves
# differ only by float summation order. Measured: at most 1e-6 apart (docs/training.md).
LOSS_TOLERANCE = 1e-4


def _recipe(folder: Path, *, model: Path, runs: Path, batch_size: int) -> Path:
    training = {"max_steps": STEPS, "batch_size": batch_size, "max_length": 64, "learning_rate": 5e-3, "scheduler": "constant",
                "warmup_ratio": 0.0, "logging_steps": 1, "eval_strategy": "no", "save_strategy": "steps", "save_steps": 3}  # fmt: skip
    spec = {"model": str(model), "method": "sft", "adapter": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            "dataset": "support@0", "name": "ddp", "output_dir": str(runs), "training": training}  # fmt: skip
    path = folder / f"recipe-{batch_size}.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accelerate(*args: str, monitor_interval: float = 0.1) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2 curate ARGS` on CPU, with the venv's accelerate and curate.

    `--multi_gpu` starts the processes with torchrun; with no GPU visible, curate trains on CPU
    and accelerate joins them over gloo. (`--cpu --num_processes 2` would start one process:
    accelerate 1.15 starts several CPU processes only through mpirun.) ``monitor_interval``:
    seconds torchrun takes to notice that a process exited (and stop the others).
    """
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
              "--monitor_interval", str(monitor_interval)]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    # the timeout is the hang check: a launch that finishes or fails returns well within it
    return subprocess.run([*launch, str(Path(sys.executable).parent / "curate"), *args], env=env, capture_output=True, text=True, timeout=300)


def _launch(recipe: Path, *, store: Path, resume: bool = False) -> subprocess.CompletedProcess:
    """`curate train RECIPE` on two processes; asserts that it succeeded."""
    done = _accelerate("train", str(recipe), "--store", str(store), *(["--resume"] if resume else []))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory, tiny_lm: Path, train_store: Path) -> Path:
    """The run folder of one 2-process launch (batch 2 per process, checkpoints at steps 3 and 6)."""
    folder = tmp_path_factory.mktemp("ddp")
    _launch(_recipe(folder, model=tiny_lm, runs=folder / "runs", batch_size=2), store=train_store)
    (run,) = (folder / "runs").iterdir()
    return run


def test_two_processes_write_one_run_that_reloads(ddp_run: Path) -> None:
    from curate.train.export import load_trained

    assert [p.name for p in ddp_run.parent.iterdir()] == [ddp_run.name]  # one run folder, not one per process
    manifest = read_manifest(ddp_run)
    assert manifest["status"] == "completed"
    assert manifest["device"]["processes"] == 2
    assert manifest["metrics"]["global_step"] == STEPS
    assert sorted(p.name for p in (ddp_run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    assert (ddp_run / "recipe.yaml").is_file() and (ddp_run / "model" / "adapter_model.safetensors").is_file()
    model, tokenizer = load_trained(ddp_run)
    ids = tokenizer("how can I cancel my order?", return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape[-1] == model.config.vocab_size


def test_two_processes_follow_the_loss_curve_of_one_process_with_the_same_global_batch(
    ddp_run: Path, tmp_path: Path, tiny_lm: Path, train_store: Path
) -> None:
    from curate.train.runner import train

    single = train(_recipe(tmp_path, model=tiny_lm, runs=tmp_path / "runs", batch_size=4), store=train_store).metrics
    two = read_manifest(ddp_run)["metrics"]
    assert len(two["train_loss_history"]) == len(single["train_loss_history"]) == STEPS
    assert two["train_loss_history"] == pytest.approx(single["train_loss_history"], abs=LOSS_TOLERANCE)
    assert two["train_loss_history"][-1] < two["train_loss_history"][0] - 0.03  # it learned
    # the data is sharded: both runs went through the same fraction of an epoch (global batch 4)
    assert two["epoch"] == pytest.approx(single["epoch"])


def test_killed_two_process_run_resumes_from_its_checkpoint_in_the_same_folder(ddp_run: Path, tmp_path: Path, train_store: Path) -> None:
    runs = tmp_path / "runs"
    run = runs / ddp_run.name
    shutil.copytree(ddp_run, run)
    shutil.rmtree(run / "checkpoints" / "checkpoint-6")  # killed after the checkpoint at step 3
    shutil.rmtree(run / "model")
    recipe = yaml.safe_load((run / "recipe.yaml").read_text(encoding="utf-8")) | {"output_dir": str(runs)}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    # the copy lives under another output_dir, which is part of the recipe hash --resume matches
    update_manifest(run, status="failed", metrics={}, recipe_hash=recipe_hash(Recipe.model_validate(recipe)))
    _launch(tmp_path / "recipe.yaml", store=train_store, resume=True)
    assert [p.name for p in runs.iterdir()] == [run.name]
    manifest = read_manifest(run)
    assert manifest["status"] == "completed" and manifest["metrics"]["global_step"] == STEPS
    expected = read_manifest(ddp_run)["metrics"]["train_loss_history"]
    assert manifest["metrics"]["train_loss_history"] == pytest.approx(expected, abs=LOSS_TOLERANCE)
    assert json.loads((run / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())["global_step"] == STEPS


def test_adalora_schedule_counts_steps_of_the_global_batch(tmp_path: Path, tiny_lm: Path, train_store: Path) -> None:
    from curate.store import Store
    from curate.train.data import prepare_data
    from curate.train.defaults import detect_device
    from curate.train.models import load_model, load_tokenizer
    from curate.train.trainers import build_trainer

    recipe = Recipe.model_validate({"model": str(tiny_lm), "method": "sft", "adapter": "adalora", "dataset": "support@0",
                                    "training": {"batch_size": 2, "gradient_accumulation": 2, "max_length": 64}})  # fmt: skip
    data = prepare_data(Store(train_store).load("support@0"), method="sft", kind="sft", ref="support@0")
    device, tokenizer = detect_device(recipe), load_tokenizer(recipe)
    rows = len(data.train)
    for devices in (1, 2):
        model = load_model(recipe, device=device, tokenizer=tokenizer)
        trainer = build_trainer(recipe, data=data, model=model, tokenizer=tokenizer, device=device, run_dir=tmp_path, devices=devices)
        # one optimizer step takes batch_size x accumulation x processes rows
        assert trainer.model.peft_config["default"].total_step == -(-rows // (4 * devices))


def _pipeline(folder: Path, shared_data: Path, *, model: Path, split: dict) -> Path:
    """48 rows of the Bitext sample -> `split` -> `support`, then a 2-step LoRA run on the new version."""
    import polars as pl

    csv = shared_data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    pl.read_csv(csv, n_rows=48, infer_schema=False).write_csv(folder / "bitext.csv")
    training = {"max_steps": 2, "batch_size": 2, "max_length": 64, "save_strategy": "no", "eval_strategy": "no", "logging_steps": 1}
    spec = {
        "source": {"path": "bitext.csv", "format": "table", "kind": "sft",
                   "mapping": {"user": "instruction", "assistant": "response", "label": "category"}},
        "stages": [{"split": split}],
        "output": "support",
        "train": {"model": str(model), "adapter": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
                  "output_dir": str(folder / "runs"), "training": training},
    }  # fmt: skip
    path = folder / "support.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_curate_run_on_two_processes_commits_one_version_and_trains_one_run_on_it(
    tmp_path: Path, shared_data: Path, tiny_lm: Path
) -> None:
    from curate.store import Store
    from curate.train.export import load_trained

    pipeline = _pipeline(tmp_path, shared_data, model=tiny_lm, split={"test": 0.1, "validation": 0.1})
    done = _accelerate("run", str(pipeline), "--store", str(tmp_path / "store"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert [v.version for v in Store(tmp_path / "store").history("support")] == [0]  # the main process alone committed
    (run,) = (tmp_path / "runs").iterdir()
    manifest = read_manifest(run)
    assert manifest["status"] == "completed" and manifest["dataset"]["ref"] == "support@0"
    assert manifest["device"]["processes"] == 2 and manifest["metrics"]["global_step"] == 2
    assert done.stdout.count("committed support@0") == 1 and done.stdout.count("trained ") == 1  # the main process reports
    model, tokenizer = load_trained(run)
    ids = tokenizer("how can I cancel my order?", return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape[-1] == model.config.vocab_size


def test_a_stage_failing_on_the_main_process_stops_both_processes_with_one_error_and_commits_nothing(
    tmp_path: Path, shared_data: Path, tiny_lm: Path
) -> None:
    pipeline = _pipeline(tmp_path, shared_data, model=tiny_lm, split={"test": 0.1, "stratify_by": "no_such_column"})
    # torchrun looks every 5 s: both processes have to stop on their own, not be stopped by it
    done = _accelerate("run", str(pipeline), "--store", str(tmp_path / "store"), monitor_interval=5)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert output.count("error: split: stratify_by column 'no_such_column' is not in the data") == 1, output[-6000:]  # curated once
    assert "The main process of this accelerate launch failed while curating" in output, output[-6000:]
    # torchrun's report names each process with its exit status: both exited with curate's error status
    exits = re.findall(r"rank\s*: (\d+) .*\n\s*exitcode\s*: (-?\d+)", done.stderr)
    assert sorted(exits) == [("0", "1"), ("1", "1")], done.stderr[-4000:]
    assert not (tmp_path / "store" / "support").exists() and not (tmp_path / "runs").exists()


def test_curate_run_without_a_train_block_under_the_launcher_is_refused_on_every_process(
    tmp_path: Path, shared_data: Path, tiny_lm: Path
) -> None:
    pipeline = _pipeline(tmp_path, shared_data, model=tiny_lm, split={"test": 0.1})
    spec = yaml.safe_load(pipeline.read_text(encoding="utf-8"))
    del spec["train"]
    pipeline.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    done = _accelerate("run", str(pipeline), "--store", str(tmp_path / "store"), monitor_interval=5)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert output.count("has no `train:` block, yet this is one of 2 processes of a launcher") == 2, output[-6000:]
    assert not (tmp_path / "store" / "support").exists()  # neither process curated


_WAIT_FOR_MAIN = """
import sys, time
from datetime import timedelta
import torch.distributed as dist
from curate.train.processes import Processes

rank, port = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=2))
processes = Processes(count=2, index=rank, local_index=rank)
print(processes.on_main(lambda: time.sleep(6) or "support@7", what="curating", patience=timedelta(minutes=2)))
"""


def test_other_processes_wait_for_the_main_one_longer_than_the_launch_collective_timeout() -> None:
    # the launch's collectives time out after 2 s (NCCL's default is 10 min); the main process works for 6 s
    port = str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _WAIT_FOR_MAIN, str(rank), port], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[1][1][-3000:] + outs[0][1][-3000:]
    assert [out.strip() for out, _ in outs] == ["support@7", "support@7"]
