"""Reads. Every object a client names is loaded through a function that checks the user."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan

from conversations.exceptions import InvalidInput, NotFound
from conversations.models import Conversation, Message
from conversations.turn_sql import HistoryMessage, history_rows

MAX_PAGE = 100


@dataclass(frozen=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None


def conversation_get_for_user(
    *, user: Any, conversation_id: int, for_update: bool = False
) -> Conversation:
    """The user's live conversation, or ``NotFound`` (also for someone else's id)."""
    queryset = Conversation.objects.filter(owner_id=user.pk, deleted_at__isnull=True)
    if for_update:
        queryset = queryset.select_for_update()
    try:
        return queryset.get(pk=conversation_id)
    except Conversation.DoesNotExist:
        raise NotFound("conversation not found") from None


def message_get_for_user(*, user: Any, message_id: int) -> Message:
    """A message in one of the user's live conversations, or ``NotFound``."""
    try:
        return Message.objects.select_related("conversation").get(
            pk=message_id,
            conversation__owner_id=user.pk,
            conversation__deleted_at__isnull=True,
        )
    except Message.DoesNotExist:
        raise NotFound("message not found") from None


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode()


def decode_cursor(cursor: str, count: int) -> list[str]:
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("invalid cursor") from None
    if len(parts) != count:
        raise InvalidInput("invalid cursor")
    return parts


def page_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    return limit


def conversation_list(
    *, user: Any, cursor: str | None = None, limit: int = 30
) -> Page[Conversation]:
    """The user's conversations, most recently updated first, by keyset pagination."""
    limit = page_limit(limit)
    queryset: QuerySet[Conversation] = Conversation.objects.filter(
        owner_id=user.pk, deleted_at__isnull=True
    ).defer("summary")
    if cursor:
        updated_raw, id_raw = decode_cursor(cursor, 2)
        try:
            updated_at, last_id = datetime.fromisoformat(updated_raw), int(id_raw)
        except ValueError:
            raise InvalidInput("invalid cursor") from None
        # A row comparison, not "a < x OR (a = x AND b < y)": PostgreSQL starts the index scan
        # at the cursor instead of reading and discarding every row of the earlier pages.
        queryset = queryset.filter(
            TupleLessThan(Tuple(F("updated_at"), F("id")), (updated_at, last_id))
        )
    rows = list(queryset.order_by("-updated_at", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].updated_at.isoformat(), rows[-1].pk) if more else None
    return Page(rows, next_cursor)


def message_list(
    *, user: Any, conversation_id: int, cursor: str | None = None, limit: int = 50
) -> Page[Message]:
    """A conversation's messages, newest first, by keyset pagination on id."""
    limit = page_limit(limit)
    conversation = conversation_get_for_user(user=user, conversation_id=conversation_id)
    queryset = Message.objects.filter(conversation=conversation)
    if cursor:
        (last_raw,) = decode_cursor(cursor, 1)
        if not last_raw.isdigit():
            raise InvalidInput("invalid cursor")
        queryset = queryset.filter(id__lt=int(last_raw))
    rows = list(queryset.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].pk) if more else None)


def message_history(
    *, conversation: Conversation, before_id: int, limit: int
) -> list[HistoryMessage]:
    """Finished messages before ``before_id`` (newest first), for building a model's context:
    failed messages and empty answers left out (``turn_sql.HISTORY_SQL``)."""
    return history_rows(conversation_id=conversation.pk, before_id=before_id, limit=limit)


def active_turns_older_than(*, cutoff: datetime) -> list[Message]:
    """Assistant messages still pending or streaming that started before ``cutoff``."""
    return list(
        Message.objects.filter(
            status__in=Message.ACTIVE_STATUSES,
            role=Message.Role.ASSISTANT,
            created_at__lt=cutoff,
        ).only("id", "status", "conversation_id", "model")
    )
