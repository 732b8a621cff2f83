"""REST for a user's own usage: ``GET /api/v1/usage``."""

from __future__ import annotations

from datetime import date, datetime

from django.http import HttpRequest
from ninja import Router, Schema

from billing.selectors import usage_summary
from chatbot.users.auth import api_auth

router = Router(auth=api_auth, tags=["billing"])


class RateLimitOut(Schema):
    requests_per_minute: int  # 0: no limit
    limit: int
    remaining: int
    retry_after: float


class UsageOut(Schema):
    plan: str
    period_start: date
    reset_at: datetime
    tokens_limit: int | None  # None: no cap
    tokens_used: int
    tokens_reserved: int  # held by answers being written now
    tokens_remaining: int | None
    cost_cap: int | None  # micro-dollars
    cost_used: int
    rate_limit: RateLimitOut


@router.get("/usage", response=UsageOut)
def usage_get(request: HttpRequest) -> UsageOut:
    """The current period's usage, what is left, when it resets, and the rate-limit state."""
    user = request.auth  # type: ignore[attr-defined]  # what the auth class returned
    summary = usage_summary(user_id=user.pk)
    rate = RateLimitOut(
        requests_per_minute=summary.requests_per_minute,
        limit=summary.rate.limit,
        remaining=summary.rate.remaining,
        retry_after=round(summary.rate.retry_after, 3),
    )
    return UsageOut(
        plan=summary.plan,
        period_start=summary.period_start,
        reset_at=summary.reset_at,
        tokens_limit=summary.tokens_limit,
        tokens_used=summary.tokens_used,
        tokens_reserved=summary.tokens_reserved,
        tokens_remaining=summary.tokens_remaining,
        cost_cap=summary.cost_cap,
        cost_used=summary.cost_used,
        rate_limit=rate,
    )
