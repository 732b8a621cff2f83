"""Reads: a user's plan, the current quota period, the models a plan offers, usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from billing.models import ModelPrice, Plan, QuotaPeriod, Subscription
from billing.ratelimit import RateDecision, rate_limit_peek

# The seeded tiers (also written by migration 0002): the default plan is recreated from these
# when an operator deleted it, so a user always has some limits.
SEED_PLANS: dict[str, dict[str, object]] = {
    "free": {
        "requests_per_minute": 20,
        "tokens_per_month": 200_000,
        "cost_cap_per_month": 1_000_000,  # 1 USD
        "max_upload_bytes": 10 * 1024 * 1024,
        "storage_bytes": 100 * 1024 * 1024,
    },
    "pro": {
        "requests_per_minute": 60,
        "tokens_per_month": 5_000_000,
        "cost_cap_per_month": 50_000_000,  # 50 USD
        "max_upload_bytes": 50 * 1024 * 1024,
        "storage_bytes": 5 * 1024 * 1024 * 1024,
    },
    "enterprise": {
        "requests_per_minute": 600,
        "tokens_per_month": None,
        "cost_cap_per_month": None,
        "max_upload_bytes": 200 * 1024 * 1024,
        "storage_bytes": 100 * 1024 * 1024 * 1024,
    },
}


def plan_default() -> Plan:
    name = settings.BILLING_DEFAULT_PLAN
    plan, _ = Plan.objects.get_or_create(name=name, defaults=SEED_PLANS.get(name, {}))
    return plan


def plan_get_by_name(*, name: str) -> Plan | None:
    return Plan.objects.filter(name=name).first()


def plan_for_user(*, user_id: int) -> Plan:
    """The user's plan; the default plan for a user without a subscription."""
    subscription = Subscription.objects.select_related("plan").filter(user_id=user_id).first()
    return subscription.plan if subscription is not None else plan_default()


def period_start_of(moment: datetime) -> date:
    """Periods are calendar months in UTC."""
    return moment.astimezone(UTC).date().replace(day=1)


def period_reset_at(period_start: date) -> datetime:
    """When the period that began on ``period_start`` ends (the next one begins)."""
    year, month = (
        (period_start.year + 1, 1)
        if period_start.month == 12
        else (
            period_start.year,
            period_start.month + 1,
        )
    )
    return datetime(year, month, 1, tzinfo=UTC)


def models_offered(*, plan: Plan, provider_models: Sequence[str]) -> list[str]:
    """Models a user of ``plan`` may pick, the default first.

    The catalogue (enabled ``ModelPrice`` rows) decides when it has rows; without any, the
    provider's configured models are offered. A plan's ``models_allowed`` narrows either.
    """
    catalogue = list(ModelPrice.objects.filter(enabled=True).values_list("model", flat=True))
    return models_offered_from(
        catalogue=catalogue, provider_models=provider_models, models_allowed=plan.models_allowed
    )


def models_offered_from(
    *, catalogue: Sequence[str], provider_models: Sequence[str], models_allowed: Sequence[str]
) -> list[str]:
    """``models_offered`` from values already read (the router keeps the catalogue cached)."""
    known = set(catalogue)
    offered = [m for m in provider_models if m in known] + sorted(known - set(provider_models))
    if not catalogue:
        offered = list(provider_models)
    if models_allowed:
        offered = [m for m in offered if m in models_allowed]
    return offered


def model_prices() -> dict[str, int]:
    """Enabled catalogue models and their input + output price (micro-dollars per M tokens)."""
    rows = ModelPrice.objects.filter(enabled=True).values_list(
        "model", "input_price", "output_price"
    )
    return {model: input_price + output_price for model, input_price, output_price in rows}


# The larger of the token and cost fractions of the caps the user has used or reserved this
# period (0 without a period row or a cap).
BUDGET_USED_SQL = """
SELECT GREATEST(0.0,
    COALESCE(MAX(tokens_used + tokens_reserved)::float8 / NULLIF(%(tokens_cap)s::bigint, 0), 0),
    COALESCE(MAX(cost_used + cost_reserved)::float8 / NULLIF(%(cost_cap)s::bigint, 0), 0)) AS used
FROM billing_quotaperiod WHERE user_id = %(user_id)s AND period_start = %(period_start)s
"""


def budget_params(*, user_id: int, plan: Plan) -> dict[str, Any] | None:
    """The parameters of ``BUDGET_USED_SQL``; None for a plan without caps (nothing to read)."""
    if not plan.tokens_per_month and not plan.cost_cap_per_month:
        return None
    return {
        "user_id": user_id,
        "period_start": period_start_of(timezone.now()),
        "tokens_cap": plan.tokens_per_month,
        "cost_cap": plan.cost_cap_per_month,
    }


def budget_used_fraction(*, user_id: int, plan: Plan) -> float:
    """How much of ``plan``'s monthly caps the user has used or reserved: the larger fraction.

    0 for a plan without caps (no query); otherwise one read of the current period's row.
    """
    params = budget_params(user_id=user_id, plan=plan)
    if params is None:
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(BUDGET_USED_SQL, params)
        row = cursor.fetchone()
    return float(row[0]) if row else 0.0


def model_cheapest(*, candidates: Sequence[str]) -> str | None:
    """The enabled catalogue model among ``candidates`` with the lowest input + output price."""
    cheapest = (
        ModelPrice.objects.filter(enabled=True, model__in=list(candidates))
        .order_by(F("input_price") + F("output_price"), "model")
        .values_list("model", flat=True)
        .first()
    )
    return cheapest


@dataclass(frozen=True)
class UsageSummary:
    plan: str
    period_start: date
    reset_at: datetime
    tokens_limit: int | None
    tokens_used: int
    tokens_reserved: int
    tokens_remaining: int | None
    cost_cap: int | None
    cost_used: int
    rate: RateDecision
    requests_per_minute: int


def usage_summary(*, user_id: int) -> UsageSummary:
    """The user's current period and rate-limit state (nothing is reserved or taken)."""
    plan = plan_for_user(user_id=user_id)
    start = period_start_of(timezone.now())
    period = QuotaPeriod.objects.filter(user_id=user_id, period_start=start).first()
    used = period.tokens_used if period else 0
    reserved = period.tokens_reserved if period else 0
    limit = plan.tokens_per_month
    return UsageSummary(
        plan=plan.name,
        period_start=start,
        reset_at=period_reset_at(start),
        tokens_limit=limit,
        tokens_used=used,
        tokens_reserved=reserved,
        tokens_remaining=None if limit is None else max(0, limit - used - reserved),
        cost_cap=plan.cost_cap_per_month,
        cost_used=period.cost_used if period else 0,
        rate=rate_limit_peek(key=user_rate_key(user_id), rate_per_minute=plan.requests_per_minute),
        requests_per_minute=plan.requests_per_minute,
    )


def user_rate_key(user_id: int) -> str:
    return f"user:{user_id}"
