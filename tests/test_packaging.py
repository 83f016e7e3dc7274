"""The installed distribution: curate.train / curate.evaluate, no top-level `evaluate`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import REPO


def test_import_evaluate_does_not_resolve_to_our_package(tmp_path: Path) -> None:
    code = (
        "import importlib.util, curate.evaluate, curate.train\n"
        "spec = importlib.util.find_spec('evaluate')\n"
        "print(spec.origin if spec else 'none')\n"
        "print(curate.evaluate.__file__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    hf_evaluate, ours = out.stdout.split()
    assert not hf_evaluate.startswith(str(REPO / "evaluate"))  # none, or HF's (the venv may live in the repo)
    assert ours == str(REPO / "evaluate" / "__init__.py")


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"curate": REPO / "curate", "curate.train": REPO / "train", "curate.evaluate": REPO / "evaluate"}
    found = set()
    for prefix, root in folders.items():
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root).parts
            found.add(".".join((prefix, *rel)))
    assert found == set(config["packages"])


def test_console_script_answers_help() -> None:
    curate_bin = Path(sys.executable).with_name("curate")
    out = subprocess.run([str(curate_bin), "--help"], capture_output=True, text=True, check=True)
    assert "datasets" in out.stdout and "run" in out.stdout
