"""REST for history (mounted at /api/v1/): search, folders, trash, share links, export, account."""

from __future__ import annotations

from datetime import date, datetime

from django.contrib.auth import logout
from django.http import FileResponse, HttpRequest
from ninja import Field, Query, Router, Schema, Status

from chatbot.users.auth import api_auth
from conversations import exports, folders, retention, search, selectors, shares
from conversations.api import ERRORS, ConversationOut, ConversationPage, ErrorOut, caller
from conversations.exceptions import InvalidInput
from conversations.models import Conversation, Export, Folder, ShareLink

router = Router(auth=api_auth, tags=["history"])


class SearchParams(Schema):
    q: str = Field(..., max_length=search.MAX_QUERY_CHARS)
    pinned: bool | None = None
    archived: bool | None = None
    folder_id: int | None = None
    model: str | None = Field(None, max_length=100)
    date_from: date | None = None
    date_to: date | None = None
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(20, ge=1, le=100)


class SearchHitOut(Schema):
    conversation_id: int
    conversation_title: str
    message_id: int | None
    role: str
    snippet_html: str
    rank: float
    created_at: datetime


class SearchPageOut(Schema):
    items: list[SearchHitOut]
    next_cursor: str | None
    approximate: bool = Field(
        description=(
            "True when more messages (or titles) matched than are ranked: only the newest "
            "SEARCH_MAX_CANDIDATES matches (500 by default) are ranked, so an older, better "
            "match may be missing. Narrow the search (more words, filters, a date range) to "
            "rank them all."
        )
    )


@router.get("/search", response={200: SearchPageOut, **ERRORS})
def conversation_search(request: HttpRequest, params: Query[SearchParams]) -> search.SearchPage:
    """Full-text search of your titles and messages; ``snippet_html`` is escaped, with <mark>."""
    filters = search.SearchFilters(
        pinned=params.pinned,
        archived=params.archived,
        folder_id=params.folder_id,
        model=params.model,
        date_from=params.date_from,
        date_to=params.date_to,
    )
    return search.conversation_search(
        user=caller(request),
        query=params.q,
        filters=filters,
        cursor=params.cursor,
        limit=params.limit,
    )


class FolderIn(Schema):
    name: str = Field(..., max_length=folders.MAX_FOLDER_CHARS)


class FolderOut(Schema):
    id: int
    name: str
    created_at: datetime


@router.get("/folders", response=list[FolderOut])
def folder_list(request: HttpRequest) -> list[Folder]:
    return folders.folder_list(user=caller(request))


@router.post("/folders", response={201: FolderOut, **ERRORS})
def folder_create(request: HttpRequest, payload: FolderIn) -> Status[Folder]:
    return Status(201, folders.folder_create(user=caller(request), name=payload.name))


@router.patch("/folders/{folder_id}", response={200: FolderOut, **ERRORS})
def folder_rename(request: HttpRequest, folder_id: int, payload: FolderIn) -> Folder:
    folder = folders.folder_get_for_user(user=caller(request), folder_id=folder_id)
    return folders.folder_rename(folder=folder, name=payload.name)


@router.delete("/folders/{folder_id}", response={204: None, **ERRORS})
def folder_delete(request: HttpRequest, folder_id: int) -> Status[None]:
    folder = folders.folder_get_for_user(user=caller(request), folder_id=folder_id)
    folders.folder_delete(folder=folder)
    return Status(204, None)


class MoveIn(Schema):
    folder_id: int | None


@router.put("/conversations/{conversation_id}/folder", response={200: ConversationOut, **ERRORS})
def conversation_move(request: HttpRequest, conversation_id: int, payload: MoveIn) -> Conversation:
    user = caller(request)
    conversation = selectors.conversation_get_for_user(user=user, conversation_id=conversation_id)
    folder = None
    if payload.folder_id is not None:
        folder = folders.folder_get_for_user(user=user, folder_id=payload.folder_id)
    return folders.conversation_move(conversation=conversation, folder=folder)


class TrashParams(Schema):
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(30, ge=1, le=100)


