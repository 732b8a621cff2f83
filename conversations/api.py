"""REST for conversations and messages (mounted at /api/v1/); answers stream as SSE."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema, Status

from chatbot.users.auth import api_auth
from conversations import selectors, services
from conversations.answer_cache import cache_mode_of_header
from conversations.delivery import turn_frames
from conversations.exceptions import InvalidInput
from conversations.generation import turn_launch
from conversations.models import Conversation, Message
from conversations.runtime import db

router = Router(auth=api_auth, tags=["conversations"])


class ConversationOut(Schema):
    id: int
    title: str
    model: str
    pinned: bool
    archived: bool
    folder_id: int | None
    created_at: datetime
    updated_at: datetime


class ConversationIn(Schema):
    title: str = Field("", max_length=200)
    model: str | None = Field(None, max_length=100)


class ConversationPatch(Schema):
    title: str | None = Field(None, max_length=200)
    pinned: bool | None = None
    archived: bool | None = None
    model: str | None = Field(None, min_length=1, max_length=100)


class MessageOut(Schema):
    id: int
    role: str
    content: str
    status: str
    model: str
    error_code: str
    error_detail: str
    prompt_tokens: int
    completion_tokens: int
    citations: list[dict[str, Any]]
    created_at: datetime


class MessageIn(Schema):
    content: str
    idempotency_key: str | None = Field(None, max_length=64)


class PageParams(Schema):
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(30, ge=1, le=100)


class ConversationPage(Schema):
    items: list[ConversationOut]
    next_cursor: str | None


class MessagePage(Schema):
    items: list[MessageOut]
    next_cursor: str | None


class ErrorOut(Schema):
    code: str
    detail: str


def caller(request: HttpRequest) -> Any:
    """The authenticated user (ninja puts what the auth class returned on ``request.auth``)."""
    return request.auth  # type: ignore[attr-defined]


ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    402: ErrorOut,  # quota_exceeded (billing), with reset_at
    404: ErrorOut,
    409: ErrorOut,
    429: ErrorOut,  # rate_limited (billing), with Retry-After
}


@router.post("/conversations", response={201: ConversationOut, **ERRORS})
def conversation_create(request: HttpRequest, payload: ConversationIn) -> Status[Conversation]:
    conversation = services.conversation_create(
        owner=caller(request), title=payload.title, model=payload.model
    )
    return Status(201, conversation)


@router.get("/conversations", response=ConversationPage)
def conversation_list(
    request: HttpRequest, params: Query[PageParams]
) -> selectors.Page[Conversation]:
    return selectors.conversation_list(
        user=caller(request),
        cursor=params.cursor,
        limit=params.limit,
    )


@router.get("/conversations/{conversation_id}", response={200: ConversationOut, **ERRORS})
def conversation_detail(request: HttpRequest, conversation_id: int) -> Conversation:
    return selectors.conversation_get_for_user(
        user=caller(request),
        conversation_id=conversation_id,
    )


@router.patch("/conversations/{conversation_id}", response={200: ConversationOut, **ERRORS})
def conversation_update(
    request: HttpRequest, conversation_id: int, payload: ConversationPatch
) -> Conversation:
    conversation = selectors.conversation_get_for_user(
        user=caller(request),
        conversation_id=conversation_id,
    )
    return services.conversation_update(
        conversation=conversation, **payload.dict(exclude_unset=True)
    )


@router.delete("/conversations/{conversation_id}", response={204: None, **ERRORS})
def conversation_delete(request: HttpRequest, conversation_id: int) -> Status[None]:
    conversation = selectors.conversation_get_for_user(
        user=caller(request),
        conversation_id=conversation_id,
    )
    services.conversation_delete(conversation=conversation)
    return Status(204, None)


@router.get("/conversations/{conversation_id}/messages", response={200: MessagePage, **ERRORS})
def message_list(
    request: HttpRequest, conversation_id: int, params: Query[PageParams]
) -> selectors.Page[Message]:
    return selectors.message_list(
        user=caller(request),
        conversation_id=conversation_id,
        cursor=params.cursor,
        limit=params.limit,
    )


SSE_DOC: dict[str, Any] = {"responses": {200: {"content": {"text/event-stream": {}}}}}


@router.post(
    "/conversations/{conversation_id}/messages",
    response={200: None, **ERRORS},
    openapi_extra=SSE_DOC,
    summary="Send a message; the answer streams back as server-sent events",
)
async def message_send(
    request: HttpRequest, conversation_id: int, payload: MessageIn
) -> StreamingHttpResponse:
    key = payload.idempotency_key or request.headers.get("Idempotency-Key", "")
    if not key:
        raise InvalidInput("idempotency_key (or an Idempotency-Key header) is required")
    turn = await turn_launch(
        user=caller(request),
        conversation_id=conversation_id,
        content=payload.content,
        idempotency_key=key,
        watchers=0,
        cache=cache_mode_of_header(request.headers.get("Cache-Control", "")),
    )
    message_id = turn.assistant_message.pk
    started = {"message_id": message_id, "user_message_id": turn.user_message.pk}
    return sse_response(turn_events(message_id, 0, started, live=turn.created))


@router.get(
    "/messages/{message_id}/stream",
    response={200: None, **ERRORS},
    openapi_extra=SSE_DOC,
    summary="Resume an answer's stream after Last-Event-ID (or ?cursor=)",
)
async def message_stream(
    request: HttpRequest, message_id: int, cursor: int = 0
) -> StreamingHttpResponse:
    last_event = request.headers.get("Last-Event-ID", "")
    if last_event:
        if not last_event.isdigit():
            raise InvalidInput("Last-Event-ID must be a sequence number")
        cursor = int(last_event)
    if cursor < 0:
        raise InvalidInput("cursor must be 0 or more")
    message = await db(selectors.message_get_for_user)(
        user=caller(request),
        message_id=message_id,
    )
    return sse_response(turn_events(message.pk, cursor, None))


def sse_event(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def turn_events(
    message_id: int, cursor: int, started: dict[str, Any] | None, *, live: bool = False
) -> AsyncIterator[bytes]:
    if started is not None:
        yield sse_event("started", started)
    async for frame in turn_frames(message_id, cursor, live=live):
        kind = frame.pop("type")
        if kind == "turn.delta":
            yield sse_event("delta", frame, frame["seq"])
        else:
            yield sse_event("done", frame)


def sse_response(events: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx and friends: do not buffer the stream
    return response
