"""Writes: subscriptions, plans, and the admit / reserve / settle steps of every chat turn."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.exceptions import QuotaExceeded, RateLimited
from billing.models import Plan, Subscription, UsageRecord
from billing.plan_cache import plan_for_user_cached
from billing.quota_sql import (
    Reservation,
    period_ensure_locked,
    reservation_insert,
    settle_update,
)
from billing.ratelimit import RateDecision, rate_limit_hit, rate_limit_hit_async
from billing.selectors import (
    period_reset_at,
    period_start_of,
    plan_default,
    plan_get_by_name,
    user_rate_key,
)


@transaction.atomic
def subscription_default_create(*, user_id: int) -> Subscription:
    """Put a new user on the default plan (kept if they already have a subscription)."""
    subscription, _ = Subscription.objects.get_or_create(
        user_id=user_id, defaults={"plan": plan_default()}
    )
    return subscription


@transaction.atomic
def plan_set(*, name: str, **limits: Any) -> tuple[Plan, bool]:
    """Create the plan ``name`` or update the limits given (None: unchanged); True if created.

    Raises ``ValidationError`` for a bad name or limit.
    """
    plan = plan_get_by_name(name=name)
    created = plan is None
    plan = plan or Plan(name=name)
    for field, value in limits.items():
        if value is not None:
            setattr(plan, field, value)
    plan.full_clean()
    plan.save()
    return plan, created


@transaction.atomic
def plan_assign(*, user_id: int, plan: Plan) -> Subscription:
    """Move a user to ``plan`` from now on (their current period's usage stays)."""
    subscription, _ = Subscription.objects.update_or_create(
        user_id=user_id, defaults={"plan": plan, "since": timezone.now()}
    )
    return subscription


def turn_admit(*, user_id: int) -> Plan:
    """The rate limit of a new turn (one Redis round trip); returns the user's plan.

    The plan comes from a short per-process cache (``billing.plan_cache``): no database trip on
    most turns. Raises ``RateLimited`` with the wait when the user's bucket is empty.
    """
    plan = plan_for_user_cached(user_id=user_id)
    admit_or_raise(
        rate_limit_hit(key=user_rate_key(user_id), rate_per_minute=plan.requests_per_minute)
    )
    return plan


async def turn_admit_async(*, user_id: int, plan: Plan, client: aioredis.Redis) -> None:
    """``turn_admit``'s rate limit on the event loop, for a plan the caller already holds."""
    decision = await rate_limit_hit_async(
        client=client, key=user_rate_key(user_id), rate_per_minute=plan.requests_per_minute
    )
    admit_or_raise(decision)


def admit_or_raise(decision: RateDecision) -> None:
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


def client_admit(*, ip: str) -> None:
    """Rate-limit an anonymous request by client IP (``ANON_REQUESTS_PER_MINUTE``).

    ``ip`` comes from ``billing.ratelimit.client_ip``. Raises ``RateLimited``.
    """
    rate = settings.ANON_REQUESTS_PER_MINUTE
    admit_or_raise(rate_limit_hit(key=f"ip:{ip}", rate_per_minute=rate))


@dataclass(frozen=True)
class TurnRequest:
    user_id: int
    conversation_id: int
    message_id: int
    model: str
    prompt_tokens: int  # estimated from the assembled prompt
    max_output: int


def quota_reserve(*, plan: Plan, request: TurnRequest) -> int:
    """Reserve prompt + max output for a turn on the user's current period; the ledger row id.

    Call inside the transaction that begins the turn: a refusal (``QuotaExceeded``, with the
    reset time) rolls the turn back. The guarded update cannot take the period past its budget
    however many requests race; a first request of the month creates the period row. The limits
    are the subscription's plan as the statement reads it (``plan``'s only for a user without a
    subscription), so a cached ``plan`` never lets a turn past a lowered quota.
    """
    start = period_start_of(timezone.now())
    reservation = Reservation(
        **dataclasses.asdict(request),
        period_start=start,
        token_limit=plan.tokens_per_month,
        cost_cap=plan.cost_cap_per_month,
    )
    record_id = reservation_insert(reservation)
    if record_id is None:
        # No room, or no period row yet: create it if missing and try once more under its lock.
        period_ensure_locked(user_id=request.user_id, period_start=start)
        record_id = reservation_insert(reservation)
    if record_id is None:
        raise QuotaExceeded(period_reset_at(start))
    return record_id


@dataclass(frozen=True)
class TurnUsage:
    status: str
    model: str
    provider: str
    prompt_tokens: int | None  # None: unknown, bill the estimate made at reserve time
    completion_tokens: int
    ttft_ms: int | None = None
    duration_ms: int | None = None
    cache_hit: bool = False


def usage_settle(*, message_id: int, usage: TurnUsage) -> bool:
    """Settle a turn's reservation to what it used, once: False if there was nothing to settle.

    A failure before any answer text bills nothing (the provider charged nothing). Run it in the
    transaction that records how the turn ended.
    """
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    if usage.status == UsageRecord.Status.FAILED and not completion:
        prompt = 0
    values: dict[str, Any] = {
        "status": usage.status,
        "model": usage.model,
        "provider": usage.provider,
        "prompt": prompt,
        "completion": completion,
        "ttft_ms": usage.ttft_ms,
        "duration_ms": usage.duration_ms,
        "cache_hit": usage.cache_hit,
    }
    return settle_update(message_id=message_id, values=values)
