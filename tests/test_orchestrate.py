"""One orchestrator chains pipeline -> train -> evaluate; curate.train and curate.evaluate stay independent."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# what each package may take from the other: the `evaluate:` block a recipe types, and the model
# classes a run's weights load into (see curate/orchestrate.py)
ALLOWED = {
    "train": ("curate.evaluate.config",),
    "evaluate": ("curate.train.bottleneck", "curate.train.head"),
}
OTHER = {"train": "curate.evaluate", "evaluate": "curate.train"}


def _imports(folder: Path) -> list[tuple[str, int, str]]:
    """Every module a package's source imports, at module level or inside a function: (file, line, module)."""
    found = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found += [(path.name, node.lineno, node.module)]
                found += [(path.name, node.lineno, f"{node.module}.{a.name}") for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(path.name, node.lineno, a.name) for a in node.names]
    return found


def _crossing(package: str, root: Path = REPO) -> list[str]:
    other, allowed = OTHER[package], ALLOWED[package]
    return [
        f"{package}/{name}:{line} imports {module}"
        for name, line, module in _imports(root / package)
        if (module == other or module.startswith(other + "."))
        and module != other  # `from curate.evaluate import config` is listed again as curate.evaluate.config
        and not module.startswith(allowed)
    ]


@pytest.mark.parametrize("package", ["train", "evaluate"])
def test_train_and_evaluate_take_only_config_and_model_classes_from_each_other(package: str) -> None:
    assert _crossing(package) == []


@pytest.mark.parametrize(("package", "other"), [("curate.train", "curate.evaluate"), ("curate.evaluate", "curate.train")])
def test_importing_every_module_of_a_package_loads_nothing_else_of_the_other(package: str, other: str) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.iter_modules(pkg.__path__):\n"
        "    importlib.import_module(f'{pkg.__name__}.{m.name}')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, check=True).stdout
    modules = json.loads(out)
    loaded = [m for m in modules if m.startswith((other + ".", "curate.orchestrate")) and m not in ALLOWED["train"]]
    assert loaded == [], f"importing every module of {package} loaded {loaded}"


def test_curate_run_loads_the_pipeline_once_then_trains_and_evaluates(
    tmp_path: Path, shared_data: Path, tiny_lm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import curate.config
    from curate.orchestrate import run
    from test_train_integration import _pipeline_with_train

    path = _pipeline_with_train(tmp_path, shared_data, tiny_lm)
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["train"] |= {"model": os.path.relpath(tiny_lm, tmp_path), "adapter": "full", "evaluate": {"metrics": ["exact_match"]}}
    spec["evaluate"] = {"metrics": ["loss"], "max_examples": 4, "baseline": None}  # wins over the recipe's
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    loads: list[Path] = []
    real = curate.config.load_yaml_model

    def counting(file: Path, *args: object, **kwargs: object) -> object:
        loads.append(Path(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(curate.config, "load_yaml_model", counting)
    out = run(path, store_root=tmp_path / "store")

    assert loads == [path]
    assert (out.summary.dataset, out.summary.version) == ("support", 0)
    assert out.training is not None and out.training.manifest["dataset"]["ref"] == "support@0"
    assert out.training.manifest["base_model"]["path"] == str(tiny_lm.resolve())
    assert out.evaluation is not None and [m.name for m in out.evaluation.metrics] == ["loss", "perplexity"]
    assert out.evaluation.n_examples == 4
    assert out.training.manifest["evaluation"]["support@0"]["n_examples"] == 4
    assert (out.training.path / "eval" / "support@0.html").is_file()


def test_curate_train_evaluates_a_recipe_with_an_evaluate_block(tmp_path: Path, train_store: Path, tiny_lm: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": str(tiny_lm), "adapter": "full", "dataset": "support",
                                      "training": {"max_steps": 1, "batch_size": 4, "max_length": 64},
                                      "evaluate": {"metrics": ["loss"], "max_examples": 3, "baseline": None}}))  # fmt: skip
    out = CliRunner().invoke(app, ["train", str(recipe), "--store", str(train_store), "--output", str(tmp_path / "runs")])
    assert out.exit_code == 0, out.output
    (run,) = (tmp_path / "runs").iterdir()
    assert "evaluated on support@0 test (3 rows)" in out.output
    assert json.loads((run / "manifest.json").read_text())["evaluation"]["support@0"]["n_examples"] == 3
