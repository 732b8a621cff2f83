"""Uploads and ingestion through the services, in this process (the worker has its own tests)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from knowledge import services
from knowledge.exceptions import Conflict, InvalidInput, TooLarge
from knowledge.models import Chunk, Document
from knowledge.tests.conftest import chunk_set, ingest, upload

pytestmark = pytest.mark.django_db

TEXT = (
    b"# Travel policy\n\nEmployees book trains for trips under four hours. "
    b"Flights need approval from a director.\n\n## Expenses\n\nReceipts are kept for ten years.\n"
)


def test_the_same_file_uploaded_twice_is_one_document(collection):
    first = upload(collection, TEXT, "a.md")
    second, created = services.document_upload(
        uploader=collection.owner, collection=collection, chunks=[TEXT], filename="b.md"
    )
    assert (second.pk, created) == (first.pk, False)
    assert Document.objects.count() == 1


def test_an_upload_over_the_size_limit_is_refused_and_nothing_is_kept(
    collection, settings, media_root
):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(TooLarge):
        upload(collection, b"x" * 600 + b"y" * 600)
    assert Document.objects.count() == 0
    assert [p for p in Path(media_root).rglob("*") if p.is_file()] == []


def test_a_second_collection_with_the_same_name_is_a_conflict(collection):
    with pytest.raises(Conflict):
        services.collection_create(owner=collection.owner, name=collection.name)


def test_ingestion_makes_the_document_ready_with_its_chunks(collection):
    document = ingest(collection, TEXT, "policy.md")
    assert document.status == Document.Status.READY
    assert (document.version, document.attempts) == (1, 1)
    assert document.chunk_count == document.chunks.count() > 0
    assert document.media_type
    assert all(c.embedding is not None for c in document.chunks.all())


def test_a_redelivered_task_after_success_changes_nothing(collection):
    document = ingest(collection, TEXT)
    before = chunk_set(document)
    assert services.document_ingest(document_id=document.pk) == "skipped"
    assert chunk_set(document) == before


def test_ingesting_again_leaves_exactly_one_chunk_set_of_the_new_version(collection):
    document = ingest(collection, TEXT)
    services.document_reingest(document=document)
    assert services.document_ingest(document_id=document.pk) == "ready"
    document.refresh_from_db()
    versions = {version for version, _ in chunk_set(document)}
    assert (document.version, versions) == (2, {2})
    assert len(chunk_set(document)) == document.chunk_count


def test_a_run_while_another_holds_the_document_steps_aside(collection):
    document = upload(collection, TEXT)
    other = connection.copy()  # a second session, as a second worker would have
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(%s, %s)", [services.INGEST_LOCK_NAMESPACE, document.pk]
            )
        assert services.document_ingest(document_id=document.pk) == "busy"
    finally:
        other.close()  # the lock dies with the session, as with a killed worker
    outcome = "busy"
    for _ in range(50):  # the server ends the closed session a moment later
        outcome = services.document_ingest(document_id=document.pk)
        if outcome != "busy":
            break
        time.sleep(0.05)
    assert outcome == "ready"
    assert len(chunk_set(document)) == Document.objects.get(pk=document.pk).chunk_count


def test_a_file_that_is_not_what_its_name_says_fails_with_a_reason(collection):
    document = ingest(collection, b"<html><body><p>Hello</p></body></html>", "report.pdf")
    # Detected by content: HTML named .pdf is read as HTML, or refused with a reason.
    assert document.status in {Document.Status.READY, Document.Status.FAILED}
    if document.status == Document.Status.FAILED:
        assert document.error_reason


def test_a_document_without_text_fails_with_a_reason_a_person_understands(collection):
    document = ingest(collection, b"   \n\n  \t ", "blank.txt")
    assert document.status == Document.Status.FAILED
    assert document.error_code
    assert len(document.error_reason) > 10
    assert document.chunks.count() == 0


def test_after_the_last_attempt_the_document_fails_for_good(collection, settings):
    document = upload(collection, TEXT)
    Document.objects.filter(pk=document.pk).update(attempts=settings.KNOWLEDGE_MAX_ATTEMPTS)
    assert services.document_ingest(document_id=document.pk) == "skipped"
    document.refresh_from_db()
    assert (document.status, document.error_code) == ("failed", "attempts_exhausted")


def test_deleting_a_document_removes_its_chunks_and_file(
    collection, django_capture_on_commit_callbacks
):
    document = ingest(collection, TEXT)
    path = Path(document.file.path)
    assert path.exists() and Chunk.objects.filter(document=document).exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.document_delete(document=document)
    assert not Chunk.objects.filter(document_id=document.pk).exists()
    assert not path.exists()


def test_documents_stuck_past_the_bound_are_queued_again(
    collection, django_capture_on_commit_callbacks, monkeypatch
):
    stuck = upload(collection, TEXT, "stuck.md")
    fresh = upload(collection, TEXT + b"!", "fresh.md")
    done = ingest(collection, TEXT + b"!!", "done.md")
    long_ago = timezone.now() - timedelta(hours=2)
    Document.objects.filter(pk__in=[stuck.pk, done.pk]).update(status_changed_at=long_ago)
    queued: list[int] = []
    monkeypatch.setattr(
        services, "ingest_enqueue", lambda *, document_id: queued.append(document_id)
    )
    with django_capture_on_commit_callbacks(execute=True):
        ids = services.documents_requeue_stuck(older_than=timedelta(hours=1))
    assert ids == queued == [stuck.pk]
    assert fresh.pk not in ids and done.pk not in ids


def test_local_files_and_directories_are_found_recursively(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.md").write_text("one")
    (tmp_path / "two.txt").write_text("two")
    assert services.files_under([tmp_path]) == [tmp_path / "a" / "one.md", tmp_path / "two.txt"]
    with pytest.raises(InvalidInput):
        services.files_under([tmp_path / "missing"])
