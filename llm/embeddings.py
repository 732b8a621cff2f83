"""Text embeddings behind one protocol: offline MiniLM by default, or any OpenAI-compatible
`/v1/embeddings` server.

`EMBEDDING_DIMENSIONS` is the size of the stored vectors: a provider whose vectors differ
is refused when built, and changing the setting needs `manage.py reindex`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.test.signals import setting_changed

from llm.exceptions import ProviderError
from llm.tokens import token_estimate


class EmbeddingProvider(Protocol):
    name: str
    dimensions: int
    max_tokens: int  # the most tokens (as count_tokens counts them) the model reads whole

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector per text, in order (batched internally)."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """A question's vector, to compare with those of ``embed`` (a provider may embed
        questions with a faster variant of its model)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` by the model's tokenizer, special tokens excluded."""
        ...


class OpenAIEmbeddingProvider:
    """Embeddings from an OpenAI-compatible server (OpenAI, Azure, vLLM, Ollama, ...).

    Without the model's tokenizer offline, `count_tokens` is a conservative estimate.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        model: str,
        dimensions: int,
        batch_size: int = 64,
        max_tokens: int = 8191,
        timeout: float = 60,
        max_retries: int = 2,
    ) -> None:
        from openai import OpenAI

        self.dimensions = dimensions
        self.max_tokens = max_tokens
        self._model = model
        self._batch_size = max(1, batch_size)
        self._client = OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=max_retries
        )

    def count_tokens(self, text: str) -> int:
        return token_estimate(text)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors += self._embed_batch(list(texts[start : start + self._batch_size]))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        import openai

        try:
            response = self._client.embeddings.create(
                model=self._model, input=texts, dimensions=self.dimensions
            )
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APITimeoutError as exc:
            raise ProviderError(f"{self.name}: timed out", code="timeout", retryable=True) from exc
        except openai.APIConnectionError as exc:
            message = f"{self.name}: {exc}"
            raise ProviderError(message, code="connection", retryable=True) from exc
        return self._vectors(response, len(texts))

    def _vectors(self, response: Any, expected: int) -> list[list[float]]:
        data = sorted(response.data, key=lambda item: item.index)
        vectors = [list(item.embedding) for item in data]
        if len(vectors) != expected or any(len(v) != self.dimensions for v in vectors):
            raise ProviderError(
                f"{self.name}: expected {expected} vectors of {self.dimensions} dimensions",
                code="bad_response",
                retryable=False,
            )
        return vectors


def _status_error(exc: Any) -> ProviderError:
    from llm.openai_errors import status_error

    response = exc.response
    return status_error(
        provider="openai",
        status=response.status_code,
        body=response.content,
        headers=response.headers,
    )


@functools.cache
def embedding_provider() -> EmbeddingProvider:
    """The configured embedding provider, built once per process."""
    provider: EmbeddingProvider
    if settings.EMBEDDING_PROVIDER == "openai":
        provider = OpenAIEmbeddingProvider(
            settings.EMBEDDING_BASE_URL or settings.OPENAI_BASE_URL or "https://api.openai.com/v1",
            settings.EMBEDDING_API_KEY or settings.OPENAI_API_KEY or None,
            model=settings.EMBEDDING_MODEL,
            dimensions=settings.EMBEDDING_DIMENSIONS,
            batch_size=settings.EMBEDDING_BATCH_SIZE,
        )
    elif settings.EMBEDDING_PROVIDER == "minilm":
        from llm.minilm import MiniLMProvider

        provider = MiniLMProvider(
            threads=settings.EMBEDDING_THREADS,
            batch_size=settings.EMBEDDING_BATCH_SIZE,
            query_threads=settings.EMBEDDING_QUERY_THREADS,
            question_model_dir=(
                Path(settings.EMBEDDING_MODEL_DIR) if settings.EMBEDDING_QUESTION_INT8 else None
            ),
        )
    else:
        raise ValueError(
            f"EMBEDDING_PROVIDER must be minilm or openai, not {settings.EMBEDDING_PROVIDER!r}"
        )
    if provider.dimensions != settings.EMBEDDING_DIMENSIONS:
        raise ValueError(
            f"{provider.name} gives {provider.dimensions}-dimensional vectors but "
            f"EMBEDDING_DIMENSIONS is {settings.EMBEDDING_DIMENSIONS}"
        )
    return provider


_SETTINGS = frozenset(
    {"EMBEDDING_PROVIDER", "EMBEDDING_MODEL", "EMBEDDING_DIMENSIONS", "EMBEDDING_BATCH_SIZE",
     "EMBEDDING_THREADS", "EMBEDDING_QUERY_THREADS", "EMBEDDING_QUESTION_INT8",
     "EMBEDDING_MODEL_DIR", "EMBEDDING_BASE_URL", "EMBEDDING_API_KEY",
     "OPENAI_BASE_URL", "OPENAI_API_KEY"}
)  # fmt: skip


def reset_on_settings_change(*, setting: str, **kwargs: object) -> None:
    if setting in _SETTINGS:
        embedding_provider.cache_clear()


setting_changed.connect(reset_on_settings_change)
