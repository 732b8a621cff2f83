"""The plan's upload limits on the knowledge base: file size and storage quota (413s with a
code), checked under a per-user lock; local ingestion is exempt."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client

from billing.tests.conftest import plan_make, user_on
from billing.upload_limits import STORAGE_LOCK_NAMESPACE, PlanUploadLimit
from knowledge import services, upload_limits
from knowledge.exceptions import StorageQuotaExceeded
from knowledge.models import Collection, Document

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, settings: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KNOWLEDGE_INGEST_QUEUE = "test-nobody-consumes"  # uploads queue; nothing runs
    settings.BILLING_PLAN_CACHE_SECONDS = 0


def uploader(**limits: Any) -> tuple[Any, Collection]:
    user = user_on(plan_make(**limits))
    return user, services.collection_create(owner=user, name="Mine")


def post(user: Any, collection: Collection, data: bytes, name: str = "a.txt") -> Any:
    client = Client()
    client.force_login(user)
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client.post(f"/api/v1/collections/{collection.pk}/documents", {"file": upload})


def answer(response: Any) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "")


def test_an_upload_within_the_plan_is_stored():
    user, collection = uploader(max_upload_bytes=100, storage_bytes=1000)
    assert post(user, collection, b"x" * 100).status_code == 201


def test_a_file_over_the_plans_size_is_a_413_too_large():
    user, collection = uploader(max_upload_bytes=100, storage_bytes=1000)
    assert answer(post(user, collection, b"x" * 101)) == (413, "too_large")
    assert Document.objects.count() == 0


def test_the_setting_limits_a_plan_that_allows_more(settings):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 50
    user, collection = uploader(max_upload_bytes=100, storage_bytes=1000)
    assert answer(post(user, collection, b"x" * 51)) == (413, "too_large")


def test_passing_the_storage_quota_is_a_413_storage_quota_exceeded():
    user, collection = uploader(max_upload_bytes=100, storage_bytes=250)
    assert post(user, collection, b"a" * 100).status_code == 201
    assert post(user, collection, b"b" * 100).status_code == 201
    response = post(user, collection, b"c" * 51)
    assert answer(response) == (413, "storage_quota_exceeded")
    assert Document.objects.filter(uploader=user).count() == 2
    assert post(user, collection, b"d" * 50).status_code == 201  # exactly the quota is fine


def test_the_same_file_again_is_not_charged_twice():
    user, collection = uploader(max_upload_bytes=100, storage_bytes=100)
    first = post(user, collection, b"a" * 100)
    again = post(user, collection, b"a" * 100, name="copy.txt")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])


def test_deleting_a_document_frees_its_storage():
    user, collection = uploader(max_upload_bytes=100, storage_bytes=100)
    document_id = post(user, collection, b"a" * 100).json()["id"]
    assert answer(post(user, collection, b"b" * 10)) == (413, "storage_quota_exceeded")
    services.document_delete(document=Document.objects.get(pk=document_id))
    assert post(user, collection, b"b" * 10).status_code == 201


def test_other_users_files_do_not_use_my_storage():
    user, collection = uploader(max_upload_bytes=100, storage_bytes=100)
    other, theirs = uploader(max_upload_bytes=100, storage_bytes=1000)
    assert post(other, theirs, b"o" * 100).status_code == 201
    assert post(user, collection, b"m" * 100).status_code == 201


def test_zero_means_no_limit():
    user, collection = uploader(max_upload_bytes=0, storage_bytes=0)
    assert post(user, collection, b"x" * 5000).status_code == 201
    assert post(user, collection, b"y" * 5000).status_code == 201


def test_manage_py_ingest_is_exempt(tmp_path):
    user, _ = uploader(max_upload_bytes=10, storage_bytes=10)
    (tmp_path / "big.txt").write_bytes(b"Words about herons. " * 10)
    call_command("ingest", str(tmp_path / "big.txt"), collection="Ops", owner=user.username,
                 queue=True)  # fmt: skip
    assert Document.objects.filter(uploader=user, size=200).count() == 1


def test_the_demo_seed_is_exempt(settings, tmp_path):
    from knowledge.demo import demo_collection_seed

    settings.BASE_DIR = tmp_path
    (tmp_path / "README.md").write_bytes(b"# Demo\n\n" + b"Text of the demo. " * 20)
    user, _ = uploader(max_upload_bytes=10, storage_bytes=10)
    settings.KNOWLEDGE_INGEST_QUEUE = "test-nobody-consumes"
    demo_collection_seed(owner_username=user.username)
    assert Document.objects.filter(uploader=user).count() == 1


def test_the_plan_limit_registers_once():
    upload_limits.upload_limit_register(PlanUploadLimit())
    assert sum(isinstance(limit, PlanUploadLimit) for limit in upload_limits.registered) == 1


@pytest.mark.django_db(transaction=True)
def test_two_uploads_at_once_cannot_both_pass_the_quota():
    user, collection = uploader(max_upload_bytes=100, storage_bytes=150)
    outcomes: list[str] = []

    def upload(data: bytes) -> None:
        try:
            services.document_upload(
                uploader=user, collection=collection, chunks=[data], filename="f.txt",
                enqueue=False,
            )  # fmt: skip
            outcomes.append("stored")
        except StorageQuotaExceeded:
            outcomes.append("refused")
        finally:
            connections.close_all()

    # Hold the user's storage lock so both uploads reach the check before either commits.
    dsn = connection.get_connection_params()
    with psycopg.connect(**dsn) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", [STORAGE_LOCK_NAMESPACE, user.pk])
        threads = [threading.Thread(target=upload, args=(b"%d" % n * 100,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        for _ in range(200):
            row = holder.execute(waiting).fetchone()
            if row and row[0] == 2:
                break
            threading.Event().wait(0.05)
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", [STORAGE_LOCK_NAMESPACE, user.pk])
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["refused", "stored"]
    assert Document.objects.filter(uploader=user).count() == 1
