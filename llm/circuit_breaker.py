"""A circuit breaker per provider, its state in Redis so every process shares it.

Closed: requests pass; failures are counted in a fixed window (`window_s`). After `threshold`
failures the breaker opens: requests are refused for `cooldown_s`. Then it is half-open: exactly
one request (the probe) is let through, chosen atomically by a Lua script, while the others are
still refused. The probe's success closes the breaker; its failure opens it again. A probe that
never reports (its process died) frees the slot after `probe_ttl_s`.

A provider can also be told to rest (`rest`, from a 429's `Retry-After`): it is refused until
then, without counting as a failure twice.

Redis being unreachable must not take the chat down with it: the breaker then lets everything
through (fails open) and logs.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "llm:breaker:"
TRIPPED_TTL_MS = 86_400_000  # an abandoned breaker is forgotten after a day

# KEYS: rest, tripped, open, probe. ARGV: probe ttl ms.
_ALLOW = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[1]) then return 2 end
return 0
"""

# KEYS: fails, tripped, open, probe.
# ARGV: window ms, threshold, cooldown ms, was probe (0/1), tripped ttl ms.
# Returns 1 when this failure (re)opened the breaker.
_FAILURE = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  if ARGV[4] == '1' then
    redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
    redis.call('DEL', KEYS[4])
    return 1
  end
  return 0
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class Admission(IntEnum):
    """What `allow` decided: refused, a normal request, or the one half-open probe."""

    REFUSED = 0
    ALLOWED = 1
    PROBE = 2


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    threshold: int = 5  # failures within the window that open the breaker
    window_s: float = 30
    cooldown_s: float = 30  # open this long before a probe is let through
    probe_ttl_s: float = 60  # a probe that never reports frees the slot after this


class CircuitBreaker:
    """Shared per-provider breakers in the Redis at `redis_url`."""

    def __init__(self, redis_url: str, config: BreakerConfig) -> None:
        self.config = config
        self._redis_url = redis_url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]
        self._clients = weakref.WeakKeyDictionary()

    async def allow(self, provider: str) -> Admission:
        """May a request go to `provider` now? `PROBE` means: report how it went."""
        keys = _keys(provider, "rest", "tripped", "open", "probe")
        try:
            decision = await self._eval(_ALLOW, keys, _ms(self.config.probe_ttl_s))
        except RedisError:
            logger.warning("circuit breaker unavailable; letting %s through", provider)
            return Admission.ALLOWED
        return Admission(int(decision))

    async def failure(self, provider: str, *, probe: bool = False) -> bool:
        """Count a failure; True when it opened (or reopened) the breaker."""
        keys = _keys(provider, "fails", "tripped", "open", "probe")
        args = (
            _ms(self.config.window_s),
            self.config.threshold,
            _ms(self.config.cooldown_s),
            int(probe),
            TRIPPED_TTL_MS,
        )
        try:
            opened = bool(await self._eval(_FAILURE, keys, *args))
        except RedisError:
            logger.warning("circuit breaker unavailable; failure of %s not counted", provider)
            return False
        if opened:
            cooldown = self.config.cooldown_s
            logger.warning("circuit breaker for %s is open for %gs", provider, cooldown)
        return opened

    async def success(self, provider: str) -> None:
        """The probe succeeded: close the breaker (normal successes need no report)."""
        try:
            await self._client().delete(*_keys(provider, "tripped", "open", "probe", "fails"))
        except RedisError:
            logger.warning("circuit breaker unavailable; could not close %s", provider)
        else:
            logger.info("circuit breaker for %s is closed again", provider)

    async def rest(self, provider: str, seconds: float) -> None:
        """Refuse requests to `provider` for `seconds` (its Retry-After)."""
        if seconds <= 0:
            return
        try:
            await self._client().set(_keys(provider, "rest")[0], "1", px=_ms(seconds))
        except RedisError:
            logger.warning("circuit breaker unavailable; %s not rested", provider)

    async def is_open(self, provider: str) -> bool:
        """Whether requests to `provider` are currently refused as failing (not resting)."""
        return bool(await self._client().exists(*_keys(provider, "open")))

    async def reset(self, provider: str) -> None:
        """Forget everything about `provider` (tests, and staff after fixing a provider)."""
        await self._client().delete(*_keys(provider, "rest", "tripped", "open", "probe", "fails"))

    async def aclose(self) -> None:
        """Close the Redis client of the running event loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    async def _eval(self, script: str, keys: list[str], *args: Any) -> Any:
        return await self._client().eval(script, len(keys), *keys, *args)

    def _client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.Redis.from_url(self._redis_url, socket_timeout=5)
            self._clients[loop] = client
        return client


def _keys(provider: str, *parts: str) -> list[str]:
    # One hash tag per provider keeps a breaker's keys on one Redis Cluster slot.
    return [f"{KEY_PREFIX}{{{provider}}}:{part}" for part in parts]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
