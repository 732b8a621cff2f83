"""The daily roll-up of the usage ledger that the dashboard reads (see ``UsageDaily``).

Two grouped scans of the days' records (aggregates, then TTFT histogram counts), both with
``GROUPING SETS`` so one pass yields the per-model rows and the all-models row of each day.
The days' old rows are replaced in the same transaction: a rerun is idempotent.
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
    """Rebuild the roll-up rows of the days ``first`` to ``last`` (UTC); how many were written."""
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
