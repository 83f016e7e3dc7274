"""Encoders built locally from a sentence-transformers model, once, into a cache folder.

* ``static``: a model2vec static-embedding model distilled from the source model (its vocabulary goes
  through the local model: no network). About 30 s for MiniLM on 2 cores; 15 MB.
* ``onnx``: the source model's transformer exported to ONNX (``torch.onnx``, TorchScript exporter) and
  dynamically quantised to int8 weights (``onnxruntime.quantization``).

Each build is written to a temporary folder next to its final one and renamed into place, so an
interrupted build leaves nothing that looks finished; two concurrent builders both finish and the
first rename wins. ``provenance.json`` in the folder records what the build came from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from curate.extras import require_extra

__all__ = ["build", "build_key", "user_cache_dir"]

log = logging.getLogger(__name__)

STATIC_PCA_DIMS = 256  # model2vec's default; 384 -> 256 loses nothing measurable on the dedup bench


def user_cache_dir() -> Path:
    """Where encoders are built when no store is given: ``~/.cache/curate/encoders``."""
    return Path.home() / ".cache" / "curate" / "encoders"


def build_key(kind: str, source_key: str) -> str:
    """Folder name of a build: its kind, the source model's cache key and the builder's version."""
    if kind == "static":
        return f"static-{source_key}-pca{STATIC_PCA_DIMS}-model2vec{version('model2vec')}"
    return f"onnx-int8-{source_key}-onnxruntime{version('onnxruntime')}"


def build(kind: str, source: str, *, source_key: str, folder: Path) -> tuple[Path, dict[str, Any]]:
    """Path and provenance of the ``kind`` build of ``source`` under ``folder``; built first if absent."""
    if kind == "onnx":
        require_extra("onnx", what="The `onnx` encoder")
    final = folder / build_key(kind, source_key)
    if (final / "provenance.json").is_file():
        return final, json.loads((final / "provenance.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    log.info("Building the %s encoder from %s into %s (once).", kind, source, final)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{final.name}-"))
    try:
        t0 = time.perf_counter()
        details = _distill(source, tmp) if kind == "static" else _export_onnx(source, tmp)
        provenance = {
            "encoder": kind,
            "source_model": source,
            "source_sha256": _weights_sha256(Path(source)),
            **details,
            "build_seconds": round(time.perf_counter() - t0, 2),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1))
        try:
            tmp.rename(final)
        except OSError:  # another builder finished first: use its build
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, json.loads((final / "provenance.json").read_text())


def _weights_sha256(path: Path) -> str | None:
    """sha256 of the source model's weights file (``model.safetensors``); ``None`` for a hub id."""
    weights = path / "model.safetensors"
    if not weights.is_file():
        return None
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _distill(source: str, out: Path) -> dict[str, Any]:
    from model2vec.distill import distill

    model = distill(model_name=source, pca_dims=STATIC_PCA_DIMS)
    model.save_pretrained(out)
    return {"model2vec_version": version("model2vec"), "pca_dims": STATIC_PCA_DIMS, "vocabulary": len(model.tokens)}


def _export_onnx(source: str, out: Path) -> dict[str, Any]:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source, attn_implementation="eager").eval()  # sdpa traces its mask away
    _HiddenStates = _hidden_states_module(torch)  # noqa: N806
    sample = tokenizer(["an example sentence", "another one"], return_tensors="pt", padding=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"last_hidden_state": {0: "batch", 1: "tokens"}}
    with torch.no_grad():
        torch.onnx.export(
            _HiddenStates(model), tuple(sample[n] for n in names), str(out / "model.onnx"),
            input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    quantize_dynamic(out / "model.onnx", out / "model_int8.onnx", weight_type=QuantType.QInt8)
    (out / "model.onnx").unlink()
    tokenizer.save_pretrained(out)
    config = Path(source) / "sentence_bert_config.json"
    max_seq_length = json.loads(config.read_text()).get("max_seq_length", 256) if config.is_file() else 256
    return {"onnxruntime_version": version("onnxruntime"), "quantisation": "dynamic int8 (QInt8 weights)",
            "torch_version": version("torch"), "max_seq_length": max_seq_length}  # fmt: skip


def _hidden_states_module(torch: Any) -> Any:
    class HiddenStates(torch.nn.Module):
        """The transformer called with keyword inputs (its positional order changes between versions)."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              return_dict=True).last_hidden_state  # fmt: skip

    return HiddenStates
