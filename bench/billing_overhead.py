"""Billing's cost: per turn (rate limit + reservation + settle) and the dashboard over 1M records.

    python -m bench.billing_overhead [--turns 300] [--records 1000000] [--reseed]

Runs against a database of its own (``<name>_bench_billing`` on the same PostgreSQL server;
migrated, and seeded once with ``--records`` usage records by one ``INSERT ... SELECT`` over
``generate_series``), so the development data is left alone and a rerun reuses the seed.

1. Turn overhead: the synchronous steps of a turn that billing touches, ``turn_start`` (begin +
   plan, plus the Redis rate limit and the quota reservation) and ``turn_finish`` (plus the
   settle), timed with billing on and off in alternating blocks of the same run. No provider
   call: what streams in between is the same with or without billing.
2. Dashboard: each report query over a 30-day and a 90-day range (median of 5 after one warm-up),
   the whole admin page, and the ``EXPLAIN (ANALYZE, BUFFERS)`` plan of each query (top node,
   execution time) so the numbers can be read against what the database did.

Prints JSON and writes bench/results/billing_overhead.json. Method and history: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench.children import RESULTS
from bench.databases import bench_database
from bench.stats import distribution

BLOCK = 25  # turns per block; blocks alternate billing on / off


def django_setup() -> None:
    os.environ["DATABASE_URL"] = bench_database("_bench_billing")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


# --- 1. turn overhead ---------------------------------------------------------------------------


def turn_once(user: Any, conversation_id: int) -> tuple[float, float]:
    """Begin and finish one turn; the milliseconds of each step."""
    from conversations.generation import turn_start
    from conversations.models import Message
    from conversations.services import TurnOutcome, turn_finish

    started = time.perf_counter()
    turn, plan = turn_start(
        user=user,
        conversation_id=conversation_id,
        content="How do refunds work?",
        idempotency_key=uuid.uuid4().hex,
    )
    begun = time.perf_counter()
    assert plan is not None
    outcome = TurnOutcome(
        status=Message.Status.COMPLETE,
        content="Refunds take five days.",
        provider="fake",
        model=plan.model,
        prompt_tokens=120,
        completion_tokens=8,
        ttft_ms=90,
        duration_ms=400,
    )
    assert turn_finish(message_id=turn.assistant_message.pk, outcome=outcome)
    finished = time.perf_counter()
    return (begun - started) * 1000, (finished - begun) * 1000


def turn_overhead(turns: int) -> dict[str, Any]:
    from django.conf import settings

    from billing.services import plan_assign, plan_set
    from chatbot.users.models import User
    from conversations.services import conversation_create

    user, _ = User.objects.get_or_create(username="bench-billing")
    # A real bucket (Redis is asked every turn) that never runs dry, and no token cap.
    plan, _ = plan_set(name="bench-billing", requests_per_minute=1_000_000)
    plan_assign(user_id=user.pk, plan=plan)
    timings: dict[bool, dict[str, list[float]]] = {
        on: {"begin": [], "finish": [], "turn": []} for on in (True, False)
    }
    conversations = [conversation_create(owner=user).pk for _ in range(2 * turns)]
    for block in range(2 * turns // BLOCK):
        enabled = block % 2 == 0
        settings.BILLING_ENABLED = enabled
        for _ in range(BLOCK):
            begin_ms, finish_ms = turn_once(user, conversations.pop())
            timings[enabled]["begin"].append(begin_ms)
            timings[enabled]["finish"].append(finish_ms)
            timings[enabled]["turn"].append(begin_ms + finish_ms)
    settings.BILLING_ENABLED = True
    on, off = timings[True], timings[False]
    return {
        "billing_on": {step: distribution(values) for step, values in on.items()},
        "billing_off": {step: distribution(values) for step, values in off.items()},
        "overhead_ms": {
            "p50": round(statistics.median(on["turn"]) - statistics.median(off["turn"]), 2),
            "p99": round(distribution(on["turn"])["p99"] - distribution(off["turn"])["p99"], 2),
        },
        "steps_ms": steps_alone(user, plan),
    }


def steps_alone(user: Any, plan: Any) -> dict[str, Any]:
    """The rate limit alone (one Redis round trip), timed 500 times."""
    from billing.ratelimit import rate_limit_hit

    times = []
    for _ in range(500):
        started = time.perf_counter()
        rate_limit_hit(key=f"user:{user.pk}", rate_per_minute=plan.requests_per_minute)
        times.append((time.perf_counter() - started) * 1000)
    return {"rate_limit": distribution(times)}


# --- 2. dashboard over a million records ----------------------------------------------------------

USERS = 10_000
SEED_USERS_SQL = """
INSERT INTO users_user (password, is_superuser, username, first_name, last_name, email, is_staff,
    is_active, date_joined, display_name, department, preferred_model, preferences)
SELECT '!', false, 'bench-user-' || g, '', '', '', false, true, now(), '', '', '', '{}'::jsonb
FROM generate_series(1, %(users)s) AS g
ON CONFLICT DO NOTHING
"""
# Spread over the last 90 days; 5 models; 3% failed or interrupted; 20% cache hits.
SEED_RECORDS_SQL = """
WITH users AS (SELECT array_agg(id) AS ids FROM users_user WHERE username LIKE 'bench-user-%%')
INSERT INTO billing_usagerecord (request_id, user_id, model, provider, prompt_tokens,
    completion_tokens, reserved_tokens, reserved_cost, cost, cache_hit, ttft_ms, duration_ms,
    status, created_at, settled_at)
