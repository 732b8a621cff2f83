"""Ingestion by real Celery worker processes: failures, a killed worker, duplicate tasks."""

from __future__ import annotations

import functools
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import WorkerProcess, start_worker
from knowledge import services
from knowledge.models import Document
from knowledge.tasks import document_ingest_task
from knowledge.tests.conftest import DOCS_FORMATS, chunk_set

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LONG_TEXT = "\n\n".join(
    f"## Part {n}\n\n"
    + " ".join(f"Paragraph {n} sentence {m} about topic {n * m}." for m in range(40))
    for n in range(4)
).encode()


@pytest.fixture
def queue(settings: Any) -> str:
    name = f"test-kn-{uuid.uuid4().hex[:8]}"
    settings.KNOWLEDGE_INGEST_QUEUE = name
    return name


@pytest.fixture
def workers(tmp_path: Path, queue: str, media_root: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers on the test's queue and MEDIA_ROOT; each is stopped at the end."""
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = start_worker(queue, log, env={"MEDIA_ROOT": str(media_root), **env})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def settled(document_id: int) -> bool:
    return Document.objects.get(pk=document_id).status in {"ready", "failed"}


def upload_bytes(collection: Any, data: bytes, filename: str) -> Document:
    document, _ = services.document_upload(
        uploader=collection.owner, collection=collection, chunks=[data], filename=filename
    )
    return document


def test_bad_files_fail_with_a_reason_and_the_worker_keeps_going(collection, workers):
    worker = workers()
    bad = {
        "empty.txt": b"",
        "report.pdf": b"<html><body>" + b"<p>not a pdf</p>" * 3 + b"</body></html>",
        "image.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    }
    encrypted = DOCS_FORMATS / "pdf" / "password.pdf"
    if encrypted.exists():
        bad["password.pdf"] = encrypted.read_bytes()
    documents = [upload_bytes(collection, data, name) for name, data in bad.items()]
    good = upload_bytes(collection, b"Plain words that are fine to read.", "good.txt")
    for document in [*documents, good]:
        wait_for(functools.partial(settled, document.pk))
    outcomes = {d.filename: Document.objects.get(pk=d.pk) for d in documents}
    assert outcomes["empty.txt"].status == "failed"
    assert outcomes["image.png"].status == "failed"
    if "password.pdf" in outcomes:
        assert outcomes["password.pdf"].status == "failed"
        assert "password" in outcomes["password.pdf"].error_reason.lower() or "encrypt" in (
            outcomes["password.pdf"].error_reason.lower()
        )
    for document in outcomes.values():
        if document.status == "failed":
            assert document.error_code and len(document.error_reason) > 10
    assert Document.objects.get(pk=good.pk).status == "ready"
    assert worker.process.poll() is None


def test_a_worker_killed_mid_ingestion_leaves_exactly_one_chunk_set_after_redelivery(
    collection, workers
):
    slow = {"KNOWLEDGE_INGEST_PAUSE_SECONDS": "1", "EMBEDDING_BATCH_SIZE": "2"}
    first = workers(CELERY_VISIBILITY_TIMEOUT="2", **slow)
    document = upload_bytes(collection, LONG_TEXT, "long.md")
    wait_for(lambda: Document.objects.get(pk=document.pk).progress_done >= 2)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    assert Document.objects.get(pk=document.pk).status == "processing"
    time.sleep(2.5)  # past the visibility timeout: the unacknowledged task is redelivered
    workers(CELERY_VISIBILITY_TIMEOUT="2")
    wait_for(lambda: settled(document.pk))
    document.refresh_from_db()
    chunks = chunk_set(document)
    assert document.status == "ready"
    assert document.attempts == 2
    assert {version for version, _ in chunks} == {document.version}
    assert [ordinal for _, ordinal in chunks] == list(range(document.chunk_count))


def test_the_same_task_twice_at_once_leaves_one_chunk_set(collection, workers, queue):
    slow = {"KNOWLEDGE_INGEST_PAUSE_SECONDS": "1", "EMBEDDING_BATCH_SIZE": "4"}
    with ThreadPoolExecutor(2) as pool:  # two workers, started side by side
        list(pool.map(lambda _: workers(**slow), range(2)))
    document, _ = services.document_upload(
        uploader=collection.owner,
        collection=collection,
        chunks=[LONG_TEXT],
        filename="twice.md",
        enqueue=False,
    )
    results = [document_ingest_task.apply_async(args=(document.pk,), queue=queue) for _ in "ab"]
    outcomes = sorted(result.get(timeout=90) for result in results)
    document.refresh_from_db()
    assert outcomes == ["busy", "ready"]
    assert {version for version, _ in chunk_set(document)} == {document.version}
    assert len(chunk_set(document)) == document.chunk_count
