"""The per-user monthly roll-up: the dashboard's user figures are exactly the ledger's."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from billing.models import UsageDaily, UsageRecord, UsageUserMonth
from billing.reports import DateRange, usage_users
from billing.rollup import usage_rollup
from chatbot.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

FIRST = date(2031, 1, 28)  # records from here to LAST: three month boundaries
LAST = date(2031, 4, 2)


def record(user: Any, day: date, cost: int, status: str = "complete") -> UsageRecord:
    at = datetime(day.year, day.month, day.day, 13, tzinfo=UTC)
    row = UsageRecord.objects.create(
        user=user, model="m", cost=cost, prompt_tokens=cost, completion_tokens=1, status=status
    )
    UsageRecord.objects.filter(pk=row.pk).update(created_at=at)
    row.created_at = at
    return row


@pytest.fixture
def ledger() -> list[UsageRecord]:
    users = [UserFactory.create(username=f"user-{n}") for n in range(5)]
    records = []
    day, n = FIRST, 0
    while day <= LAST:
        for k, user in enumerate(users):
            if (n + k) % (k + 2) == 0:  # each user active on a different rhythm
                records.append(record(user, day, cost=1 + (n * 7 + k * 13) % 50))
        day += timedelta(days=1)
        n += 1
    records.append(record(users[0], date(2031, 2, 14), cost=10_000, status="reserved"))
    usage_rollup(first=FIRST, last=LAST)
    return records


def expected(records: list[UsageRecord], span: DateRange) -> tuple[int, list[tuple[Any, ...]]]:
    totals: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in records:
        if r.status != "reserved" and span.first <= r.created_at.date() <= span.last:
            totals[r.user_id][0] += r.cost
            totals[r.user_id][1] += 1
            totals[r.user_id][2] += r.prompt_tokens + r.completion_tokens
    top = sorted(totals.items(), key=lambda item: (-item[1][0], item[0] or 0))[:3]
    return len(totals), [(user_id, *values) for user_id, values in top]


def found(span: DateRange) -> tuple[int, list[tuple[Any, ...]]]:
    users = usage_users(span=span, limit=3)
    rows = [(r["user_id"], r["cost"], r["requests"], r["tokens"]) for r in users.top]
    return users.active, rows


SPANS = [
    (date(2031, 2, 1), date(2031, 2, 28)),  # one whole month
    (date(2031, 2, 10), date(2031, 2, 20)),  # inside one month
    (date(2031, 1, 30), date(2031, 3, 1)),  # two month ends
    (date(2031, 1, 28), date(2031, 4, 2)),  # partial, two whole, partial
    (date(2031, 1, 31), date(2031, 1, 31)),  # a 31st
    (date(2031, 3, 1), date(2031, 3, 1)),  # a 1st
]


@pytest.mark.parametrize(("first", "last"), SPANS)
def test_active_and_top_users_over_a_range_match_the_ledger(ledger, first, last):
    span = DateRange(first, last)
    assert found(span) == expected(ledger, span)


def test_each_days_active_users_match_the_daily_roll_up(ledger):
    for daily in UsageDaily.objects.filter(model="", day__gte=FIRST, day__lte=LAST):
        assert found(DateRange(daily.day, daily.day))[0] == daily.active_users


def test_a_rerun_changes_nothing_and_a_changed_day_is_followed(ledger):
    def state() -> list[tuple[Any, ...]]:
        return list(
            UsageUserMonth.objects.order_by("month", "user_id").values_list(
                "user_id", "month", "days", "cost_through"
            )
        )

    before = state()
    usage_rollup(first=FIRST, last=LAST)
    assert state() == before

    day = date(2031, 3, 15)
    newcomer = UserFactory.create(username="newcomer")
    ledger.append(record(newcomer, day, cost=5_000))
    gone = next(r for r in ledger if r.created_at.date() == day and r.user_id != newcomer.pk)
    UsageRecord.objects.filter(pk=gone.pk).delete()
    ledger.remove(gone)
    usage_rollup(first=day, last=day)

    for first, last in SPANS:
        span = DateRange(first, last)
        assert found(span) == expected(ledger, span)
    assert found(DateRange(day, day))[1][0] == (newcomer.pk, 5_000, 1, 5_001)
