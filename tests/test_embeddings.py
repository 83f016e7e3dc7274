"""The three encoders of curate.embeddings (static, onnx, minilm), built from the bundled MiniLM."""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from curate import _encoder_builds, _encoders
from curate.embeddings import ENCODERS, default_model, embed, encoder_of

TEXTS = ["where is my card", "my card has not arrived yet", "has my card arrived", "I want to close my account"]


def _long_document(tail: str) -> str:
    """About 700 word pieces: far past MiniLM's 256-token window; ``tail`` starts near token 450."""
    head = " ".join(f"The refund for order {i} was approved by the billing team on day {i}." for i in range(30))
    return f"{head} {tail}"


def test_static_encoder_is_distilled_from_the_bundled_minilm_with_its_provenance(encoders):
    provenance = encoders["static"].provenance
    weights = Path(default_model()) / "model.safetensors"
    # builds are shared by every install of the same weights (keyed by their hash), so the recorded
    # path may be another virtualenv's copy of the bundled model
    assert Path(provenance["source_model"]).parts[-2:] == Path(default_model()).parts[-2:]
    assert provenance["source_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert provenance["model2vec_version"] == version("model2vec")
    assert provenance["pca_dims"] == 256
    assert embed(TEXTS[:1], encoder="static").shape == (1, 256)
    assert encoders["onnx"].provenance["quantisation"].startswith("dynamic int8")


def test_a_built_encoder_is_reused_not_built_again(encoders, tmp_path, monkeypatch):
    built = encoders["static"].path
    shutil.copytree(built, tmp_path / built.name)

    def no_build(*args: object) -> None:
        raise AssertionError("the static encoder was distilled again although its build is cached")

    monkeypatch.setattr(_encoder_builds, "_distill", no_build)
    again = encoder_of("static", models_dir=tmp_path)
    assert again.path == tmp_path / built.name
    assert again.provenance == json.loads((built / "provenance.json").read_text())


def test_an_interrupted_build_leaves_nothing_that_looks_built(tmp_path, monkeypatch):
    def interrupted(source: str, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(_encoder_builds, "_distill", interrupted)
    _encoders._encoder.cache_clear()
    with pytest.raises(KeyboardInterrupt):
        encoder_of("static", models_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ENCODERS)
def test_identical_texts_embed_identically(encoders, name):
    alone = embed([TEXTS[1]], encoder=name)
    among = embed([TEXTS[0], TEXTS[1], TEXTS[2], TEXTS[1]], encoder=name)
    np.testing.assert_array_equal(among[1], among[3])
    np.testing.assert_allclose(among[1], alone[0], atol=1e-5)  # other texts in the batch change nothing
    np.testing.assert_allclose(np.linalg.norm(among, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ENCODERS)
def test_a_document_longer_than_the_window_is_embedded_from_all_its_chunks(encoders, name):
    tail_a = "Customers can cancel a subscription from the account page at any time."
    tail_b = "The weather in the mountains was cold and the hikers carried extra blankets."
    a, b, head = embed([_long_document(tail_a), _long_document(tail_b), _long_document("")], encoder=name)
    assert float(a @ b) < 0.999, "only the tail differs, past the window: it must still count"
    assert float(a @ head) > 0.9  # the head is most of the document


def test_encoders_cache_their_vectors_in_separate_folders(encoders, tmp_path):
    vectors = {name: embed(TEXTS, encoder=name, cache_dir=tmp_path) for name in ENCODERS}
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert folders == sorted(encoders[name].key for name in ENCODERS) and len(set(folders)) == 3
    assert vectors["static"].shape == (4, 256) and vectors["minilm"].shape == vectors["onnx"].shape == (4, 384)
    for name in ENCODERS:  # read back from each encoder's own folder
        np.testing.assert_allclose(embed(TEXTS, encoder=name, cache_dir=tmp_path), vectors[name], atol=1e-6)


def test_onnx_int8_stays_close_to_minilm(encoders):
    onnx, minilm = embed(TEXTS, encoder="onnx"), embed(TEXTS, encoder="minilm")
    assert np.einsum("ij,ij->i", onnx, minilm).min() > 0.95
