"""Fixtures for knowledge tests: users with different access, files on a private MEDIA_ROOT,
and in-process ingestion through the real services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from chatbot.users.tests.factories import UserFactory
from knowledge import services
from knowledge.models import Collection, Document

DOCS_FORMATS = Path(__file__).resolve().parents[3] / "shared" / "data" / "docs-formats"


@pytest.fixture(autouse=True)
def media_root(tmp_path: Path, settings: Any) -> Path:
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture
def owner(db: None) -> Any:
    return UserFactory.create(username="owner", department="research")


@pytest.fixture
def stranger(db: None) -> Any:
    return UserFactory.create(username="stranger", department="sales")


@pytest.fixture
def colleague(db: None) -> Any:
    """In the owner's department, in no group."""
    return UserFactory.create(username="colleague", department="research")


@pytest.fixture
def group_member(db: None) -> Any:
    user = UserFactory.create(username="member", department="legal")
    user.groups.add(Group.objects.get_or_create(name="readers")[0])
    return user


@pytest.fixture
def collection(owner: Any) -> Collection:
    return services.collection_create(owner=owner, name="Private notes")


def upload(collection: Collection, data: bytes, filename: str = "notes.txt", **kw: Any) -> Document:
    document, _ = services.document_upload(
        uploader=collection.owner,
        collection=collection,
        chunks=[data],
        filename=filename,
        enqueue=False,
        **kw,
    )
    return document


def ingest(collection: Collection, data: bytes, filename: str = "notes.txt") -> Document:
    """Upload and ingest in this process; the document, refreshed."""
    document = upload(collection, data, filename)
    services.document_ingest(document_id=document.pk)
    document.refresh_from_db()
    return document


def chunk_set(document: Document) -> list[tuple[int, int]]:
    """(version, ordinal) of every chunk of the document."""
    return list(document.chunks.order_by("version", "ordinal").values_list("version", "ordinal"))


@pytest.fixture(scope="session")
def docs_formats() -> Path:
    """`shared/data/docs-formats/` beside the repository (a corpus of edge cases)."""
    if not DOCS_FORMATS.is_dir():
        pytest.skip(f"sample documents not found at {DOCS_FORMATS}")
    return DOCS_FORMATS


@pytest.fixture(scope="session")
def minilm() -> object:
    """The offline MiniLM provider (about 1 s to load), shared by the session."""
    from llm.minilm import MiniLMProvider

    return MiniLMProvider(threads=1)
