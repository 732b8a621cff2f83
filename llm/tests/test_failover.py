"""Failover between two fake OpenAI-compatible servers, with the breaker in the real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from django.conf import settings

from llm.chat import Served
from llm.circuit_breaker import Admission, BreakerConfig, CircuitBreaker
from llm.exceptions import ProvidersUnavailable
from llm.failover import FailoverConfig, FailoverProvider
from llm.fake_server import RunningFakeServer, token_text
from llm.openai_compatible import OpenAICompatibleProvider
from llm.provider_config import Target
from llm.tests.streaming import chat

pytestmark = pytest.mark.asyncio


def tokens(count: int) -> str:
    return "".join(token_text(n) for n in range(1, count + 1))


class Pair:
    """A failover provider over "primary" and "backup" (unique names: breakers are shared)."""

    def __init__(self, primary: RunningFakeServer, backup: RunningFakeServer, **config) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.primary, self.backup = f"primary-{suffix}", f"backup-{suffix}"
        self.breaker = CircuitBreaker(
            settings.REDIS_URL, BreakerConfig(threshold=2, window_s=30, cooldown_s=30)
        )
        self.provider = FailoverProvider(
            {
                self.primary: OpenAICompatibleProvider(primary.base_url, None, name=self.primary),
                self.backup: OpenAICompatibleProvider(backup.base_url, None, name=self.backup),
            },
            {
                "fake-model": [
                    Target(self.primary, "fake-model"),
                    Target(self.backup, "backup-model"),
                ]
            },
            breaker=self.breaker,
            config=FailoverConfig(**{"first_token_timeout": 1, "retry_after_max": 1, **config}),
        )


@pytest_asyncio.fixture
async def pair(fake_server, backup_server) -> AsyncIterator[Pair]:
    pair = Pair(fake_server, backup_server)
    yield pair
    await pair.provider.aclose()


async def test_a_healthy_primary_answers_and_says_so(pair):
    outcome = await chat(pair.provider)

    assert outcome.error is None
    assert outcome.served == Served(pair.primary, "fake-model")
    assert outcome.text == tokens(20)


async def test_a_429_moves_on_to_the_fallback_and_the_primary_rests(
    pair, fake_server, backup_server
):
    fake_server.set_override(fail="429", retry_after=30)
    backup_requests = backup_server.state.stats.requests

    started = time.monotonic()
    outcome = await chat(pair.provider)

    assert outcome.error is None
    assert outcome.served == Served(pair.backup, "backup-model")
    assert outcome.text == tokens(5)
    assert time.monotonic() - started < 1  # a Retry-After beyond the bound is not waited for
    assert backup_server.state.stats.requests == backup_requests + 1
    # Retry-After is honoured: the next turn does not even ask the primary.
    primary_requests = fake_server.state.stats.requests
    assert (await chat(pair.provider)).served == Served(pair.backup, "backup-model")
    assert fake_server.state.stats.requests == primary_requests


async def test_a_short_retry_after_is_waited_for_when_nothing_else_answers(
    pair, fake_server, backup_server
):
    fake_server.set_override(fail="429", retry_after=0.4)
    backup_server.set_override(fail="500")

    started = time.monotonic()
    outcome = await chat(pair.provider)

    assert outcome.error is None
    assert outcome.served == Served(pair.primary, "fake-model")
    assert time.monotonic() - started >= 0.4  # not sooner than the provider asked


async def test_a_500_on_every_provider_is_a_polite_unavailable_error(
    pair, fake_server, backup_server
):
    fake_server.set_override(fail="500")
    backup_server.set_override(fail="500")

    outcome = await chat(pair.provider)

    assert outcome.deltas == []
    assert isinstance(outcome.error, ProvidersUnavailable)
    assert outcome.error.retryable
    assert "try again" in str(outcome.error)
    assert "HTTP 500" not in str(outcome.error)  # provider details go to the logs, not users
    assert len(outcome.error.attempts) == 2


async def test_a_reset_after_the_first_tokens_is_not_retried_elsewhere(
    pair, fake_server, backup_server
):
    fake_server.set_override(fail="reset", fail_after=4)
    backup_requests = backup_server.state.stats.requests

    outcome = await chat(pair.provider)

    assert outcome.text == tokens(4)  # the partial answer, nothing appended to it
    assert outcome.error is not None and outcome.error.code == "connection"
    assert backup_server.state.stats.requests == backup_requests


async def test_a_stall_before_the_first_token_moves_on_after_the_timeout(
    pair, fake_server, backup_server
):
    fake_server.set_override(fail="stall", fail_after=0)

    started = time.monotonic()
    outcome = await chat(pair.provider)

    assert outcome.served == Served(pair.backup, "backup-model")
    assert outcome.text == tokens(5)
    assert 1 <= time.monotonic() - started < 3


async def test_repeated_failures_open_the_breaker_and_the_primary_is_skipped(
    pair, fake_server, backup_server
):
    fake_server.set_override(count=2, fail="500")
    await chat(pair.provider)
    await chat(pair.provider)  # the second failure opens the primary's breaker
    primary_requests = fake_server.state.stats.requests

    outcome = await chat(pair.provider)

    assert outcome.served == Served(pair.backup, "backup-model")
    assert fake_server.state.stats.requests == primary_requests
    assert await pair.breaker.allow(pair.primary) is Admission.REFUSED


async def test_a_successful_probe_closes_the_breaker(fake_server, backup_server):
    pair = Pair(fake_server, backup_server)
    pair.breaker.config = BreakerConfig(threshold=1, window_s=30, cooldown_s=0.2)
    try:
        fake_server.set_override(fail="500")
        await chat(pair.provider)
        assert await pair.breaker.is_open(pair.primary)
        await asyncio.sleep(0.25)

        outcome = await chat(pair.provider)  # the probe

        assert outcome.served == Served(pair.primary, "fake-model")
        assert await pair.breaker.allow(pair.primary) is Admission.ALLOWED
    finally:
        await pair.provider.aclose()


async def test_a_non_retryable_error_is_not_hidden_by_a_fallback(fake_server, backup_server):
    wrong_path = OpenAICompatibleProvider(fake_server.base_url + "/missing", None, name="wrong")
    backup = OpenAICompatibleProvider(backup_server.base_url, None, name="other")
    provider = FailoverProvider(
        {"wrong": wrong_path, "other": backup},
        {"fake-model": [Target("wrong", "fake-model"), Target("other", "fake-model")]},
        breaker=None,
        config=FailoverConfig(),
    )
    backup_requests = backup_server.state.stats.requests
    try:
        outcome = await chat(provider)
    finally:
        await provider.aclose()

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.retryable) == ("not_found", False)
    assert backup_server.state.stats.requests == backup_requests


async def test_a_model_without_fallbacks_goes_to_the_first_provider(pair):
    outcome = await chat(pair.provider, model="another-model")

    assert outcome.served == Served(pair.primary, "another-model")


async def test_with_every_breaker_open_no_provider_is_even_asked(pair, fake_server, backup_server):
    for name in (pair.primary, pair.backup):
        await pair.breaker.failure(name)
        await pair.breaker.failure(name)
    requests = fake_server.state.stats.requests + backup_server.state.stats.requests

    outcome = await chat(pair.provider)

    assert isinstance(outcome.error, ProvidersUnavailable)
    assert fake_server.state.stats.requests + backup_server.state.stats.requests == requests
