"""A database of its own for the knowledge benchmarks, kept between runs (ingesting SciFact
takes minutes): the product's database name + ``_bench_knowledge``, on the same server."""

from __future__ import annotations

import os

from bench.databases import database_ensure, database_url_with_suffix

BENCH_SUFFIX = "_bench_knowledge"


def django_setup_bench_database() -> None:
    """Point Django at the bench database (created and migrated when needed), then set up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    from chatbot import settings as product_settings  # starts the embedded services if needed

    url = product_settings.DATABASE_URL
    bench_url = database_url_with_suffix(url, BENCH_SUFFIX)
    database_ensure(url, bench_url)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("REDIS_URL", product_settings.REDIS_URL)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
    import importlib

    importlib.reload(product_settings)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
