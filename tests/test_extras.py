"""Each extra carries what its code imports; a missing extra gives the pip command, not a traceback.

An extra is checked by importing its code in a fresh interpreter where every installed module
that neither the base requirements nor that extra (with their own requirements, recursively)
provide is blocked, as in a venv made by `pip install 'curate[<extra>]'`. Missing extras are
simulated by blocking a third-party module (``sys.modules[name] = None``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from curate.extras import EXTRA_MODULES, missing_extra, modules_of

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# what each extra's code imports (module imports, then statements run after them)
USES: dict[str, tuple[list[str], str]] = {
    "base": (["curate.cli", "curate.pipeline", "curate.stages", "curate.embeddings", "curate.argilla.client",
              "curate.train", "curate.train.recipe", "curate.evaluate.config", "curate.feedback", "curate.loop.propose"],
             ""),
    "train": (["curate.train.runner", "curate.train.trainers", "curate.train.online", "curate.train.models",
               "curate.train.export", "curate.train.head", "curate.train.mix", "peft", "bitsandbytes"],
              "from trl import SFTTrainer, DPOTrainer, KTOTrainer, RewardTrainer, GRPOTrainer, RLOOTrainer\n"
              "import trl.experimental.ppo"),
    "eval": (["curate.evaluate.run", "curate.evaluate.compare", "curate.evaluate.models", "trl.chat_template_utils"],
             "from curate.evaluate.metrics import rouge_l_score, bleu_score\n"
             "assert rouge_l_score('a b', 'a b') == 1.0 and bleu_score('a b c d', 'a b c d') > 0.9"),
    "lm-eval": (["lm_eval", "lm_eval.tasks", "curate.evaluate.harness", "curate.evaluate.models"], ""),
    "argilla": (["argilla", "curate.argilla.client", "curate.argilla.push", "curate.argilla.pull", "curate.argilla.intent"],
                ""),
    "generate": (["openai", "curate.generate", "curate.generate.openai_backend"], ""),
    "serve": (["fastapi", "uvicorn", "curate.serve", "curate.serve.server", "curate.serve.app", "curate.serve.models",
               "curate.serve.feedback", "curate.cli.serve", "peft", "openai"], ""),
    "augment": (["curate.stages.augment"], "from curate.stages._augment_wordnet import load_lexicon\n"
                "assert load_lexicon(senses=1).synonyms('refund')"),
    "onnx": (["curate._encoders", "onnxruntime", "onnx", "onnxruntime.quantization"], ""),
}  # fmt: skip


def _requirements(extra: str) -> list[str]:
    """Requirements of the base plus ``extra``, with `curate[...]` self-references expanded from pyproject."""
    out, todo = list(PROJECT["dependencies"]), [extra] if extra != "base" else []
    while todo:
        for req in PROJECT["optional-dependencies"][todo.pop()]:
            r = Requirement(req)
            if canonicalize_name(r.name) == "curate":
                todo.extend(r.extras)
            else:
                out.append(req)
    return out


def _installed_closure(requirements: list[str]) -> set[str]:
    """Installed distributions the requirements pull in, following each one's own requirements."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), tuple(sorted(req.extras)))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = distribution(req.name).requires or []
        except PackageNotFoundError:
            continue
        for sub in map(Requirement, requires):
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(sub)
    return {name for name, _ in seen}


def _blocked(extra: str) -> list[str]:
    allowed = _installed_closure(_requirements(extra))
    return sorted(
        module
        for module, dists in packages_distributions().items()
        if module.isidentifier() and module != "curate" and not any(canonicalize_name(d) in allowed for d in dists)
    )


def _python(code: str, *, block: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys\nfor _m in {block!r}:\n    sys.modules[_m] = None\n"
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("extra", list(USES))
def test_each_extra_installs_every_module_its_code_imports(extra: str) -> None:
    modules, statements = USES[extra]
    if extra != "base" and any(importlib.util.find_spec(m) is None for m in modules_of(extra)):
        pytest.skip(f"the {extra} extra is not installed here")
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + statements + "\nprint('ok')"
    out = _python(code, block=_blocked(extra))
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2500:]


def test_extra_table_matches_pyproject() -> None:
    declared = set(PROJECT["optional-dependencies"]) - {"dev", "all"}
    assert set(EXTRA_MODULES) == declared
    for extra in EXTRA_MODULES:
        provided = _installed_closure(_requirements(extra))
        owners = packages_distributions()
        for module in modules_of(extra):
            if module in owners:  # installed here: some requirement of the extra must provide it
                assert any(canonicalize_name(d) in provided for d in owners[module]), (extra, module)


def test_curate_train_without_the_train_extra_prints_the_install_command(
    tmp_path: Path, train_store: Path, tiny_lm: Path
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": str(tiny_lm), "training": {"max_steps": 1}}), encoding="utf-8")
    args = ["train", str(recipe), "--dataset", "support@0", "--store", str(train_store), "--output", str(tmp_path / "runs")]
    out = _python(f"sys.argv = ['curate', *{args!r}]\nfrom curate.cli import main\nmain()", block=["peft"])
    assert out.returncode == 1
    assert "Training needs the `train` extra (peft not installed); install it with: pip install 'curate[train]'" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "runs").exists()


def test_a_pipeline_with_a_train_block_stops_before_curating_without_the_train_extra(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n')
    spec = {"source": {"path": "rows.jsonl"}, "output": "support", "train": {"model": "m"}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    args = ["run", str(tmp_path / "p.yaml"), "--store", str(tmp_path / "store")]
    out = _python(f"sys.argv = ['curate', *{args!r}]\nfrom curate.cli import main\nmain()", block=["trl"])
    assert out.returncode == 1, out.stderr[-2000:]
    assert "needs the `train` extra (trl not installed); install it with: pip install 'curate[train]'" in out.stderr
    assert not (tmp_path / "store").exists()  # nothing curated for a run that cannot train


def test_an_import_error_wrapped_by_trl_still_names_the_extra() -> None:
    # trl 1.12 imports `requests` for GRPO and wraps the failure in a RuntimeError
    code = (
        "from curate.extras import missing_extra\n"
        "try:\n    from trl import GRPOTrainer\nexcept Exception as exc:\n"
        "    print(type(exc).__name__, '|', missing_extra(exc, command='train'))\n"
    )
    out = _python(code, block=["requests"])
    assert out.stdout.strip() == (
        "RuntimeError | `curate train` needs the `train` extra (requests not installed); "
        "install it with: pip install 'curate[train]'"
    ), out.stderr[-2000:]


def test_curate_eval_without_the_eval_extra_prints_the_install_command(tmp_path: Path, train_store: Path, tiny_lm: Path) -> None:
    args = ["eval", str(tiny_lm), "--dataset", "support@0", "--metrics", "rouge_l", "--max-examples", "2",
            "--baseline", "none", "--store", str(train_store), "--out", str(tmp_path / "eval")]  # fmt: skip
    out = _python(f"sys.argv = ['curate', *{args!r}]\nfrom curate.cli import main\nmain()", block=["rouge_score"])
    assert out.returncode == 1, out.stderr[-2000:]
    assert "`curate eval` needs the `eval` extra (rouge_score not installed); install it with: pip install 'curate[eval]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unrelated_missing_module_is_not_blamed_on_an_extra() -> None:
    try:
        import curate_no_such_module  # noqa: F401
    except ModuleNotFoundError as exc:
        assert missing_extra(exc, command="train") is None
