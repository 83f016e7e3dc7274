"""Pipeline files are validated at load time, with errors naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.config import load_pipeline
from curate.errors import ConfigError
from curate.schema import SCHEMAS_DIR, generate_schemas


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_field_value_names_line_and_field_path(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "source: {path: d.jsonl}\nstages:\n  - dedup_exact: {}\n  - split: {test: 1.5}\noutput: s\n",
    )
    with pytest.raises(ConfigError, match=r"p\.yaml, line 4, stages\[1\]\.split\.test: Input should be less than 1 \(got 1\.5\)"):
        load_pipeline(path)


def test_unknown_stage_suggests_the_close_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "source: {path: d.jsonl}\nstages:\n  - dedup_exakt: {}\noutput: s\n")
    with pytest.raises(ConfigError, match=r"line 3, stages\[0\].*Unknown stage 'dedup_exakt'\. Did you mean 'dedup_exact'"):
        load_pipeline(path)


def test_unknown_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, "source: {path: d.jsonl, formt: auto}\noutput: s\n")
    with pytest.raises(ConfigError, match=r"line 1, source\.formt: Extra inputs are not permitted"):
        load_pipeline(path)


def test_output_name_cannot_escape_the_store(tmp_path: Path) -> None:
    path = _write(tmp_path, "source: {path: d.jsonl}\noutput: ../elsewhere\n")
    with pytest.raises(ConfigError, match=r"line 2, output: .*not a valid dataset name"):
        load_pipeline(path)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "source: {path: d.jsonl\noutput: s\n")
    with pytest.raises(ConfigError, match=r"p\.yaml, line \d+, column \d+ is not valid YAML"):
        load_pipeline(path)


def test_stage_without_options_uses_defaults_and_repeats_get_ids(tmp_path: Path) -> None:
    path = _write(tmp_path, "source: {path: d.jsonl}\nstages:\n  - dedup_exact:\n  - dedup_exact: {text: user}\noutput: s\n")
    specs = load_pipeline(path).stage_specs()
    assert [s.id for s in specs] == ["dedup_exact", "dedup_exact#2"]
    assert specs[1].config.text == "user"


def test_committed_json_schemas_are_current() -> None:
    for name, schema in generate_schemas().items():
        committed = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
        assert committed == json.loads(json.dumps(schema)), f"schemas/{name} is stale: run `curate schema`"
