"""History at scale: latency of the conversation list and of search through the REST API.

    python -m bench.history_latency [--users 101] [--conversations 10000] [--messages 20]
        [--requests 300] [--seed-budget-s 2400] [--reseed]

Seeds (once; cached between runs) a separate database ``bench_history`` on the same PostgreSQL
with ``--users`` users of ``--conversations`` conversations of ``--messages`` messages each
(see ``bench/history_seed.py``), then measures, for the first user, ``GET /api/v1/conversations``
and ``GET /api/v1/search`` with Django's test client in this process (routing, auth, the ninja
view, selectors, serialisation): p50/p99 per variant and the SQL queries each request makes.
Prints JSON and writes bench/results/history_latency.json. Method: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench import history_seed as seed
from bench.children import RESULTS, ROOT
from bench.stats import distribution

BENCH_DB = "bench_history"
TARGET_P99_MS = 50.0


def bench_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def server_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from chatbot import embedded

    return embedded.postgres_ensure(ROOT / ".data")


def meta_read(url: str) -> dict[str, str]:
    try:
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT key, value FROM bench_meta").fetchall()
    except psycopg.Error:
        return {}
    return {key: value for key, value in rows}


def meta_write(url: str, **values: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)")
        for key, value in values.items():
            conn.execute(
                "INSERT INTO bench_meta VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def database_recreate(server: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    import django

    django.setup()


def users_create(count: int) -> list[int]:
    from chatbot.users.models import User

    unusable = "!"  # a password hash that never matches
    users = [User(username=f"bench-{n}", password=unusable) for n in range(count)]
    return [user.pk for user in User.objects.bulk_create(users)]


def scale_tag(scale: seed.Scale) -> str:
    return f"{seed.SEED_VERSION}:{scale.users}x{scale.conversations}x{scale.messages}"


def seed_database(url: str, server: str, scale: seed.Scale, budget_s: float) -> None:
    """Create, migrate and load the bench database; resumable while ``status`` is loading."""
    from django.core.management import call_command

    meta = meta_read(url)
    if meta.get("scale") != scale_tag(scale) or meta.get("status") not in {"loading", "ready"}:
        database_recreate(server)
        call_command("migrate", verbosity=0)
        user_ids = users_create(scale.users)
        indexes = seed.indexes_drop(url)
        meta_write(
            url,
            scale=scale_tag(scale),
            status="loading",
            user_ids=json.dumps(user_ids),
            indexes=json.dumps(indexes),
        )
        meta = meta_read(url)
    if meta["status"] == "loading":
        started = time.monotonic()
        loaded = seed.load(url, scale, json.loads(meta["user_ids"]), budget_s)
        load_s = time.monotonic() - started
        started = time.monotonic()
        seed.finish(url, [(name, sql) for name, sql in json.loads(meta["indexes"])])
        meta_write(
            url,
            status="ready",
            users_loaded=str(loaded),
            load_s=f"{load_s:.0f}",
            index_s=f"{time.monotonic() - started:.0f}",
        )


def database_facts(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        conversations = conn.execute("SELECT count(*) FROM conversations_conversation")
        messages = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", ("conversations_message",)
        )
        index_size = conn.execute("SELECT pg_size_pretty(pg_relation_size('message_search_owned'))")
        return {
            "database_size": size.fetchone()[0],  # type: ignore[index]
            "conversations": conversations.fetchone()[0],  # type: ignore[index]
            "messages_estimate": messages.fetchone()[0],  # type: ignore[index]
            "message_search_index_size": index_size.fetchone()[0],  # type: ignore[index]
        }


def timed(client: Any, path: str, requests: int) -> dict[str, Any]:
    from django.db import connection

    for _ in range(10):
        client.get(path)
    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code} {response.content[:300]!r}")
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
    body = response.json()
    return {
        "path": path,
        "queries": len(statements),
        "items": len(body["items"]),
        "ms": distribution(samples),
    }


def variants(client: Any) -> dict[str, str]:
    common, medium, rare = seed.term_at_rank(3), seed.term_at_rank(150), seed.term_at_rank(2500)
    first = client.get("/api/v1/conversations?limit=30").json()
    deep = first["next_cursor"]
    for _ in range(30):  # about 900 conversations down
        deep = client.get(f"/api/v1/conversations?limit=30&cursor={deep}").json()["next_cursor"]
    search_page = client.get(f"/api/v1/search?q={medium}&limit=20").json()["next_cursor"]
    return {
        "list_first_page": "/api/v1/conversations?limit=30",
        "list_page_31": f"/api/v1/conversations?limit=30&cursor={deep}",
        "search_common_term": f"/api/v1/search?q={common}&limit=20",
        "search_medium_term": f"/api/v1/search?q={medium}&limit=20",
        "search_medium_term_page_2": f"/api/v1/search?q={medium}&limit=20&cursor={search_page}",
        "search_rare_term": f"/api/v1/search?q={rare}&limit=20",
        "search_two_terms": f"/api/v1/search?q={medium}+{seed.term_at_rank(40)}&limit=20",
        "search_filtered": (
            f"/api/v1/search?q={medium}&limit=20&archived=false&model=gpt-4o"
            "&date_from=2024-06-01&date_to=2025-06-01"
        ),
        "search_common_filtered": (
            f"/api/v1/search?q={common}&limit=20&archived=false&model=gpt-4o"
            "&date_from=2024-06-01&date_to=2025-06-01"
        ),
        "search_pinned": f"/api/v1/search?q={common}&limit=20&pinned=true",
    }


def measure(requests: int) -> dict[str, Any]:
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)  # other apps' tables added since the seed (small)

    from chatbot.users.models import User

    client = Client(SERVER_NAME="localhost")
    client.force_login(User.objects.get(username="bench-0"))
    return {name: timed(client, path, requests) for name, path in variants(client).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=101)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed-budget-s", type=float, default=2400)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args()
    scale = seed.Scale(args.users, args.conversations, args.messages)
    server = server_url()
    url = bench_url(server)
    if args.reseed:
        database_recreate(server)
    django_setup(url)
    started = time.monotonic()
    seed_database(url, server, scale, args.seed_budget_s)
    seed_s = time.monotonic() - started
    if args.seed_only:
        print(json.dumps(meta_read(url) | database_facts(url), indent=2))
        return
    results = measure(args.requests)
    meta = meta_read(url)
    worst = max(r["ms"]["p99"] for r in results.values())
    report = {
        "bench": "history_latency",
        "scale": {
            "users_requested": scale.users,
            "users_loaded": int(meta["users_loaded"]),
            "conversations_per_user": scale.conversations,
            "messages_per_conversation": scale.messages,
        },
        "seed": {
            "this_run_s": round(seed_s),
            "load_s": meta.get("load_s"),
            "index_s": meta.get("index_s"),
        },
        "database": database_facts(url),
        "disk_free": shutil.disk_usage("/work").free // 2**30,
        "results": results,
        "target_p99_ms": TARGET_P99_MS,
        "worst_p99_ms": worst,
        "target_met": worst <= TARGET_P99_MS,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(RESULTS / "history_latency.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