@router.get("/trash", response={200: ConversationPage, **ERRORS})
def trash_list(request: HttpRequest, params: Query[TrashParams]) -> selectors.Page[Conversation]:
    """Deleted conversations you can still restore (for ``TRASH_RETENTION_DAYS``)."""
    return retention.trash_list(user=caller(request), cursor=params.cursor, limit=params.limit)


@router.post("/conversations/{conversation_id}/restore", response={200: ConversationOut, **ERRORS})
def conversation_restore(request: HttpRequest, conversation_id: int) -> Conversation:
    return retention.conversation_restore(user=caller(request), conversation_id=conversation_id)


class ShareIn(Schema):
    include_snippets: bool = False
    expires_in_days: int | None = Field(None, ge=1, le=shares.MAX_EXPIRY_DAYS)


class ShareOut(Schema):
    id: int
    url: str
    conversation_id: int
    title: str
    include_snippets: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    view_count: int
    created_at: datetime

    @staticmethod
    def resolve_url(share: ShareLink) -> str:
        return f"/s/{share.token}"


@router.post(
    "/conversations/{conversation_id}/shares", response={201: ShareOut, 403: ErrorOut, **ERRORS}
)
def share_create(request: HttpRequest, conversation_id: int, payload: ShareIn) -> Status[ShareLink]:
    """A public read-only link to the conversation as it is now (later messages never show)."""
    conversation = selectors.conversation_get_for_user(
        user=caller(request), conversation_id=conversation_id
    )
    share = shares.share_create(
        conversation=conversation,
        include_snippets=payload.include_snippets,
        expires_in_days=payload.expires_in_days,
    )
    return Status(201, share)


@router.get("/shares", response=list[ShareOut])
def share_list(request: HttpRequest) -> list[ShareLink]:
    return shares.share_list(user=caller(request))


@router.delete("/shares/{share_id}", response={200: ShareOut, **ERRORS})
def share_revoke(request: HttpRequest, share_id: int) -> ShareLink:
    share = shares.share_get_for_user(user=caller(request), share_id=share_id)
    return shares.share_revoke(share=share)


@router.post("/shared/{token}/continue", response={201: ConversationOut, **ERRORS})
def share_continue(request: HttpRequest, token: str) -> Status[Conversation]:
    """Copy a shared conversation into a new private conversation of yours."""
    return Status(201, shares.share_continue(user=caller(request), token=token))


class ExportOut(Schema):
    id: int
    status: str
    done: int
    total: int
    size_bytes: int
    created_at: datetime
    expires_at: datetime | None
    download_url: str | None

    @staticmethod
    def resolve_download_url(export: Export) -> str | None:
        if export.status != Export.Status.READY:
            return None
        return f"/api/v1/exports/{export.pk}/download"


@router.post("/exports", response={202: ExportOut, **ERRORS})
def export_start(request: HttpRequest) -> Status[Export]:
    """Start a zip of all your conversations (JSON and Markdown); poll it, then download."""
    return Status(202, exports.export_start(user=caller(request)))


@router.get("/exports/{export_id}", response={200: ExportOut, **ERRORS})
def export_detail(request: HttpRequest, export_id: int) -> Export:
    return exports.export_get_for_user(user=caller(request), export_id=export_id)


@router.get("/exports/{export_id}/download", response={200: None, **ERRORS})
def export_download(request: HttpRequest, export_id: int) -> FileResponse:
    path = exports.export_file_for_user(user=caller(request), export_id=export_id)
    return FileResponse(path.open("rb"), as_attachment=True, filename="conversations.zip")


class AccountDeleteIn(Schema):
    confirm: str = Field(..., max_length=150, description="Your username, to confirm.")


@router.delete("/account", response={204: None, **ERRORS})
def account_delete(request: HttpRequest, payload: AccountDeleteIn) -> Status[None]:
    """Delete your account and everything of yours, now. Not reversible."""
    user = caller(request)
    if payload.confirm != user.get_username():
        raise InvalidInput("confirm must be your username")
    retention.account_delete(user=user)
    logout(request)
    return Status(204, None)
