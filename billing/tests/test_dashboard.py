"""The staff usage dashboard: its numbers are the ledger's, its access is staff-only."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from billing.models import UsageDaily, UsageRecord
from billing.reports import DateRange, usage_daily, usage_totals, usage_users
from billing.rollup import usage_rollup
from billing.templatetags.billing_format import usd
from chatbot.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/billing/usagerecord/dashboard/"
DAY1 = datetime(2031, 3, 10, 12, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@pytest.fixture
def ledger() -> list[UsageRecord]:
    ann, ben = UserFactory.create(username="ann"), UserFactory.create(username="ben")
    specs: list[dict[str, Any]] = [
        {"user": ann, "model": "gpt-4o-mini", "cost": 1200, "ttft_ms": 100, "at": DAY1},
        {"user": ann, "model": "gpt-4o", "cost": 50_000, "ttft_ms": 300, "at": DAY1},
        {
            "user": ben,
            "model": "gpt-4o-mini",
            "cost": 800,
            "ttft_ms": 200,
            "at": DAY1,
            "cache_hit": True,
        },
        {
            "user": ben,
            "model": "gpt-4o-mini",
            "cost": 0,
            "ttft_ms": None,
            "at": DAY2,
            "status": "failed",
        },
        {
            "user": ben,
            "model": "gpt-4o",
            "cost": 70_000,
            "ttft_ms": 900,
            "at": DAY2,
            "status": "interrupted",
        },
        {
            "user": ann,
            "model": "gpt-4o",
            "cost": 5,
            "ttft_ms": 5,
            "at": DAY2,
            "status": "reserved",
        },  # in flight: not counted yet
        {"user": ann, "model": "gpt-4o", "cost": 99, "ttft_ms": 1, "at": DAY2 + timedelta(days=5)},
    ]
    records = []
    for n, spec in enumerate(specs):
        at = spec.pop("at")
        record = UsageRecord.objects.create(
            prompt_tokens=100 + n,
            completion_tokens=10 * n,
            status=spec.pop("status", "complete"),
            **spec,
        )
        UsageRecord.objects.filter(pk=record.pk).update(created_at=at)
        record.created_at = at
        records.append(record)
    usage_rollup(first=DAY1.date() - timedelta(days=1), last=DAY2.date() + timedelta(days=7))
    return records


def counted(records: list[UsageRecord]) -> list[UsageRecord]:
    span_end = DAY2.replace(hour=0) + timedelta(days=1)
    return [
        r
        for r in records
        if r.status != "reserved" and DAY1.replace(hour=0) <= r.created_at < span_end
    ]


def test_the_totals_match_the_ledger(ledger):
    totals = usage_totals(span=DateRange(DAY1.date(), DAY2.date()))
    rows = counted(ledger)
    ttfts = [r.ttft_ms for r in rows if r.ttft_ms is not None]
    assert totals["requests"] == len(rows) == 5
    assert usage_users(span=DateRange(DAY1.date(), DAY2.date())).active == 2
    assert totals["prompt_tokens"] == sum(r.prompt_tokens for r in rows)
    assert totals["completion_tokens"] == sum(r.completion_tokens for r in rows)
    assert totals["cost"] == sum(r.cost for r in rows)
    assert totals["cache_hit_ratio"] == pytest.approx(1 / 5)
    assert totals["error_rate"] == pytest.approx(2 / 5)
    # Merged from daily histograms: within the bucket (25 to 50 ms wide here) of the sample
    # at that rank; with four samples p95 lies between percentile_cont's value and the maximum.
    assert totals["ttft_p50"] == pytest.approx(percentile(ttfts, 0.5), abs=25)
    assert percentile(ttfts, 0.95) <= totals["ttft_p95"] <= max(ttfts) + 50


def test_per_day_and_top_users_match_the_ledger(ledger):
    span = DateRange(DAY1.date(), DAY2.date())
    daily = {row["day"]: row for row in usage_daily(span=span)}
    assert daily[DAY1.date()]["requests"] == 3 and daily[DAY2.date()]["requests"] == 2
    assert daily[DAY2.date()]["error_rate"] == pytest.approx(1.0)
    day1 = [r.ttft_ms or 0 for r in counted(ledger) if r.created_at.date() == DAY1.date()]
    assert daily[DAY1.date()]["ttft_p50"] == pytest.approx(percentile(day1, 0.5))
    assert daily[DAY1.date()]["ttft_p95"] == pytest.approx(percentile(day1, 0.95))
    assert daily[DAY1.date()]["active_users"] == 2
    users = usage_users(span=span, limit=1)
    assert [(row["username"], row["cost"]) for row in users.top] == [("ben", 70_800)]
    assert users.active == 2  # counted before the limit


def test_the_page_renders_charts_and_totals_for_staff(
    ledger, admin_client, django_assert_max_num_queries
):
    # Session, user, then five report queries: the count does not grow with the ledger.
    with django_assert_max_num_queries(9):
        response = admin_client.get(URL, {"start": DAY1.date(), "end": DAY2.date()})
    page = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'data-key="requests">5<', page)
    assert f'data-key="cost">{usd(sum(r.cost for r in counted(ledger)))}<' in page
    assert 'id="usage-charts"' in page and "chart.umd.min.js" in page
    assert "ben" in page and "ann" in page


def test_csv_export_has_a_row_per_day(ledger, admin_client):
    response = admin_client.get(URL, {"start": DAY1.date(), "end": DAY2.date(), "export": "daily"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert [(row["day"], row["requests"]) for row in rows] == [
        (str(DAY1.date()), "3"),
        (str(DAY2.date()), "2"),
    ]


def test_a_bad_range_falls_back_to_the_last_thirty_days(admin_client):
    response = admin_client.get(URL, {"start": "2031-05-01", "end": "2031-01-01"})
    assert response.status_code == 200
    assert "the start is after the end" in response.content.decode()
    today = timezone.now().date()
    assert str(today) in response.content.decode()


def test_the_dashboard_is_for_staff_only(client):
    client.force_login(UserFactory.create(username="plain"))
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_ledger_lists_are_searchable_and_filterable(ledger, admin_client):
    response = admin_client.get("/admin/billing/usagerecord/", {"q": "ben", "status": "failed"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    for path in ("plan", "subscription", "modelprice", "quotaperiod"):
        assert admin_client.get(f"/admin/billing/{path}/", {"q": "x"}).status_code == 200


def test_the_roll_up_is_idempotent_and_its_model_rows_add_up_to_the_day(ledger):
    first, last = DAY1.date(), DAY2.date()
    assert usage_rollup(first=first, last=last) == usage_rollup(first=first, last=last)
    for day in (first, last):
        rows = UsageDaily.objects.filter(day=day)
        whole = rows.get(model="")
        parts = rows.exclude(model="")
        assert whole.requests == sum(r.requests for r in parts)
        assert whole.cost == sum(r.cost for r in parts)
        assert sum(whole.ttft_histogram) == sum(sum(r.ttft_histogram) for r in parts)


def test_the_beat_task_rolls_up_today():
    from billing.tasks import usage_rollup_task

    UsageRecord.objects.create(
        model="m", cost=7, prompt_tokens=1, completion_tokens=2, status="complete"
    )
    assert usage_rollup_task() == 2  # the day's row and the model's row
    assert UsageDaily.objects.get(day=timezone.now().date(), model="").cost == 7
