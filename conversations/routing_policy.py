"""The active routing policy and the priced model catalogue, cached in each process.

An ``auto`` turn reads both without a database query. Saving or deleting a ``RoutingPolicy`` or
a ``ModelPrice`` (admin, shell, migrations) bumps a version counter in Redis when its transaction
commits, and clears this process's copy at once. Other processes compare their copy's version
with Redis's at most every ``ROUTING_POLICY_CHECK_SECONDS`` (0: on every turn), so a change
reaches every web process within that time.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from billing.selectors import model_prices
from conversations.model_routing import DEFAULT_POLICY, RoutePolicy, cues_compile, words_compile
from conversations.models import RoutingPolicy, lines_of

logger = logging.getLogger(__name__)

VERSION_KEY = "routing:version"
SOCKET_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class RoutingConfig:
    policy: RoutePolicy
    prices: dict[str, int]  # enabled catalogue models -> input + output price
    version: int  # the Redis counter when this copy was read


class ConfigCache:
    """This process's copy and when its version was last compared with Redis's."""

    def __init__(self) -> None:
        self.config: RoutingConfig | None = None
        self.checked_at = 0.0
        self.lock = threading.Lock()

    def clear(self) -> None:
        self.config = None


cache = ConfigCache()


@functools.cache
def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S)


def version_current() -> int | None:
    """The shared version counter (0 before any change); None when Redis cannot be read."""
    try:
        raw = redis_client(settings.REDIS_URL).get(VERSION_KEY)
    except redis.RedisError:
        logger.warning("routing policy version unreadable; using this process's copy")
        return None
    return int(raw) if raw else 0


def routing_config() -> RoutingConfig:
    """The routing policy and prices, fresh within ``ROUTING_POLICY_CHECK_SECONDS``."""
    now = time.monotonic()
    config = cache.config
    if config is not None and now - cache.checked_at < settings.ROUTING_POLICY_CHECK_SECONDS:
        return config
    version = version_current()
    if config is not None and version in (None, config.version):
        cache.checked_at = now
        return config
    # Read after the version: a change committed meanwhile bumps it again, and is read next time.
    fresh = RoutingConfig(policy=policy_active(), prices=model_prices(), version=version or 0)
    with cache.lock:
        cache.config, cache.checked_at = fresh, now
    return fresh


def policy_active() -> RoutePolicy:
    """The active ``RoutingPolicy`` as plain values; the built-in defaults without one."""
    row = RoutingPolicy.objects.filter(active=True).first()
    if row is None:
        return DEFAULT_POLICY
    return policy_of(row)


def policy_of(row: RoutingPolicy) -> RoutePolicy:
    try:
        code = cues_compile(lines_of(row.code_patterns))
    except re.error:  # validated in the admin; a row written around it must not break turns
        logger.exception("routing policy %r: bad code pattern; code cues are off", row.name)
        code = None
    return RoutePolicy(
        long_question_chars=row.long_question_chars,
        long_context_tokens=row.long_context_tokens,
        code_patterns=code,
        reasoning_cues=words_compile(lines_of(row.reasoning_cues)),
        reasoning_min_cues=row.reasoning_min_cues,
        sources_prefer_strong=row.sources_prefer_strong,
        no_sources_prefer_strong=row.no_sources_prefer_strong,
        budget_prefer_cheap_at=row.budget_prefer_cheap_at,
        cheap_model=row.cheap_model,
        strong_model=row.strong_model,
        name=row.name,
    )


def version_bump() -> None:
    """Tell every process that the policy or the prices changed (after commit)."""
    cache.clear()
    try:
        redis_client(settings.REDIS_URL).incr(VERSION_KEY)
    except redis.RedisError:
        logger.exception("routing policy change not announced; other processes keep their copy")


def routing_changed(sender: Any, **kwargs: Any) -> None:
    """Signal receiver (``RoutingPolicy``, ``ModelPrice``): forget now, announce at commit."""
    cache.clear()
    transaction.on_commit(version_bump)
