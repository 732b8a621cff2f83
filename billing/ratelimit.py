"""Rate limits: a token bucket per key in Redis, checked and charged by one atomic Lua script.

Rate limits are about abuse, never about money (that is the quota's job). Every process shares
the buckets through Redis, and the clock is Redis's own (``TIME`` inside the script): web
processes on different hosts with skewed clocks cannot refill a bucket early. One round trip:
``EVALSHA``, falling back to ``EVAL`` once when Redis has not seen the script (a restart).

The client's IP address comes from the socket peer; ``X-Forwarded-For`` is believed only for the
hops added by proxies listed in ``TRUSTED_PROXIES`` (walking from the right), so a client cannot
pick the address it is limited under.
"""

from __future__ import annotations

import functools
import ipaddress
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.http import HttpRequest

KEY_PREFIX = "rl:"
SOCKET_TIMEOUT_S = 30

# KEYS[1] the bucket; ARGV: refill per second, capacity, cost. Returns allowed (0/1), the wait
# until ``cost`` tokens are there (as a string: Lua numbers become integers), tokens left.
BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
    tokens = tokens - cost
    allowed = 1
else
    wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(wait), math.floor(tokens)}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: float  # seconds until the request would be allowed; 0 when allowed
    remaining: int  # whole requests left in the bucket after this one
    limit: int  # the bucket's capacity (the burst)


@functools.cache
def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S)


@functools.cache
def bucket_script(url: str) -> Any:
    # redis-py's Script sends EVALSHA and falls back to EVAL (loading it) on NOSCRIPT.
    return redis_client(url).register_script(BUCKET_LUA)


def bucket_args(rate_per_minute: int, burst: int | None, cost: int) -> list[float] | None:
    """The script's arguments, or None when the rate means no limit (Redis is not asked)."""
    capacity = burst if burst is not None else rate_per_minute
    if rate_per_minute <= 0:
        return None
    if not 1 <= cost <= capacity:
        raise ValueError(f"cost must be between 1 and the burst ({capacity}), not {cost}")
    return [rate_per_minute / 60, capacity, cost]


def decision_of(result: Any, capacity: int) -> RateDecision:
    allowed, wait, remaining = result
    return RateDecision(
        allowed=bool(allowed), retry_after=float(wait), remaining=int(remaining), limit=capacity
    )


def unlimited(capacity: int) -> RateDecision:
    return RateDecision(allowed=True, retry_after=0.0, remaining=capacity, limit=capacity)


def rate_limit_hit(
    *, key: str, rate_per_minute: int, burst: int | None = None, cost: int = 1
) -> RateDecision:
    """Take ``cost`` tokens from the bucket ``key`` (refilled at ``rate_per_minute``).

    ``burst`` is the bucket's capacity (default: one minute's worth). A rate of 0 or less means
    no limit, and Redis is not asked.
    """
    capacity = burst if burst is not None else rate_per_minute
    args = bucket_args(rate_per_minute, burst, cost)
    if args is None:
        return unlimited(capacity)
    script = bucket_script(settings.REDIS_URL)
    return decision_of(script(keys=[KEY_PREFIX + key], args=args), capacity)


_async_scripts: weakref.WeakKeyDictionary[aioredis.Redis, Any] = weakref.WeakKeyDictionary()


async def rate_limit_hit_async(
    *, client: aioredis.Redis, key: str, rate_per_minute: int, burst: int | None = None
) -> RateDecision:
    """``rate_limit_hit`` on the event loop, through the caller's async client.

    The chat's turns check their limit here rather than in a database thread: the thread pool
    is what new turns queue for under load, and a Redis round trip needs no thread.
    """
    capacity = burst if burst is not None else rate_per_minute
    args = bucket_args(rate_per_minute, burst, 1)
    if args is None:
        return unlimited(capacity)
    script = _async_scripts.get(client)
    if script is None:
        script = _async_scripts[client] = client.register_script(BUCKET_LUA)
    return decision_of(await script(keys=[KEY_PREFIX + key], args=args), capacity)


def rate_limit_peek(*, key: str, rate_per_minute: int, burst: int | None = None) -> RateDecision:
    """The bucket's state without taking from it (for showing it to the user)."""
    capacity = burst if burst is not None else rate_per_minute
    if rate_per_minute <= 0:
        return unlimited(capacity)
    tokens, at = redis_client(settings.REDIS_URL).hmget(KEY_PREFIX + key, ["tokens", "at"])
    if tokens is None or at is None:
        return unlimited(capacity)
    now = redis_now()
    level = min(capacity, float(tokens) + max(0.0, now - float(at)) * rate_per_minute / 60)
    wait = 0.0 if level >= 1 else (1 - level) / (rate_per_minute / 60)
    return RateDecision(allowed=level >= 1, retry_after=wait, remaining=int(level), limit=capacity)


def redis_now() -> float:
    seconds, micros = redis_client(settings.REDIS_URL).time()
    return float(seconds) + micros / 1_000_000


# --- Client IP ------------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def trusted_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def parsed_address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_ip_from(peer: str, forwarded_for: Iterable[str]) -> str:
    """The address of the first hop, from the right, that is not a trusted proxy."""
    networks = trusted_networks(tuple(settings.TRUSTED_PROXIES))
    current = parsed_address(peer)
    if current is None:
        return peer
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    while hops and any(current in network for network in networks):
        hop = parsed_address(hops.pop())
        if hop is None:  # garbage from beyond the proxy: the proxy is all we know
            break
        current = hop
    return str(current)


def client_ip(request: HttpRequest | Mapping[str, Any]) -> str:
    """The client's IP address of a Django request or an ASGI scope (websockets)."""
    if isinstance(request, HttpRequest):
        peer = str(request.META.get("REMOTE_ADDR") or "")
        header = request.META.get("HTTP_X_FORWARDED_FOR")
        return client_ip_from(peer, [header] if header else [])
    client = request.get("client") or ("", 0)
    headers = [
        value.decode("latin-1")
        for name, value in request.get("headers", [])
        if name.lower() == b"x-forwarded-for"
    ]
    return client_ip_from(str(client[0]), headers)
