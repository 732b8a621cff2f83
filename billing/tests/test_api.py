"""GET /api/v1/usage: the caller's own period, limits and rate-limit state."""

from __future__ import annotations

import pytest
from django.utils import timezone

from billing.models import QuotaPeriod
from billing.ratelimit import rate_limit_hit
from billing.selectors import period_start_of, user_rate_key
from billing.tests.conftest import plan_make, user_on

pytestmark = pytest.mark.django_db


def test_usage_shows_the_current_period_and_what_is_left(client):
    # A slow refill (one request per 20 s), so a loaded machine cannot refill it before the GET.
    user = user_on(plan_make(tokens_per_month=10_000, requests_per_minute=3))
    QuotaPeriod.objects.create(
        user=user,
        period_start=period_start_of(timezone.now()),
        tokens_used=1200,
        tokens_reserved=800,
    )
    rate_limit_hit(key=user_rate_key(user.pk), rate_per_minute=3)
    client.force_login(user)

    body = client.get("/api/v1/usage").json()

    assert (body["tokens_used"], body["tokens_reserved"], body["tokens_remaining"]) == (
        1200,
        800,
        8000,
    )
    assert body["tokens_limit"] == 10_000
    assert body["reset_at"].endswith("-01T00:00:00Z") or "+00:00" in body["reset_at"]
    assert body["rate_limit"] == {
        "requests_per_minute": 3,
        "limit": 3,
        "remaining": 2,
        "retry_after": 0.0,
    }


def test_usage_of_a_new_user_is_empty_and_anonymous_callers_are_refused(client):
    user = user_on(plan_make(tokens_per_month=None))
    assert client.get("/api/v1/usage").status_code == 401
    client.force_login(user)
    body = client.get("/api/v1/usage").json()
    assert (body["tokens_used"], body["tokens_limit"], body["tokens_remaining"]) == (0, None, None)
