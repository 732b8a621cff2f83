"""Trash, purge and account deletion: how a user's history leaves the database.

Deleting a conversation is soft (``deleted_at``); it can be restored for
``TRASH_RETENTION_DAYS`` and is then purged by a beat task. Hard deletes go through
``conversations_hard_delete``: messages are removed with one statement per batch instead of
Django's collector (which would load every message into memory), after other apps' rows that
point at them were detached or deleted by their own ``on_delete`` rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection, models, transaction
from django.utils import timezone

from conversations.exceptions import NotFound
from conversations.exports import export_files_remove
from conversations.models import Conversation, Export, Message, ShareLink, UserSession
from conversations.selectors import Page, decode_cursor, encode_cursor, page_limit

PURGE_BATCH = 500
OWN_MODELS: set[type[models.Model]] = {Conversation, Message, ShareLink}


def trash_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.TRASH_RETENTION_DAYS)


def trash_list(*, user: Any, cursor: str | None = None, limit: int = 30) -> Page[Conversation]:
    """The user's deleted, still restorable conversations, most recently deleted first."""
    limit = page_limit(limit)
    queryset = Conversation.objects.filter(owner_id=user.pk, deleted_at__gte=trash_cutoff()).defer(
        "summary"
    )
    if cursor:
        (last_raw,) = decode_cursor(cursor, 1)
        if not last_raw.isdigit():
            from conversations.exceptions import InvalidInput

            raise InvalidInput("invalid cursor")
        queryset = queryset.filter(id__lt=int(last_raw))
    rows = list(queryset.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].pk) if more else None)


@transaction.atomic
def conversation_restore(*, user: Any, conversation_id: int) -> Conversation:
    """Bring a conversation back from the trash (``NotFound`` once purged or past retention)."""
    conversation = (
        Conversation.objects.select_for_update()
        .filter(pk=conversation_id, owner_id=user.pk, deleted_at__gte=trash_cutoff())
        .first()
    )
    if conversation is None:
        raise NotFound("conversation not found in the trash")
    conversation.deleted_at = None
    conversation.save(update_fields=["deleted_at", "updated_at"])
    return conversation


def foreign_references_clear(model: type[models.Model], ids: Any) -> None:
    """Apply other apps' ``on_delete`` rules to rows pointing at ``model`` rows ``ids``."""
    for relation in model._meta.get_fields(include_hidden=True):  # related_name="+" too
        if not isinstance(relation, models.ForeignObjectRel):
            continue
        related = relation.related_model
        if related in OWN_MODELS or not isinstance(relation, models.ManyToOneRel):
            continue
        rows = related._base_manager.filter(**{f"{relation.field.name}__in": ids})
        if relation.on_delete is models.SET_NULL:
            rows.update(**{relation.field.name: None})
        else:
            rows.delete()


@transaction.atomic
def conversations_hard_delete(*, conversation_ids: list[int]) -> int:
    """Delete conversations with their messages and share links for good; returns the count."""
    if not conversation_ids:
        return 0
    foreign_references_clear(
        Message, Message.objects.filter(conversation_id__in=conversation_ids).values("id")
    )
    foreign_references_clear(Conversation, conversation_ids)
    ShareLink.objects.filter(conversation_id__in=conversation_ids).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM conversations_message WHERE conversation_id = ANY(%s)", [conversation_ids]
        )
        cursor.execute(
            "DELETE FROM conversations_conversation WHERE id = ANY(%s)", [conversation_ids]
        )
        return int(cursor.rowcount)


def conversations_purge(*, now: datetime | None = None) -> int:
    """Hard-delete conversations deleted more than the retention ago, in batches; the count."""
    cutoff, purged = trash_cutoff(now), 0
    while True:
        batch = list(
            Conversation.objects.filter(deleted_at__lt=cutoff).values_list("id", flat=True)[
                :PURGE_BATCH
            ]
        )
        if not batch:
            return purged
        purged += conversations_hard_delete(conversation_ids=batch)


def user_session_record(*, user: Any, session_key: str | None) -> None:
    """Remember a login's session key, so deleting the account can end that session."""
    if session_key:
        UserSession.objects.get_or_create(session_key=session_key, defaults={"user_id": user.pk})


@transaction.atomic
def account_delete(*, user: Any) -> None:
    """Remove the user and everything of theirs now (not after the trash retention).

    Conversations, messages and share links (hard delete), export rows (files once committed),
    sessions, then the user row, whose own cascades take API keys, folders and the rest; other
    apps' ``on_delete`` rules apply (the billing ledger keeps anonymised rows).
    """
    files = list(
        Export.objects.filter(owner_id=user.pk)
        .exclude(file_name="")
        .values_list("file_name", flat=True)
    )
    owned = Conversation.objects.filter(owner_id=user.pk).values_list("id", flat=True)
    ids = list(owned)
    for start in range(0, len(ids), PURGE_BATCH):
        conversations_hard_delete(conversation_ids=ids[start : start + PURGE_BATCH])
    keys = UserSession.objects.filter(user_id=user.pk).values_list("session_key", flat=True)
    Session.objects.filter(session_key__in=list(keys)).delete()
    user.delete()
    transaction.on_commit(lambda: export_files_remove(files))
