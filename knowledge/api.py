"""REST for collections and documents (mounted at /api/v1/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import FileResponse, HttpRequest
from ninja import Field, File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from chatbot.users.auth import api_auth
from knowledge import selectors, services
from knowledge.models import Collection, Document

router = Router(auth=api_auth, tags=["knowledge"])


class CollectionIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    visibility: str = Field(Collection.Visibility.OWNER, max_length=20)
    groups: list[str] = Field(default_factory=list, max_length=50)
    departments: list[str] = Field(default_factory=list, max_length=50)


class CollectionOut(Schema):
    id: int
    name: str
    description: str
    visibility: str
    departments: list[str]
    writable: bool  # the caller may upload to it
    created_at: datetime


class DocumentOut(Schema):
    id: int
    collection_id: int
    title: str
    filename: str
    media_type: str
    size: int
    status: str
    error_code: str
    error_reason: str
    attempts: int
    version: int
    page_count: int | None
    chunk_count: int
    progress: dict[str, int]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_progress(document: Document) -> dict[str, int]:
        return {"done": document.progress_done, "total": document.progress_total}


class ErrorOut(Schema):
    code: str
    detail: str


ERRORS: dict[int, type[Schema]] = {400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut}


def caller(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def collection_out(collection: Collection, user: Any) -> dict[str, Any]:
    writable = collection.owner_id == user.pk or user.is_staff
    fields = ("id", "name", "description", "visibility", "departments", "created_at")
    return {**{name: getattr(collection, name) for name in fields}, "writable": writable}


@router.post("/collections", response={201: CollectionOut, **ERRORS})
def collection_create(request: HttpRequest, payload: CollectionIn) -> Status[dict[str, Any]]:
    collection = services.collection_create(
        owner=caller(request),
        name=payload.name,
        description=payload.description,
        visibility=payload.visibility,
        group_names=payload.groups,
        departments=payload.departments,
    )
    return Status(201, collection_out(collection, caller(request)))


@router.get("/collections", response=list[CollectionOut])
def collection_list(request: HttpRequest) -> list[dict[str, Any]]:
    user = caller(request)
    return [collection_out(c, user) for c in selectors.collection_list_for_user(user=user)]


@router.post(
    "/collections/{collection_id}/documents",
    response={201: DocumentOut, 200: DocumentOut, **ERRORS},
)
def document_upload(
    request: HttpRequest,
    collection_id: int,
    file: File[UploadedFile],
    title: Form[str] = "",
) -> Status[Document]:
    """Upload a file; 201 for a new document, 200 with the existing one for a duplicate."""
    collection = selectors.collection_get_for_writer(
        user=caller(request), collection_id=collection_id
    )
    document, created = services.document_upload(
        uploader=caller(request),
        collection=collection,
        chunks=file.chunks(),
        filename=file.name or "upload",
        title=title[:300],
    )
    return Status(201 if created else 200, document)


@router.get("/documents/{document_id}", response={200: DocumentOut, **ERRORS})
def document_detail(request: HttpRequest, document_id: int) -> Document:
    return selectors.document_get_for_user(user=caller(request), document_id=document_id)


@router.get("/documents/{document_id}/file", response={200: None, **ERRORS})
def document_file(request: HttpRequest, document_id: int) -> FileResponse:
    """The stored file, as an attachment (never rendered inline: it is untrusted content)."""
    document = selectors.document_get_for_user(user=caller(request), document_id=document_id)
    return FileResponse(document.file.open("rb"), as_attachment=True, filename=document.filename)


@router.delete("/documents/{document_id}", response={204: None, **ERRORS})
def document_delete(request: HttpRequest, document_id: int) -> Status[None]:
    document = selectors.document_get_for_writer(user=caller(request), document_id=document_id)
    services.document_delete(document=document)
    return Status(204, None)
