"""The admin: upload through the same service, status and error visible, re-ingest action."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import Document
from knowledge.tests.conftest import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, owner, settings):
    settings.KNOWLEDGE_INGEST_QUEUE = "test-nobody-consumes"
    owner.is_staff = owner.is_superuser = True
    owner.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(owner)
    return client


def test_staff_upload_a_document_through_the_admin(staff_client, collection):
    upload = SimpleUploadedFile("memo.txt", b"A memo about the new parking rules.")
    response = staff_client.post(
        "/admin/knowledge/document/add/",
        {"collection": collection.pk, "title": "Parking memo", "upload": upload},
    )
    assert response.status_code == 302, response.content[:500]
    document = Document.objects.get()
    assert (document.title, document.filename, document.status) == (
        "Parking memo",
        "memo.txt",
        "queued",
    )


def test_a_failed_document_shows_its_reason_and_can_be_ingested_again(staff_client, collection):
    document = ingest(collection, b"", "empty.txt")
    page = staff_client.get(f"/admin/knowledge/document/{document.pk}/change/")
    assert document.error_reason.encode() in page.content
    response = staff_client.post(
        "/admin/knowledge/document/",
        {"action": "reingest", "_selected_action": [document.pk]},
    )
    assert response.status_code == 302
    document.refresh_from_db()
    assert (document.status, document.attempts, document.error_reason) == ("queued", 0, "")
