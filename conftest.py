"""Project-wide fixtures: real services only (PostgreSQL, Redis, a Celery worker process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

PROJECT_DIR = Path(__file__).resolve().parent


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    queue: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes started by a test."""
    db = connection.settings_dict
    return f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def worker_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatbot.settings_test",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
    }


def web_listening_port(process: subprocess.Popen[bytes], log_path: Path) -> int:
    """The port a ``python -m chatbot.serve -p 0`` process bound, read back from its log."""
    deadline = time.monotonic() + 30
    while True:
        log = log_path.read_text(errors="replace")
        # uvicorn: "running on http://127.0.0.1:N"; daphne: "Listening on TCP address 127.0.0.1:N"
        found = re.search(r"(?:http://|TCP address )127\.0\.0\.1:(\d+)", log)
        if found:
            return int(found.group(1))
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the web process did not start:\n{log}")
        time.sleep(0.1)


def start_worker(
    queue: str,
    log_path: Path,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    cmd = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-Q", queue]
    cmd += ["--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    cmd += ["-n", f"{queue}@%h", *(extra_args or [])]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd,
            cwd=PROJECT_DIR,
            env={**worker_env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, queue, log_path)
    deadline = time.monotonic() + 60
    while "ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Celery worker did not start:\n{worker.log()}")
        time.sleep(0.1)
    return worker


@pytest.fixture
def celery_worker_process(tmp_path: Path) -> Iterator[WorkerProcess]:
    """A real Celery worker process consuming a queue of its own, on the test database."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(queue, tmp_path / "worker.log")
    yield worker
    worker.process.terminate()
    try:
        worker.process.wait(10)
    except subprocess.TimeoutExpired:
        worker.process.kill()


@pytest.fixture(scope="session", autouse=True)
def fresh_redis_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Start each session with this worker's Redis database empty (ids restart with the test
    database, so leftover turn streams would collide); at the end, end stray connections that
    worker threads of async tests still hold, so the test database can be dropped."""
    import redis

    with redis.Redis.from_url(settings.REDIS_URL) as client:
        client.flushdb()
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
