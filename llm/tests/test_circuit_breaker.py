"""The circuit breaker in the real Redis, shared across processes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from django.conf import settings

from llm.circuit_breaker import Admission, BreakerConfig, CircuitBreaker

PROJECT_DIR = Path(__file__).resolve().parents[2]
FAST = BreakerConfig(threshold=3, window_s=5, cooldown_s=0.3, probe_ttl_s=5)
# Across processes the cool-down must outlast starting a Python process on a busy machine.
SHARED = BreakerConfig(threshold=3, window_s=10, cooldown_s=2.5, probe_ttl_s=20)

pytestmark = pytest.mark.asyncio


@pytest.fixture
def provider_name() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture
async def breaker() -> AsyncIterator[CircuitBreaker]:
    breaker = CircuitBreaker(settings.REDIS_URL, FAST)
    yield breaker
    await breaker.aclose()


def in_other_process(provider: str, *actions: str) -> list[int]:
    """Run breaker actions ("allow", "failure", "probe_failure", "success") in a new process."""
    script = """
import asyncio, json, sys
from llm.circuit_breaker import BreakerConfig, CircuitBreaker
url, provider, config, actions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
async def main():
    breaker = CircuitBreaker(url, BreakerConfig(**config))
    out = []
    for action in actions:
        if action == "allow":
            out.append(int(await breaker.allow(provider)))
        elif action == "failure":
            out.append(int(await breaker.failure(provider)))
        elif action == "probe_failure":
            out.append(int(await breaker.failure(provider, probe=True)))
        else:
            await breaker.success(provider)
            out.append(-1)
    await breaker.aclose()
    print(json.dumps(out))
asyncio.run(main())
"""
    config = json.dumps(dataclasses.asdict(SHARED))
    done = subprocess.run(
        [sys.executable, "-c", script, settings.REDIS_URL, provider, config, *actions],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


async def test_a_closed_breaker_lets_requests_through(breaker, provider_name):
    assert await breaker.allow(provider_name) is Admission.ALLOWED


async def test_it_opens_after_threshold_failures_within_the_window(breaker, provider_name):
    assert await breaker.failure(provider_name) is False
    assert await breaker.failure(provider_name) is False
    assert await breaker.allow(provider_name) is Admission.ALLOWED

    assert await breaker.failure(provider_name) is True
    assert await breaker.allow(provider_name) is Admission.REFUSED
    assert await breaker.is_open(provider_name)


async def test_failures_spread_over_more_than_the_window_do_not_open_it(provider_name):
    breaker = CircuitBreaker(settings.REDIS_URL, BreakerConfig(threshold=2, window_s=0.2))
    try:
        await breaker.failure(provider_name)
        await asyncio.sleep(0.3)
        assert await breaker.failure(provider_name) is False
        assert await breaker.allow(provider_name) is Admission.ALLOWED
    finally:
        await breaker.aclose()


async def test_after_the_cooldown_exactly_one_probe_goes_through(breaker, provider_name):
    for _ in range(3):
        await breaker.failure(provider_name)
    await asyncio.sleep(0.35)

    decisions = await asyncio.gather(*(breaker.allow(provider_name) for _ in range(20)))

    assert decisions.count(Admission.PROBE) == 1
    assert decisions.count(Admission.REFUSED) == 19


async def test_a_failed_probe_opens_it_again_and_a_good_one_closes_it(breaker, provider_name):
    for _ in range(3):
        await breaker.failure(provider_name)
    await asyncio.sleep(0.35)
    assert await breaker.allow(provider_name) is Admission.PROBE
    assert await breaker.failure(provider_name, probe=True) is True
    assert await breaker.allow(provider_name) is Admission.REFUSED

    await asyncio.sleep(0.35)
    assert await breaker.allow(provider_name) is Admission.PROBE
    await breaker.success(provider_name)

    assert await breaker.allow(provider_name) is Admission.ALLOWED
    assert await breaker.allow(provider_name) is Admission.ALLOWED


async def test_a_resting_provider_is_refused_until_its_retry_after(breaker, provider_name):
    await breaker.rest(provider_name, 0.2)
    assert await breaker.allow(provider_name) is Admission.REFUSED
    await asyncio.sleep(0.25)
    assert await breaker.allow(provider_name) is Admission.ALLOWED


async def test_failures_in_another_process_open_the_breaker_here(provider_name):
    breaker = CircuitBreaker(settings.REDIS_URL, SHARED)
    try:
        opened = await asyncio.to_thread(in_other_process, provider_name, *["failure"] * 3)
        assert opened == [0, 0, 1]

        assert await breaker.allow(provider_name) is Admission.REFUSED
    finally:
        await breaker.aclose()


async def test_the_probe_taken_by_another_process_is_the_only_one(provider_name):
    breaker = CircuitBreaker(settings.REDIS_URL, SHARED)
    try:
        for _ in range(3):
            await breaker.failure(provider_name)
        await asyncio.sleep(SHARED.cooldown_s + 0.05)

        # The other process takes the probe; this one is refused while the probe runs.
        assert await asyncio.to_thread(in_other_process, provider_name, "allow") == [2]
        assert await breaker.allow(provider_name) is Admission.REFUSED

        # Its probe fails: open again, here too. After the cool-down this process probes,
        # the other is refused meanwhile, and this probe's success closes it for both.
        assert await asyncio.to_thread(in_other_process, provider_name, "probe_failure") == [1]
        assert await breaker.allow(provider_name) is Admission.REFUSED
        await asyncio.sleep(SHARED.cooldown_s + 0.05)
        assert await breaker.allow(provider_name) is Admission.PROBE
        assert await asyncio.to_thread(in_other_process, provider_name, "allow") == [0]
        await breaker.success(provider_name)
        assert await asyncio.to_thread(in_other_process, provider_name, "allow") == [1]
    finally:
        await breaker.aclose()


async def test_an_unreachable_redis_lets_requests_through(provider_name):
    breaker = CircuitBreaker("redis://127.0.0.1:1/0", FAST)
    try:
        assert await breaker.allow(provider_name) is Admission.ALLOWED
        assert await breaker.failure(provider_name) is False
    finally:
        await breaker.aclose()
