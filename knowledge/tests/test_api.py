"""REST: collections and documents, with access checked on every id."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge import services
from knowledge.models import Chunk, Document
from knowledge.tests.conftest import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, owner, settings):
    settings.KNOWLEDGE_INGEST_QUEUE = "test-nobody-consumes"  # the upload queues; nothing runs
    client.force_login(owner)
    return client


def post_file(api, collection_id, data=b"Some words.", name="a.txt"):
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return api.post(f"/api/v1/collections/{collection_id}/documents", {"file": upload})


def test_create_and_list_collections(api):
    created = api.post(
        "/api/v1/collections",
        {"name": "Handbook", "visibility": "everyone"},
        content_type="application/json",
    )
    assert created.status_code == 201
    assert created.json()["writable"] is True
    names = [c["name"] for c in api.get("/api/v1/collections").json()]
    assert names == ["Handbook"]


def test_a_bad_visibility_is_a_400_with_a_code(api):
    response = api.post(
        "/api/v1/collections",
        {"name": "X", "visibility": "friends"},
        content_type="application/json",
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_upload_then_read_its_status(api, collection):
    response = post_file(api, collection.pk)
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["filename"], body["progress"]) == (
        "queued",
        "a.txt",
        {"done": 0, "total": 0},
    )
    status = api.get(f"/api/v1/documents/{body['id']}").json()
    assert status["status"] == "queued"


def test_the_same_file_twice_returns_the_first_document(api, collection):
    first = post_file(api, collection.pk).json()
    again = post_file(api, collection.pk, name="other-name.txt")
    assert (again.status_code, again.json()["id"]) == (200, first["id"])


def test_an_oversize_upload_is_a_413(api, collection, settings):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 10
    response = post_file(api, collection.pk, data=b"x" * 11)
    assert (response.status_code, response.json()["code"]) == (413, "too_large")
    assert Document.objects.count() == 0


def test_someone_elses_private_collection_and_documents_are_404(client, stranger, collection):
    document = ingest(collection, b"Private words of the owner.")
    client.force_login(stranger)
    assert post_file(client, collection.pk).status_code == 404
    assert client.get(f"/api/v1/documents/{document.pk}").status_code == 404
    assert client.get(f"/api/v1/documents/{document.pk}/file").status_code == 404
    assert client.delete(f"/api/v1/documents/{document.pk}").status_code == 404
    assert Document.objects.filter(pk=document.pk).exists()


def test_a_reader_of_a_shared_collection_cannot_upload_to_it(client, owner, stranger):
    shared = services.collection_create(owner=owner, name="Shared", visibility="everyone")
    client.force_login(stranger)
    assert post_file(client, shared.pk).status_code == 404


def test_delete_removes_the_document_and_its_chunks(api, collection):
    document = ingest(collection, b"Words that will be deleted soon.")
    assert Chunk.objects.filter(document=document).exists()
    assert api.delete(f"/api/v1/documents/{document.pk}").status_code == 204
    assert not Chunk.objects.filter(document_id=document.pk).exists()
    assert api.get(f"/api/v1/documents/{document.pk}").status_code == 404


def test_the_source_file_downloads_for_a_reader(api, collection):
    document = ingest(collection, b"Downloadable words.")
    response = api.get(f"/api/v1/documents/{document.pk}/file")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"Downloadable words."
    assert "attachment" in response["Content-Disposition"]
