"""Readiness checks: each dependency answers within a short timeout, or the check fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from redis.backoff import NoBackoff
from redis.retry import Retry

CHECK_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    ms: float
    error: str = ""


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=CHECK_TIMEOUT_S,
        socket_connect_timeout=CHECK_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )
    with client:
        client.ping()


def check_broker() -> None:
    from celery_app import app

    with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
}


def run_check(name: str, check: Callable[[], None]) -> CheckResult:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure of a dependency means "not ready"
        return CheckResult(name, False, elapsed_ms(started), f"{type(exc).__name__}: {exc}")
    return CheckResult(name, True, elapsed_ms(started))


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def readiness() -> list[CheckResult]:
    """Run every readiness check; the process is ready when all of them pass."""
    return [run_check(name, check) for name, check in CHECKS.items()]
