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


def test_a_key_given_twice_names_the_field_and_both_lines(tmp_path: Path) -> None:
    anchored = _write(  # an anchor reused, and a merge key overridden, are not duplicates
        tmp_path,
        "stages:\n  - split: &d {test: 0.2, seed: 3}\n  - split: {<<: *d, test: 0.1}\n"
        "source: {path: d.jsonl}\noutput: s\n",
    )
    first, second = load_pipeline(anchored).stage_specs()
    assert (first.config.test, second.config.test, second.config.seed) == (0.2, 0.1, 3)
    path = _write(
        tmp_path,
        "source: {path: d.jsonl}\nstages:\n  - dedup_exact: {}\n  - split: {test: 0.1}\n  - dedup_minhash:\n"
        "      threshold: 0.8\n      num_perm: 64\n      threshold: 0.9\noutput: s\n",
    )
    with pytest.raises(
        ConfigError,
        match=r"^\S*p\.yaml, line 8: stages\[2\]\.dedup_minhash: key 'threshold' appears twice, at lines 6 and 8; "
        "keep one",
    ):
        load_pipeline(path)


def test_a_top_level_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "output: s\nsource: {path: d.jsonl}\noutput: t\n")
    with pytest.raises(ConfigError, match=r"p\.yaml, line 3: key 'output' appears twice, at lines 1 and 3"):
        load_pipeline(path)


def test_a_file_that_is_not_utf8_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes("source: {path: d.jsonl}\n# caf\u00e9\noutput: s\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"p\.yaml, line 2: not UTF-8 text \(byte 29: invalid continuation byte\)"):
        load_pipeline(path)


@pytest.mark.parametrize(
    "nested",
    ["[" * 100_000 + "]" * 100_000, "\n" + "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "v: 1"],
    ids=["flow", "block"],
)
def test_nesting_deeper_than_any_setting_needs_is_refused_with_its_line(tmp_path: Path, nested: str) -> None:
    path = _write(tmp_path, f"source: {{path: d.jsonl}}\noutput: s\nextra: {nested}\n")
    with pytest.raises(ConfigError, match=r"p\.yaml, line \d+: nested more than 50 levels deep"):
        load_pipeline(path)


def test_an_integer_python_cannot_read_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "source: {path: d.jsonl}\nstages:\n  - split: {seed: " + "1" * 5000 + "}\noutput: s\n")
    with pytest.raises(ConfigError, match=r"p\.yaml, line 3: an integer of more than 4,300 digits"):
        load_pipeline(path)


def test_a_character_yaml_forbids_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "source: {path: d.jsonl}\nname: a\x00b\noutput: s\n")
    with pytest.raises(ConfigError, match=r"p\.yaml, line 2: YAML does not allow the character U\+0000; remove it"):
        load_pipeline(path)
