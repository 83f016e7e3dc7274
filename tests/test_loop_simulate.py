"""`curate loop simulate` on BANKING77 with the MiniLM head: curves, determinism, plot and summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from conftest import REPO, SHARED_DATA
from curate.errors import ConfigError
from curate.loop._sim_data import stratified
from curate.loop._sim_report import labels_to_reach
from curate.loop.simulate import CURVE_COLUMNS, SimulationResult, load_simulation, simulate

CURATE = str(Path(sys.executable).with_name("curate"))
BANKING = SHARED_DATA / "banking77" / "train.csv"
MAPPING = {"user": "text", "assistant": "category", "label": "category"}
SMALL = {
    "name": "ci_sim",
    "pool": {"path": "pool.csv", "format": "table", "mapping": dict(MAPPING)},
    "test": {"path": "test.csv", "format": "table", "mapping": dict(MAPPING)},
    # the head's default rate (1e-3) barely moves in 30 epochs of 100-300 rows; 1e-2 learns (docs/loop.md)
    "recipe": {"model": "all-MiniLM-L6-v2", "method": "sft", "adapter": "head",
               "training": {"epochs": 30, "batch_size": 32, "learning_rate": 0.01}},  # fmt: skip
    "strategies": ["random", "margin", "diversity"],
    "initial": 100,
    "budget": 100,
    "rounds": 2,
    "seeds": 2,
}


def _write_sim(folder: Path, **changes: object) -> Path:
    path = folder / "sim.yaml"
    path.write_text(yaml.safe_dump({**SMALL, **changes}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not BANKING.exists():
        pytest.skip(f"BANKING77 is not at {BANKING}")
    folder = tmp_path_factory.mktemp("sim")
    rows = pl.read_csv(BANKING).sample(n=2000, seed=0, shuffle=True)
    rows.head(1500).write_csv(folder / "pool.csv")
    rows.tail(500).write_csv(folder / "test.csv")
    _write_sim(folder)
    return folder


@pytest.fixture(scope="module")
def result(sim_dir: Path) -> SimulationResult:
    return simulate(sim_dir / "sim.yaml", out=sim_dir / "out", cache_dir=sim_dir / "store" / "_cache" / "embeddings")


def test_curves_have_one_row_per_strategy_seed_and_round(result: SimulationResult) -> None:
    curves = pl.read_csv(result.out / "curves.csv")
    assert tuple(curves.columns) == CURVE_COLUMNS
    assert curves.height == 3 * 2 * 3
    assert curves.select("strategy", "seed", "round").unique().height == curves.height
    assert sorted(curves["strategy"].unique()) == ["diversity", "margin", "random"]
    labels = curves.group_by("round").agg(pl.col("labels").unique()).sort("round")["labels"].to_list()
    assert labels == [[100], [200], [300]]
    assert curves["accuracy"].is_between(0.0, 1.0).all()


def test_every_strategy_of_a_seed_starts_from_the_same_round_zero(result: SimulationResult) -> None:
    first = result.curves.filter(pl.col("round") == 0).group_by("seed").agg(pl.col("accuracy").n_unique())
    assert first["accuracy"].to_list() == [1, 1]


def test_random_sampling_accuracy_rises_with_labels(result: SimulationResult) -> None:
    # measured: 0.55 at 100 labels -> 0.69 at 300 (77 intents, 500 test rows, 2 seeds)
    random = result.curves.filter(pl.col("strategy") == "random").group_by("round").agg(pl.col("accuracy").mean())
    by_round = dict(random.iter_rows())
    assert by_round[2] > by_round[0] + 0.05


def test_plot_and_summary_are_written(result: SimulationResult) -> None:
    svg = (result.out / "curves.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg") and "labels" in svg
    summary = (result.out / "summary.md").read_text(encoding="utf-8")
    assert summary == result.summary
    assert "![test accuracy against labels](curves.svg)" in summary
    assert "| strategy | 100 | 200 | 300 |" in summary
    assert "| margin |" in summary and "| diversity |" in summary
    assert "Labels needed to reach random's accuracy with the full budget" in summary
    assert (result.out / "simulation.json").exists()


def test_the_cli_repeats_the_simulation_exactly(sim_dir: Path, result: SimulationResult) -> None:
    store = sim_dir / "store"  # the embedding cache the first run filled
    done = subprocess.run(
        [CURATE, "loop", "simulate", "sim.yaml", "--out", "again", "--store", str(store)],
        cwd=sim_dir, capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote again/curves.csv (18 rows)" in done.stdout
    assert (sim_dir / "again" / "curves.csv").read_bytes() == (result.out / "curves.csv").read_bytes()


def test_a_pool_smaller_than_the_labels_needed_is_refused(sim_dir: Path, tmp_path: Path) -> None:
    for name in ("pool.csv", "test.csv"):
        (tmp_path / name).symlink_to(sim_dir / name)
    path = _write_sim(tmp_path, initial=1000, budget=300, rounds=2)
    problem = r"the pool has 1500 rows, fewer than the 1600 labels that initial \+ rounds x budget"
    with pytest.raises(ConfigError, match=problem):
        simulate(path, out=tmp_path / "out", cache_dir=sim_dir / "store" / "_cache" / "embeddings")


def test_config_errors_name_the_line_and_field(tmp_path: Path) -> None:
    path = _write_sim(tmp_path, strategies=["random", "bald"])
    done = subprocess.run([CURATE, "loop", "simulate", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})  # fmt: skip
    assert done.returncode == 1
    assert f"{path}, line 26, strategies[1]: Input should be 'random', 'least_confidence'" in done.stderr
    problem = r"line 17, recipe: simulate trains adapter `head` on frozen embeddings; got adapter 'lora'"
    with pytest.raises(ConfigError, match=problem):
        load_simulation(_write_sim(tmp_path, recipe={"model": "m", "method": "sft", "adapter": "lora"}))
    with pytest.raises(ConfigError, match="name a `test` source, or set `test_size`"):
        load_simulation(_write_sim(tmp_path, test=None))


def test_the_example_simulation_file_is_valid() -> None:
    config = load_simulation(REPO / "pipelines" / "sim-banking.yaml")
    assert config.labels_at_end == 1500 and config.test is None and config.test_size == 2000


def test_stratified_draws_cover_every_label_before_repeating_one() -> None:
    labels = np.array(["a"] * 60 + ["b"] * 30 + ["c"] * 10, dtype=object)
    picked = stratified(labels, 3, rng=np.random.default_rng(0))
    assert sorted(labels[picked]) == ["a", "b", "c"]
    counts = dict(zip(*np.unique(labels[stratified(labels, 50, rng=np.random.default_rng(1))], return_counts=True)))
    assert counts == {"a": 30, "b": 15, "c": 5}  # proportional beyond one each
    assert len(stratified(labels, 500, rng=np.random.default_rng(0))) == 100


def test_labels_to_reach_interpolates_between_rounds() -> None:
    assert labels_to_reach([100, 200, 300], [0.5, 0.7, 0.8], 0.6) == pytest.approx(150.0)
    assert labels_to_reach([100, 200, 300], [0.5, 0.7, 0.8], 0.4) == 100.0
    assert labels_to_reach([100, 200, 300], [0.5, 0.7, 0.8], 0.9) is None
