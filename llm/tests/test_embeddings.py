"""Embedding providers: MiniLM quality and shape, the OpenAI-compatible provider, the registry."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from llm.embeddings import EmbeddingProvider, OpenAIEmbeddingProvider, embedding_provider
from llm.exceptions import ProviderError
from llm.fake_server import RunningFakeServer
from llm.minilm import MiniLMProvider


@pytest.fixture(scope="module")
def minilm() -> MiniLMProvider:
    return MiniLMProvider(threads=1, batch_size=4)


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def test_minilm_ranks_a_paraphrase_above_unrelated_text(minilm: MiniLMProvider) -> None:
    query, paraphrase, unrelated, other_pair = minilm.embed(
        [
            "How do I reset my password?",
            "Steps to change your account password",
            "Quarterly revenue grew by twelve percent.",
            "A kitten is sleeping on the sofa.",
        ]
    )
    cat = minilm.embed(["The cat naps on the couch."])[0]
    assert cosine(query, paraphrase) > 0.6
    assert cosine(query, unrelated) < 0.2
    assert cosine(cat, other_pair) > cosine(cat, unrelated) + 0.4


def test_minilm_vectors_are_unit_length_384_floats_in_input_order(minilm: MiniLMProvider) -> None:
    texts = ["short", "a much longer sentence " * 20, "medium length text here", "x", "end"]
    together = minilm.embed(texts)  # sorted by length and batched by 4 inside
    alone = [minilm.embed([text])[0] for text in texts]
    assert all(len(v) == 384 for v in together)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=1e-4)  # padding does not change a vector


def test_minilm_counts_tokens_without_special_tokens_and_truncates_long_text(
    minilm: MiniLMProvider,
) -> None:
    assert minilm.count_tokens("hello") == 1
    assert minilm.count_tokens("Tokenization") == 2  # token ##ization
    long_text = "word " * 1000
    assert minilm.count_tokens(long_text) == 1000
    assert minilm.max_tokens == 254  # 256 minus [CLS] and [SEP]
    first = minilm.embed([long_text])[0]
    assert np.allclose(first, minilm.embed(["word " * 300])[0], atol=1e-4)  # read up to 256


@pytest.fixture
def openai_embeddings(fake_server: RunningFakeServer) -> OpenAIEmbeddingProvider:
    return OpenAIEmbeddingProvider(
        fake_server.base_url, "test-key", model="fake-embedding", dimensions=384, batch_size=2,
        max_retries=0,
    )  # fmt: skip


def test_openai_provider_embeds_in_batches_and_keeps_order(
    openai_embeddings: OpenAIEmbeddingProvider, fake_server: RunningFakeServer
) -> None:
    before = fake_server.state.stats.embedding_requests
    texts = ["alpha beta", "gamma", "alpha beta", "delta epsilon zeta"]
    vectors = openai_embeddings.embed(texts)
    assert fake_server.state.stats.embedding_requests - before == 2
    assert vectors[0] == vectors[2] != vectors[1]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert openai_embeddings.embed_query("gamma") == vectors[1]  # one request, the same model
    assert fake_server.state.stats.embedding_requests - before == 3


def test_openai_provider_maps_a_bad_request_to_a_permanent_provider_error(
    fake_server: RunningFakeServer,
) -> None:
    provider = OpenAIEmbeddingProvider(
        fake_server.base_url, "k", model="fake-embedding", dimensions=20000, max_retries=0
    )
    with pytest.raises(ProviderError) as error:
        provider.embed(["text"])
    assert error.value.code == "bad_request"
    assert error.value.retryable is False
    assert "dimensions" in error.value.message


def test_openai_provider_maps_a_refused_connection_to_a_retryable_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAIEmbeddingProvider(
        f"http://127.0.0.1:{port}/v1", "k", model="m", dimensions=384, max_retries=0
    )
    with pytest.raises(ProviderError) as error:
        provider.embed(["text"])
    assert error.value.code == "connection"
    assert error.value.retryable is True


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    embedding_provider.cache_clear()
    yield
    embedding_provider.cache_clear()


def test_the_default_provider_is_minilm_built_once(fresh_registry: None, settings: Any) -> None:
    settings.EMBEDDING_PROVIDER = "minilm"
    provider: EmbeddingProvider = embedding_provider()
    assert provider.name == "minilm"
    assert provider.dimensions == settings.EMBEDDING_DIMENSIONS == 384
    assert embedding_provider() is provider


def test_settings_select_the_openai_provider_with_the_chat_server_by_default(
    fresh_registry: None, settings: Any, fake_server: RunningFakeServer
) -> None:
    settings.OPENAI_BASE_URL = fake_server.base_url
    settings.EMBEDDING_BASE_URL = ""
    settings.EMBEDDING_PROVIDER = "openai"
    provider = embedding_provider()
    assert provider.name == "openai"
    assert len(provider.embed(["hello"])[0]) == 384


def test_a_provider_whose_vectors_do_not_fit_the_column_is_refused(
    fresh_registry: None, settings: Any
) -> None:
    settings.EMBEDDING_PROVIDER = "minilm"
    settings.EMBEDDING_DIMENSIONS = 768
    with pytest.raises(ValueError, match=r"reindex|768"):
        embedding_provider()
