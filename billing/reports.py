"""Reads for the staff dashboard: every figure is aggregated in SQL over the usage ledger.

Each query is a range scan on ``created_at`` (index ``usage_created``) grouped in the database;
nothing iterates over records in Python. In-flight requests (status ``reserved``) are left out:
their usage is not known yet. Timings over 1,000,000 records: bench/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection

RANGE = "created_at >= %(start)s AND created_at < %(end)s AND status <> 'reserved'"

METRICS = """
    count(DISTINCT user_id) AS active_users,
    count(*) AS requests,
    coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
    coalesce(sum(completion_tokens), 0) AS completion_tokens,
    coalesce(sum(cost), 0) AS cost,
    coalesce(avg(cache_hit::int), 0)::float AS cache_hit_ratio,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_p95,
    coalesce(avg((status IN ('failed', 'interrupted'))::int), 0)::float AS error_rate
"""

DAILY_SQL = f"""
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, {METRICS}
FROM billing_usagerecord WHERE {RANGE}
GROUP BY 1 ORDER BY 1
"""  # noqa: S608  (constant fragments; values are bound parameters)

TOTALS_SQL = f"SELECT {METRICS} FROM billing_usagerecord WHERE {RANGE}"  # noqa: S608

MODELS_SQL = f"""
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, model, count(*) AS requests,
    sum(prompt_tokens + completion_tokens) AS tokens, sum(cost) AS cost
FROM billing_usagerecord WHERE {RANGE}
GROUP BY 1, 2 ORDER BY 1, 2
"""  # noqa: S608

TOP_USERS_SQL = f"""
SELECT top.user_id, coalesce(u.username, '(deleted)') AS username, top.requests, top.tokens,
    top.cost
FROM (
    SELECT user_id, count(*) AS requests, sum(prompt_tokens + completion_tokens) AS tokens,
        sum(cost) AS cost
    FROM billing_usagerecord WHERE {RANGE}
    GROUP BY user_id ORDER BY sum(cost) DESC, user_id LIMIT %(limit)s
) AS top LEFT JOIN users_user AS u ON u.id = top.user_id
ORDER BY top.cost DESC, top.user_id
"""  # noqa: S608


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date  # inclusive

    @property
    def params(self) -> dict[str, Any]:
        start = datetime.combine(self.first, time.min, tzinfo=UTC)
        end = datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)
        return {"start": start, "end": end}


def rows(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def usage_daily(*, span: DateRange) -> list[dict[str, Any]]:
    """Per day: active users, requests, tokens, cost, cache hit ratio, TTFT p50/p95, error rate."""
    return rows(DAILY_SQL, span.params)


def usage_totals(*, span: DateRange) -> dict[str, Any]:
    """The same figures over the whole range."""
    return rows(TOTALS_SQL, span.params)[0]


def usage_by_model(*, span: DateRange) -> list[dict[str, Any]]:
    """Per day and model: requests, tokens, cost."""
    return rows(MODELS_SQL, span.params)


def usage_top_users(*, span: DateRange, limit: int = 10) -> list[dict[str, Any]]:
    """The users who cost the most in the range."""
    return rows(TOP_USERS_SQL, {**span.params, "limit": limit})
