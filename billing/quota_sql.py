"""The quota's reserve and settle steps as single SQL statements.

Reserve is a guarded ``UPDATE`` of the user's period row: PostgreSQL takes the row lock and,
when it had to wait for a concurrent reservation, re-checks the ``WHERE`` against the row as that
one left it, so concurrent requests can never reserve past the budget. The same statement writes
the ledger row (status ``reserved``) that settle later finds by message id.

Settle moves the ledger row from ``reserved`` to its final status exactly once (the status is in
the ``WHERE``) and, in the same statement, moves the period's reserved tokens to used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection

PERIOD_ENSURE_SQL = """
INSERT INTO billing_quotaperiod (user_id, period_start, tokens_used, tokens_reserved, cost_used,
    cost_reserved)
VALUES (%(user_id)s, %(period_start)s, 0, 0, 0, 0)
ON CONFLICT (user_id, period_start) DO NOTHING
"""

PERIOD_LOCK_SQL = """
SELECT id FROM billing_quotaperiod WHERE user_id = %(user_id)s AND period_start = %(period_start)s
FOR UPDATE
"""

# Cost in micro-dollars, rounded up; a model missing from the catalogue costs nothing.
COST_SQL = """
COALESCE((SELECT ({prompt} * input_price + {completion} * output_price + 999999) / 1000000
    FROM billing_modelprice WHERE model = {model}), 0)
"""

# A prompt count of NULL keeps the estimate written at reserve time (a reaped turn: the
# provider had the prompt, but nobody heard how many tokens it counted).
PROMPT = "COALESCE(%(prompt)s::bigint, billing_usagerecord.prompt_tokens)"
MODEL = "COALESCE(NULLIF(%(model)s, ''), billing_usagerecord.model)"
SETTLE_COST = COST_SQL.format(prompt=PROMPT, completion="%(completion)s::bigint", model=MODEL)

# Composed only from the constant fragments above; every value is a bound parameter.
SETTLE_SQL = f"""
WITH settled AS (
    UPDATE billing_usagerecord SET status = %(status)s, provider = %(provider)s, model = {MODEL},
        prompt_tokens = {PROMPT}, completion_tokens = %(completion)s, cost = {SETTLE_COST},
        cache_hit = %(cache_hit)s, ttft_ms = %(ttft_ms)s, duration_ms = %(duration_ms)s,
        settled_at = now()
    WHERE message_id = %(message_id)s AND status = 'reserved'
    RETURNING period_id, reserved_tokens, reserved_cost, cost, prompt_tokens, completion_tokens
), period AS (
    UPDATE billing_quotaperiod AS period SET
        tokens_reserved = period.tokens_reserved - settled.reserved_tokens,
        cost_reserved = period.cost_reserved - settled.reserved_cost,
        tokens_used = period.tokens_used + settled.prompt_tokens + settled.completion_tokens,
        cost_used = period.cost_used + settled.cost
    FROM settled WHERE period.id = settled.period_id
    RETURNING period.id
)
SELECT count(*) FROM settled
"""  # noqa: S608


ESTIMATE_COST = COST_SQL.format(
    prompt="%(prompt_tokens)s::bigint", completion="%(max_output)s::bigint", model="%(model)s"
)

# The plan's limits are read here rather than passed in: the caller's plan may come from a cache
# (the given limits apply only to a user without a subscription, i.e. on the default plan).
RESERVE_SQL = f"""
WITH estimate AS (
    SELECT %(prompt_tokens)s::bigint + %(max_output)s::bigint AS tokens, {ESTIMATE_COST} AS cost
), limits AS (
    SELECT plan.tokens_per_month AS tokens, plan.cost_cap_per_month AS cost
    FROM billing_subscription AS sub JOIN billing_plan AS plan ON plan.id = sub.plan_id
    WHERE sub.user_id = %(user_id)s
    UNION ALL
    SELECT %(token_limit)s::bigint, %(cost_cap)s::bigint
    WHERE NOT EXISTS (SELECT FROM billing_subscription WHERE user_id = %(user_id)s)
), period AS (
    UPDATE billing_quotaperiod SET tokens_reserved = tokens_reserved + estimate.tokens,
        cost_reserved = cost_reserved + estimate.cost
    FROM estimate, limits
    WHERE user_id = %(user_id)s AND period_start = %(period_start)s
      AND (limits.tokens IS NULL
           OR tokens_used + tokens_reserved + estimate.tokens <= limits.tokens)
      AND (limits.cost IS NULL OR cost_used + cost_reserved + estimate.cost <= limits.cost)
    RETURNING billing_quotaperiod.id
)
INSERT INTO billing_usagerecord (request_id, user_id, conversation_id, message_id, period_id,
    model, provider, prompt_tokens, completion_tokens, reserved_tokens, reserved_cost, cost,
    cache_hit, status, created_at)
SELECT gen_random_uuid(), %(user_id)s, %(conversation_id)s, %(message_id)s, period.id,
    %(model)s, '', %(prompt_tokens)s, 0, estimate.tokens, estimate.cost, 0, false, 'reserved',
    now()
FROM period, estimate
RETURNING id
"""  # noqa: S608


@dataclass(frozen=True)
class Reservation:
    user_id: int
    conversation_id: int
    message_id: int
    period_start: date
    model: str
    prompt_tokens: int
    max_output: int
    token_limit: int | None
    cost_cap: int | None


def reservation_insert(reservation: Reservation) -> int | None:
    """The ledger row's id, or None when the period is missing or has no room."""
    with connection.cursor() as cursor:
        cursor.execute(RESERVE_SQL, dataclasses.asdict(reservation))
        row = cursor.fetchone()
    return int(row[0]) if row else None


def period_ensure_locked(*, user_id: int, period_start: date) -> None:
    """Create the period row if missing (a concurrent creator wins quietly), then lock it."""
    params: dict[str, Any] = {"user_id": user_id, "period_start": period_start}
    with connection.cursor() as cursor:
        cursor.execute(PERIOD_ENSURE_SQL, params)
        cursor.execute(PERIOD_LOCK_SQL, params)


def settle_update(*, message_id: int, values: dict[str, Any]) -> bool:
    """Settle the message's reservation; False when there was none (or it was settled)."""
    with connection.cursor() as cursor:
        cursor.execute(SETTLE_SQL, {**values, "message_id": message_id})
        row = cursor.fetchone()
    return bool(row and row[0])
