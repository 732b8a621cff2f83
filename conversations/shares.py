"""Share links: public, read-only snapshots of a conversation (reads and writes).

A share shows the messages up to ``through_message_id`` (the last finished message when the
link was made): later messages never appear. The public side (``share_open``) answers
``NotFound`` alike for unknown, revoked, expired, deleted and globally disabled links, so a
visitor cannot tell them apart.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone

from conversations.exceptions import InvalidInput, NotFound, SharingDisabled
from conversations.models import Conversation, Message, ShareLink, SharingSettings
from conversations.rendering import markdown_html

MAX_TOKEN_CHARS = 64
MAX_EXPIRY_DAYS = 365
MAX_SHARED_MESSAGES = 1000
MAX_SHARES_LISTED = 200
SHARE_NOT_FOUND = "share link not found"
CITATION_NAME_KEYS = ("title", "document_title", "document")
CITATION_SNIPPET_KEYS = ("snippet", "text", "quote")


def sharing_enabled() -> bool:
    """The staff switch (admin: Sharing settings); on when never set."""
    rows = SharingSettings.objects.order_by("pk").values_list("sharing_enabled", flat=True)
    value = rows.first()
    return True if value is None else value


def expiry_validate(expires_in_days: int | None) -> datetime | None:
    if expires_in_days is None:
        return None
    if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise InvalidInput(f"expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}")
    return timezone.now() + timedelta(days=expires_in_days)


@transaction.atomic
def share_create(
    *,
    conversation: Conversation,
    include_snippets: bool = False,
    expires_in_days: int | None = None,
) -> ShareLink:
    """Share the conversation as it is now; later messages will not show.

    The token is 24 random bytes (192 bits) from ``secrets``, unrelated to any id.
    """
    if not sharing_enabled():
        raise SharingDisabled("sharing is turned off on this site")
    expires_at = expiry_validate(expires_in_days)
    through = (
        Message.objects.filter(conversation=conversation)
        .exclude(status__in=Message.ACTIVE_STATUSES)
        .aggregate(last=Max("id"))["last"]
    )
    if through is None:
        raise InvalidInput("the conversation has no messages to share yet")
    return ShareLink.objects.create(
        token=secrets.token_urlsafe(24),
        owner_id=conversation.owner_id,
        conversation=conversation,
        title=conversation.title,
        through_message_id=through,
        include_snippets=include_snippets,
        expires_at=expires_at,
    )


def share_list(*, user: Any) -> list[ShareLink]:
    """The user's share links, newest first (revoked and expired ones too); one query."""
    return list(
        ShareLink.objects.filter(owner_id=user.pk, conversation__deleted_at__isnull=True).order_by(
            "-id"
        )[:MAX_SHARES_LISTED]
    )


def share_get_for_user(*, user: Any, share_id: int) -> ShareLink:
    """The user's share link, or ``NotFound`` (also for someone else's id)."""
    try:
        return ShareLink.objects.get(pk=share_id, owner_id=user.pk)
    except ShareLink.DoesNotExist:
        raise NotFound(SHARE_NOT_FOUND) from None


@transaction.atomic
def share_revoke(*, share: ShareLink) -> ShareLink:
    """Turn the link off for good (the row stays for the owner's list); idempotent."""
    if share.revoked_at is None:
        share.revoked_at = timezone.now()
        share.save(update_fields=["revoked_at"])
    return share


def live_shares() -> QuerySet[ShareLink]:
    now = timezone.now()
    return ShareLink.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        revoked_at__isnull=True,
        conversation__deleted_at__isnull=True,
    )


def share_get_public(*, token: str) -> ShareLink:
    """A live share by its token, or ``NotFound`` (the same for every reason)."""
    if not token or len(token) > MAX_TOKEN_CHARS or not sharing_enabled():
        raise NotFound(SHARE_NOT_FOUND)
    share = live_shares().filter(token=token).first()
    if share is None:
        raise NotFound(SHARE_NOT_FOUND)
    return share


@dataclass(frozen=True)
class SharedMessage:
    role: str
    html: str  # sanitized markdown
    citations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SharedConversation:
    title: str
    shared_at: datetime
    messages: list[SharedMessage]


def shared_citations(citations: Any, include_snippets: bool) -> list[dict[str, Any]]:
    """Only a document's name and page, and the snippet when the owner chose to include it."""
    kept = []
    for citation in citations if isinstance(citations, list) else []:
        if not isinstance(citation, dict):
            continue
        name = next((citation[k] for k in CITATION_NAME_KEYS if citation.get(k)), "Source")
        item: dict[str, Any] = {"title": str(name)[:300], "page": citation.get("page")}
        snippet = next((citation[k] for k in CITATION_SNIPPET_KEYS if citation.get(k)), "")
        if include_snippets and snippet:
            item["snippet"] = str(snippet)[:2000]
        kept.append(item)
    return kept


def shared_messages(share: ShareLink) -> list[Message]:
    return list(
        Message.objects.filter(
            conversation_id=share.conversation_id,
            id__lte=share.through_message_id,
            role__in=[Message.Role.USER, Message.Role.ASSISTANT],
        )
        .exclude(status__in=Message.ACTIVE_STATUSES)
        .exclude(content="")
        .only("id", "role", "content", "citations")
        .order_by("id")[:MAX_SHARED_MESSAGES]
    )


def share_open(*, token: str) -> SharedConversation:
    """What the public page shows for a token; counts the view (one atomic UPDATE)."""
    share = share_get_public(token=token)
    ShareLink.objects.filter(pk=share.pk).update(view_count=F("view_count") + 1)
    messages = [
        SharedMessage(
            role=message.role,
            html=markdown_html(message.content),
            citations=shared_citations(message.citations, share.include_snippets),
        )
        for message in shared_messages(share)
    ]
    return SharedConversation(share.title, share.created_at, messages)


@transaction.atomic
def share_continue(*, user: Any, token: str) -> Conversation:
    """A new private conversation of ``user`` holding a copy of the shared snapshot."""
    share = share_get_public(token=token)
    source = Conversation.objects.only("model").get(pk=share.conversation_id)
    conversation = Conversation.objects.create(
        owner=user, title=(share.title or "Shared conversation")[:200], model=source.model
    )
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            owner=user,
            role=message.role,
            content=message.content,
            citations=shared_citations(message.citations, share.include_snippets),
            model=source.model if message.role == Message.Role.ASSISTANT else "",
        )
        for message in shared_messages(share)
    )
    return conversation