SELECT gen_random_uuid(), users.ids[1 + (g %% array_length(users.ids, 1))],
    (ARRAY['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'o3-mini'])[1 + g %% 5], 'openai',
    p, c, p + 1024, 0, (p * 150000 + c * 600000 + 999999) / 1000000, random() < 0.2,
    (80 + random() * 1500)::int, (500 + random() * 9000)::int,
    CASE WHEN g %% 100 < 2 THEN 'failed' WHEN g %% 100 < 3 THEN 'interrupted'
         ELSE 'complete' END,
    at, at
FROM generate_series(1, %(records)s) AS g, users,
    -- "g * 0" ties the random draws to each row (else the subquery is evaluated only once)
    LATERAL (SELECT (200 + random() * 3000 + g * 0)::int AS p,
        (20 + random() * 800 + g * 0)::int AS c,
        now() - (random() + g * 0) * interval '90 days' AS at) AS r
"""


def seed(records: int, reseed: bool) -> int:
    from django.db import connection

    from billing.models import UsageRecord

    if reseed:
        UsageRecord.objects.filter(message__isnull=True).delete()
    have = UsageRecord.objects.filter(user__username__startswith="bench-user-").count()
    if have < records:
        with connection.cursor() as cursor:
            cursor.execute(SEED_USERS_SQL, {"users": USERS})
            cursor.execute(SEED_RECORDS_SQL, {"records": records - have})
    with connection.cursor() as cursor:  # what autovacuum does for an insert-mostly table
        cursor.execute("VACUUM ANALYZE billing_usagerecord")
        cursor.execute("ANALYZE users_user")
    return UsageRecord.objects.count()


def rollup() -> dict[str, float]:
    """Build the dashboard's roll-up of the seeded 90 days; then time beat's 2-day refresh."""
    from django.db import connection
    from django.utils import timezone

    from billing.rollup import usage_rollup, usage_rollup_recent

    today = timezone.now().date()
    started = time.perf_counter()
    usage_rollup(first=today - timedelta(days=90), last=today)
    backfill = time.perf_counter() - started
    with connection.cursor() as cursor:  # what autovacuum does after a bulk write
        cursor.execute("VACUUM ANALYZE billing_usageusermonth")
        cursor.execute("VACUUM ANALYZE billing_usagedaily")
    return {
        "backfill_90_days_s": round(backfill, 1),
        "beat_refresh_ms": timed(usage_rollup_recent, runs=3),
    }


def timed(function: Callable[[], Any], runs: int = 5) -> float:
    function()  # warm-up: plans cached, pages in shared buffers
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def explained(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0][0]
    nodes = []
    node = plan["Plan"]
    while node:  # the spine of the plan: top node down to the scan
        nodes.append(
            node.get("Node Type") + (f" on {node['Index Name']}" if "Index Name" in node else "")
        )
        node = (node.get("Plans") or [None])[0]
    return {"execution_ms": round(plan["Execution Time"], 1), "plan": " <- ".join(nodes)}


def dashboard(days: int) -> dict[str, Any]:
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.template.response import TemplateResponse
    from django.test import RequestFactory
    from django.utils import timezone

    from billing import reports
    from billing.admin import UsageRecordAdmin
    from billing.models import UsageRecord

    today = timezone.now().date()
    span = reports.DateRange(today - timedelta(days=days - 1), today)
    queries = {
        "daily (roll-up)": (reports.DAILY_SQL, lambda: reports.usage_daily(span=span)),
        "by_model (roll-up)": (reports.MODELS_SQL, lambda: reports.usage_by_model(span=span)),
        "totals (roll-up)": (reports.TOTALS_SQL, None),
        "ttft histogram (roll-up)": (reports.HISTOGRAM_SQL, None),
        "users: distinct and top 10 (user-month roll-up + ledger for 10 users)": (
            reports.USERS_SQL,
            lambda: reports.usage_users(span=span),
        ),
    }
    params = {**span.params, **span.month_params, "limit": 10}
    staff, _ = get_user_model().objects.get_or_create(
        username="bench-staff", defaults={"is_staff": True, "is_superuser": True}
    )
    request = RequestFactory().get(
        "/admin/billing/usagerecord/dashboard/",
        {"start": span.first.isoformat(), "end": span.last.isoformat()},
    )
    request.user = staff
    model_admin = UsageRecordAdmin(UsageRecord, admin.site)

    def page() -> None:
        response = model_admin.dashboard(request)
        assert isinstance(response, TemplateResponse)
        response.render()

    in_range = UsageRecord.objects.filter(
        created_at__gte=span.params["start"], created_at__lt=span.params["end"]
    ).count()
    return {
        "days": days,
        "records_in_range": in_range,
        "queries_ms": {
            **{name: timed(run) for name, (_, run) in queries.items() if run},
            "usage_totals (three roll-up queries)": timed(lambda: reports.usage_totals(span=span)),
        },
        "explain": {name: explained(sql, params) for name, (sql, _) in queries.items()},
        "page_ms": timed(page, runs=3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300, help="turns with billing on (and off)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    if args.turns < 2 * BLOCK:
        parser.error(f"--turns must be at least {2 * BLOCK} (blocks of {BLOCK} alternate on / off)")
    django_setup()
    seeded_at = time.perf_counter()
    total = seed(args.records, args.reseed)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "turns": turn_overhead(args.turns),
        "usage_records": total,
        "seed_s": round(time.perf_counter() - seeded_at, 1),
        "rollup": rollup(),
        "dashboard": [dashboard(30), dashboard(90)],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "billing_overhead.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
