"""The Redis token bucket and the client IP it is keyed on."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest
from django.test import RequestFactory

from billing.exceptions import RateLimited
from billing.ratelimit import (
    client_ip,
    rate_limit_hit,
    rate_limit_hit_async,
    rate_limit_peek,
    redis_client,
)
from billing.services import client_admit
from conftest import PROJECT_DIR, worker_env


def fresh_key() -> str:
    return f"test:{uuid.uuid4().hex}"


def test_a_bucket_allows_its_burst_then_refuses_with_a_retry_after() -> None:
    key = fresh_key()
    decisions = [rate_limit_hit(key=key, rate_per_minute=60, burst=3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert 0.5 < decisions[3].retry_after <= 1.0  # one token a second
    assert decisions[3].limit == 3


def test_a_bucket_refills_with_time_from_redis() -> None:
    key = fresh_key()
    assert rate_limit_hit(key=key, rate_per_minute=60, burst=1).allowed
    # Age the bucket by two seconds on Redis's own clock: the script never reads the client's.
    client = redis_client_for_test()
    client.hset(f"rl:{key}", "at", str(float(client.hget(f"rl:{key}", "at") or 0) - 2))
    assert rate_limit_hit(key=key, rate_per_minute=60, burst=1).allowed


def test_a_cost_takes_that_many_tokens_and_a_zero_rate_is_unlimited() -> None:
    key = fresh_key()
    assert rate_limit_hit(key=key, rate_per_minute=60, burst=5, cost=5).remaining == 0
    assert not rate_limit_hit(key=key, rate_per_minute=60, burst=5).allowed
    assert all(rate_limit_hit(key=key, rate_per_minute=0).allowed for _ in range(100))
    with pytest.raises(ValueError):
        rate_limit_hit(key=key, rate_per_minute=60, burst=5, cost=6)


def test_the_script_is_reloaded_after_redis_forgets_it() -> None:
    key = fresh_key()
    redis_client_for_test().script_flush()
    assert rate_limit_hit(key=key, rate_per_minute=60, burst=2).allowed
    assert rate_limit_peek(key=key, rate_per_minute=60, burst=2).remaining == 1


@pytest.mark.asyncio
async def test_the_event_loop_check_takes_from_the_same_bucket_and_survives_a_script_flush():
    from conversations import streams

    key = fresh_key()
    client = streams.async_client()
    assert rate_limit_hit(key=key, rate_per_minute=60, burst=3).allowed  # the sync path
    redis_client_for_test().script_flush()  # Redis restarted: EVALSHA fails, EVAL reloads
    first = await rate_limit_hit_async(client=client, key=key, rate_per_minute=60, burst=3)
    second = await rate_limit_hit_async(client=client, key=key, rate_per_minute=60, burst=3)
    third = await rate_limit_hit_async(client=client, key=key, rate_per_minute=60, burst=3)
    assert [first.remaining, second.remaining] == [1, 0]
    assert not third.allowed and 0.5 < third.retry_after <= 1.0
    assert rate_limit_peek(key=key, rate_per_minute=60, burst=3).remaining == 0
    unlimited = await rate_limit_hit_async(client=client, key=key, rate_per_minute=0)
    assert unlimited.allowed


CHILD = """
import django, sys
django.setup()
from billing.exceptions import RateLimited
from billing.ratelimit import rate_limit_hit
allowed = [rate_limit_hit(key=sys.argv[1], rate_per_minute=1, burst=10).allowed for _ in range(6)]
print(sum(allowed))
"""


@pytest.mark.django_db
def test_two_processes_share_one_bucket() -> None:
    key = fresh_key()
    parent = [rate_limit_hit(key=key, rate_per_minute=1, burst=10).allowed for _ in range(6)]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, key],
        cwd=PROJECT_DIR,
        env={**worker_env(), "DJANGO_SETTINGS_MODULE": "chatbot.settings_test"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert sum(parent) == 6
    assert child.stdout.strip().splitlines()[-1] == "4"  # 10 tokens in all, whoever takes them


def redis_client_for_test() -> Any:
    from django.conf import settings

    return redis_client(settings.REDIS_URL)


def test_x_forwarded_for_from_an_untrusted_client_is_ignored(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(request) == "203.0.113.7"


def test_x_forwarded_for_is_walked_from_the_right_through_trusted_proxies(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.168.1.1"]
    # The client forged "1.2.3.4"; the outer proxy appended the real peer 198.51.100.9.
    forwarded = "1.2.3.4, 198.51.100.9, 192.168.1.1"
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == "198.51.100.9"


def test_with_no_trusted_proxies_the_peer_is_the_client(settings: Any) -> None:
    settings.TRUSTED_PROXIES = []
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(request) == "10.0.0.5"


def test_garbage_in_x_forwarded_for_stops_the_walk_at_the_proxy(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(request) == "10.0.0.5"


def test_an_asgi_scope_gives_the_client_ip_the_same_way(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1/32", "::1"]
    scope = {
        "client": ("127.0.0.1", 5555),
        "headers": [(b"x-forwarded-for", b"9.9.9.9, [2001:db8::1]:443")],
    }
    assert client_ip(scope) == "2001:db8::1"
    untrusted = {"client": ("203.0.113.7", 1), "headers": [(b"x-forwarded-for", b"9.9.9.9")]}
    assert client_ip(untrusted) == "203.0.113.7"


def test_anonymous_requests_are_limited_per_client_ip(settings: Any) -> None:
    settings.ANON_REQUESTS_PER_MINUTE = 2
    ip = f"anon-test-{uuid.uuid4().hex}"  # a fresh bucket
    client_admit(ip=ip)
    client_admit(ip=ip)
    with pytest.raises(RateLimited) as refused:
        client_admit(ip=ip)
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
