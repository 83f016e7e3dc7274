"""The installed distribution: curate.train / curate.evaluate, no top-level `evaluate`."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
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


def test_every_example_file_validates_against_the_schema_it_names() -> None:
    import jsonschema
    import yaml

    files = sorted((REPO / "pipelines").rglob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        named = re.search(r"^# yaml-language-server: \$schema=(\S+)$", text, flags=re.MULTILINE)
        assert named, f"{path.name} names no schema (# yaml-language-server: $schema=../schemas/...)"
        schema = json.loads((path.parent / named.group(1)).resolve().read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(text))]
        assert not errors, f"{path.name}: {errors}"


def test_schemas_reject_what_the_loaders_reject() -> None:
    import jsonschema

    recipe = json.loads((REPO / "schemas" / "recipe.schema.json").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError, match="'lr' was unexpected"):
        jsonschema.validate({"model": "m", "lr": 0.1}, recipe)
    pipeline = json.loads((REPO / "schemas" / "pipeline.schema.json").read_text(encoding="utf-8"))
    spec = {"source": {"path": "x.jsonl"}, "output": "out", "stages": [{"dedup_exact": {}}]}
    jsonschema.validate(spec, pipeline)  # a known stage matches exactly one `oneOf` member
    with pytest.raises(jsonschema.ValidationError, match="is not valid under any of the given schemas"):
        jsonschema.validate({**spec, "stages": [{"dedup_exactly": {}}]}, pipeline)


def test_build_metadata_has_an_spdx_license_and_no_deprecation_warning(tmp_path: Path) -> None:
    code = "import setuptools.build_meta as b, sys; print(b.prepare_metadata_for_build_wheel(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=True)
    metadata = (tmp_path / out.stdout.split()[-1] / "METADATA").read_text(encoding="utf-8")
    assert "License-Expression: Apache-2.0" in metadata
    assert "Deprecat" not in out.stderr, out.stderr


def test_datasketch_pin_allows_only_versions_with_minhash_schemes() -> None:
    from importlib.metadata import version

    from datasketch import LeanMinHash
    from packaging.requirements import Requirement

    (pin,) = (Requirement(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"] if r.startswith("datasketch"))
    assert "scheme" in inspect.signature(LeanMinHash.__init__).parameters and pin.specifier.contains(version("datasketch"))
    assert not pin.specifier.contains("1.10.0")  # 1.10.0's LeanMinHash has no `scheme` (dedup_minhash passes affine32)
