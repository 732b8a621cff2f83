"""Reads for the staff dashboard: the roll-ups (``UsageDaily``, ``UsageUserMonth``).

Per-day and per-model figures come from the daily roll-up: a few hundred rows for a year,
whatever the size of the ledger. Distinct users over the range and the top users by cost cannot
be summed from days; they come from the per-user monthly roll-up (one row per user and month),
and only the top users' request and token counts are read from the ledger (by user).
Timings over 1,000,000 records: bench/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection

from billing.rollup import histogram_percentile

DAYS = "day >= %(first)s AND day <= %(last)s"
RANGE = "created_at >= %(start)s AND created_at < %(end)s AND status <> 'reserved'"

DAILY_SQL = f"""
SELECT day, active_users, requests, prompt_tokens, completion_tokens, cost,
    cache_hits::float / greatest(requests, 1) AS cache_hit_ratio, ttft_p50, ttft_p95,
    errors::float / greatest(requests, 1) AS error_rate
FROM billing_usagedaily WHERE model = '' AND {DAYS} ORDER BY day
"""  # noqa: S608  (constant fragments; values are bound parameters)

MODELS_SQL = f"""
SELECT day, model, requests, prompt_tokens + completion_tokens AS tokens, cost
FROM billing_usagedaily WHERE model <> '' AND {DAYS} ORDER BY day, model
"""  # noqa: S608

TOTALS_SQL = f"""
SELECT coalesce(sum(requests), 0)::bigint AS requests,
    coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
    coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens,
    coalesce(sum(cost), 0)::bigint AS cost,
    coalesce(sum(cache_hits)::float / greatest(sum(requests), 1), 0) AS cache_hit_ratio,
    coalesce(sum(errors)::float / greatest(sum(requests), 1), 0) AS error_rate,
    max(refreshed_at) AS refreshed_at
FROM billing_usagedaily WHERE model = '' AND {DAYS}
"""  # noqa: S608

HISTOGRAM_SQL = f"""
SELECT coalesce(array_agg(total ORDER BY bucket), '{{}}') FROM (
    SELECT bucket, sum(count)::int AS total
    FROM billing_usagedaily, unnest(ttft_histogram) WITH ORDINALITY AS h(count, bucket)
    WHERE model = '' AND {DAYS} GROUP BY bucket
) AS merged
"""  # noqa: S608

# Each month row counts for the range's days in it: the masks keep the range's days of the first
# and last month (-1: all), the cumulative costs give the cost of those days. Every user's total
# (hash aggregate), counted, then the costliest kept.
LO = "CASE WHEN month = %(first_month)s THEN %(first_day)s ELSE 1 END"
HI = "CASE WHEN month = %(last_month)s THEN %(last_day)s ELSE 31 END"
USERS_SQL = f"""
SELECT top.user_id, coalesce(u.username, '(deleted)') AS username, top.cost, top.active_users
FROM (
    SELECT user_id, cost, count(*) OVER () AS active_users FROM (
        SELECT user_id, sum(cost_through[{HI} + 1] - cost_through[{LO}])::bigint AS cost
        FROM billing_usageusermonth
        WHERE month >= %(first_month)s AND month <= %(last_month)s
          AND days & CASE WHEN month = %(first_month)s THEN %(first_mask)s ELSE -1 END
              & CASE WHEN month = %(last_month)s THEN %(last_mask)s ELSE -1 END <> 0
        GROUP BY user_id
    ) AS per_user
    ORDER BY cost DESC, user_id LIMIT %(limit)s
) AS top LEFT JOIN users_user AS u ON u.id = top.user_id
ORDER BY top.cost DESC, top.user_id
"""  # noqa: S608

# The few top users' requests and tokens, from the ledger through ``usage_user_created``.
USER_COUNTS_SQL = f"""
SELECT user_id, count(*) AS requests, sum(prompt_tokens + completion_tokens)::bigint AS tokens
FROM billing_usagerecord WHERE user_id = ANY(%(ids)s) AND {RANGE}
GROUP BY user_id
"""  # noqa: S608


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date  # inclusive

    @property
    def params(self) -> dict[str, Any]:
        start = datetime.combine(self.first, time.min, tzinfo=UTC)
        end = datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)
        return {"first": self.first, "last": self.last, "start": start, "end": end}

    @property
    def month_params(self) -> dict[str, Any]:
        """Bounds in ``UsageUserMonth`` terms: months, days of month, and their day masks."""
        return {
            "first_month": self.first.replace(day=1),
            "last_month": self.last.replace(day=1),
            "first_day": self.first.day,
            "last_day": self.last.day,
            "first_mask": -(1 << (self.first.day - 1)),  # bits of days first.day .. 31
            "last_mask": (1 << self.last.day) - 1,  # bits of days 1 .. last.day
        }


def rows(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def value(sql: str, params: dict[str, Any]) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def usage_daily(*, span: DateRange) -> list[dict[str, Any]]:
    """Per day: active users, requests, tokens, cost, cache hit ratio, TTFT p50/p95, error rate."""
    return rows(DAILY_SQL, span.params)


def usage_by_model(*, span: DateRange) -> list[dict[str, Any]]:
    """Per day and model: requests, tokens, cost."""
    return rows(MODELS_SQL, span.params)


def usage_totals(*, span: DateRange) -> dict[str, Any]:
    """The range's sums; TTFT percentiles merged from the daily histograms (bucket precision)."""
    totals = rows(TOTALS_SQL, span.params)[0]
    histogram = value(HISTOGRAM_SQL, span.params) or []
    totals["ttft_p50"] = histogram_percentile(histogram, 0.5)
    totals["ttft_p95"] = histogram_percentile(histogram, 0.95)
    return totals


@dataclass(frozen=True)
class UsersInRange:
    active: int  # distinct users over the whole range (not a sum of days)
    top: list[dict[str, Any]]  # the costliest, most expensive first


def usage_users(*, span: DateRange, limit: int = 10) -> UsersInRange:
    """Distinct users in the range and the ones who cost the most (two queries)."""
    top = rows(USERS_SQL, {**span.month_params, "limit": limit})
    ids = [row["user_id"] for row in top]
    counts = {row["user_id"]: row for row in rows(USER_COUNTS_SQL, {**span.params, "ids": ids})}
    for row in top:
        found = counts.get(row["user_id"], {})
        row["requests"], row["tokens"] = found.get("requests", 0), found.get("tokens", 0)
    return UsersInRange(active=top[0]["active_users"] if top else 0, top=top)
