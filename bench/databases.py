"""Databases of the benchmarks' own, on the product's PostgreSQL server and kept between runs:
the product's database name plus a suffix per benchmark, created when missing."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def database_url_with_suffix(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + parts.path.lstrip("/") + suffix))


def database_ensure(url: str, bench_url: str) -> None:
    """Create ``bench_url``'s database through the server of ``url`` unless it exists."""
    import psycopg

    name = urlsplit(bench_url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as connection:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        if not connection.execute(query, [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def bench_database(suffix: str) -> str:
    """The URL of the bench database ``<product database><suffix>``, created when missing.

    Reads ``DATABASE_URL``, or starts the embedded server (not through ``chatbot.settings``:
    Django must first see the bench URL).
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    url = os.environ.get("DATABASE_URL")
    if not url:
        from chatbot import embedded

        url = embedded.postgres_ensure(Path(os.environ.get("EMBEDDED_DATA_DIR", ROOT / ".data")))
    bench_url = database_url_with_suffix(url, suffix)
    database_ensure(url, bench_url)
    return bench_url
