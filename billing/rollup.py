"""The daily roll-up of the usage ledger that the dashboard reads (see ``UsageDaily``).

Two grouped scans of the days' records (aggregates, then TTFT histogram counts), both with
``GROUPING SETS`` so one pass yields the per-model rows and the all-models row of each day.
The days' old rows are replaced in the same transaction: a rerun is idempotent.

The same run refreshes those days of ``UsageUserMonth`` (per user and month: active days,
cumulative cost): one statement per month computes every user's cost per day from the ledger,
compares it with what the month row holds for those days, and adds the differences (new users'
rows are inserted, unchanged ones not touched). Runs are serialised by an advisory lock,
so beat and ``manage.py usage_rollup`` never add the same difference twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from billing.models import TTFT_BUCKETS_MS, UsageDaily

RANGE = "created_at >= %(start)s AND created_at < %(end)s AND status <> 'reserved'"
DAY = "(created_at AT TIME ZONE 'UTC')::date"

AGGREGATES_SQL = f"""
SELECT {DAY} AS day, coalesce(model, '') AS model, grouping(model) AS all_models,
    count(*), count(DISTINCT user_id), coalesce(sum(prompt_tokens), 0),
    coalesce(sum(completion_tokens), 0), coalesce(sum(cost), 0),
    count(*) FILTER (WHERE cache_hit), count(*) FILTER (WHERE status IN ('failed', 'interrupted')),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms),
    percentile_cont(0.95) WITHIN GROUP (ORDER BY ttft_ms)
FROM billing_usagerecord WHERE {RANGE}
GROUP BY GROUPING SETS (({DAY}, model), ({DAY}))
"""  # noqa: S608  (constant fragments; values are bound parameters)

BUCKET = "width_bucket(ttft_ms, %(bounds)s::int[])"
HISTOGRAM_SQL = f"""
SELECT {DAY} AS day, coalesce(model, '') AS model, grouping(model) AS all_models, {BUCKET}, count(*)
FROM billing_usagerecord WHERE {RANGE} AND ttft_ms IS NOT NULL
GROUP BY GROUPING SETS (({DAY}, model, {BUCKET}), ({DAY}, {BUCKET}))
"""  # noqa: S608

# Days %(first_day)s .. %(last_day)s of %(month)s (their bits: %(mask)s). Every user's cost per
# day from the ledger is compared with what the month row holds for that day; only users with a
# difference are written: their new active days and the running sum of the differences.
DAY_OF_MONTH = "extract(day FROM created_at AT TIME ZONE 'UTC')::int"
USER_MONTH_SQL = f"""
WITH fresh AS (
    SELECT user_id, {DAY_OF_MONTH} AS day, sum(cost)::bigint AS cost FROM billing_usagerecord
    WHERE {RANGE} AND user_id IS NOT NULL GROUP BY 1, 2
), held AS (
    SELECT user_id, day, cost_through[day + 1] - cost_through[day] AS cost
    FROM billing_usageusermonth, generate_series(%(first_day)s::int, %(last_day)s::int) AS day
    WHERE month = %(month)s AND days & %(mask)s <> 0 AND days & (1 << (day - 1)) <> 0
), change AS (
    SELECT user_id, day, fresh.user_id IS NOT NULL AS active,
        coalesce(fresh.cost, 0) - coalesce(held.cost, 0) AS delta,
        (fresh.user_id IS NULL) <> (held.user_id IS NULL) AS flipped
    FROM fresh FULL JOIN held USING (user_id, day)
), per_user AS (
    SELECT user_id, bit_or(CASE WHEN active THEN 1 << (day - 1) ELSE 0 END) AS days,
        array_agg(day) AS changed_days, array_agg(delta) AS deltas
    FROM change GROUP BY user_id HAVING bool_or(delta <> 0 OR flipped)
)
INSERT INTO billing_usageusermonth AS um (user_id, month, days, cost_through)
SELECT user_id, %(month)s, days, array(
    SELECT (SELECT coalesce(sum(d), 0) FROM unnest(changed_days, deltas) AS x(day, d)
            WHERE day < k)::bigint
    FROM generate_series(1, 32) AS k ORDER BY k)
FROM per_user
ON CONFLICT (month, user_id) DO UPDATE SET
    days = um.days & ~%(mask)s | excluded.days,
    cost_through = array(
        SELECT a + b
        FROM unnest(um.cost_through, excluded.cost_through) WITH ORDINALITY AS x(a, b, k)
        ORDER BY k
    )
"""  # noqa: S608

FIELDS = (
    "requests",
    "active_users",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cache_hits",
    "errors",
    "ttft_p50",
    "ttft_p95",
)


def day_bounds(first: date, last: date) -> dict[str, Any]:
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    return {"start": start, "end": end, "bounds": list(TTFT_BUCKETS_MS)}


def grouped(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


@transaction.atomic
def usage_rollup(*, first: date, last: date) -> int:
    """Rebuild the roll-up rows of the days ``first`` to ``last`` (UTC); how many were written.

    Also brings those days of the per-user monthly roll-up (``UsageUserMonth``) up to date.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('billing.usage_rollup'))")
    start = first
    while start <= last:  # one statement per calendar month
        next_month = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        end = min(last, next_month - timedelta(days=1))
        user_month_refresh(first=start, last=end)
        start = next_month
    return daily_rebuild(first=first, last=last)


def user_month_refresh(*, first: date, last: date) -> None:
    """Bring the days ``first`` to ``last`` (one month) of ``UsageUserMonth`` up to date."""
    params = {
        **day_bounds(first, last),
        "month": first.replace(day=1),
        "first_day": first.day,
        "last_day": last.day,
        # bits of days first.day .. last.day, as a signed 32-bit int
        "mask": ((1 << last.day) - 1) & -(1 << (first.day - 1)),
    }
    with connection.cursor() as cursor:
        cursor.execute(USER_MONTH_SQL, params)


def daily_rebuild(*, first: date, last: date) -> int:
    params = day_bounds(first, last)
    rows: dict[tuple[date, str], UsageDaily] = {}
    for day, model, all_models, *values in grouped(AGGREGATES_SQL, params):
        key = (day, "" if all_models else model)
        rows[key] = UsageDaily(day=day, model=key[1], **dict(zip(FIELDS, values, strict=True)))
    histograms: dict[tuple[date, str], list[int]] = defaultdict(
        lambda: [0] * (len(TTFT_BUCKETS_MS) + 1)
    )
    for day, model, all_models, bucket, count in grouped(HISTOGRAM_SQL, params):
        histograms[(day, "" if all_models else model)][bucket] = count
    for key, row in rows.items():
        row.ttft_histogram = histograms[key]
    UsageDaily.objects.filter(day__gte=first, day__lte=last).delete()
    UsageDaily.objects.bulk_create(rows.values())
    return len(rows)


def usage_rollup_recent() -> int:
    """Yesterday and today: late settles (long answers, the reaper) land within a day."""
    today = timezone.now().astimezone(UTC).date()
    return usage_rollup(first=today - timedelta(days=1), last=today)


def histogram_percentile(histogram: list[int], p: float) -> float | None:
    """The p-quantile (0..1) of a TTFT histogram, interpolated within its bucket."""
    total = sum(histogram)
    if not total:
        return None
    rank = p * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = TTFT_BUCKETS_MS[index - 1] if index > 0 else 0
            high = TTFT_BUCKETS_MS[index] if index < len(TTFT_BUCKETS_MS) else low * 2
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(TTFT_BUCKETS_MS[-1])
