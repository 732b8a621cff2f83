"""Moderation of the chat: refuse flagged questions before a turn begins, and record every
flag (question or answer) as a ``ModerationEvent`` for staff review."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from conversations.exceptions import ModerationBlocked
from conversations.models import Conversation, ModerationEvent
from conversations.runtime import db
from conversations.selectors import conversation_get_for_user
from conversations.services import content_validate
from llm.moderation import ModerationResult, moderation_check
from llm.registry import moderator

INPUT_REFUSED = (
    "This message was not sent: it appears to break the content policy of this service. "
    "Please rephrase it."
)
OUTPUT_WITHHELD = (
    "The answer was stopped and withheld because it appears to break the content policy "
    "of this service."
)


async def message_moderate(*, user: Any, conversation_id: int, content: str) -> None:
    """Refuse a flagged question (``ModerationBlocked``) before anything is written for it.

    The refusal itself is recorded, for a conversation of the user's only (else not-found).
    """
    checker = moderator()
    if checker is None:
        return
    result = await moderation_check(checker, content_validate(content))
    if not result.flagged:
        return
    await db(moderation_input_record)(user=user, conversation_id=conversation_id, result=result)
    raise ModerationBlocked(INPUT_REFUSED)


@transaction.atomic
def moderation_input_record(
    *, user: Any, conversation_id: int, result: ModerationResult
) -> ModerationEvent:
    """Record a refused question; someone else's conversation is ``NotFound``."""
    conversation = conversation_get_for_user(user=user, conversation_id=conversation_id)
    return event_create(
        user_id=user.pk,
        conversation_id=conversation.pk,
        message_id=None,
        direction=ModerationEvent.Direction.INPUT,
        result=result,
    )


@transaction.atomic
def moderation_output_record(
    *, conversation_id: int, message_id: int, result: ModerationResult
) -> ModerationEvent:
    """Record an answer halted by output moderation, for the conversation's owner."""
    owner_id = Conversation.objects.values_list("owner_id", flat=True).get(pk=conversation_id)
    return event_create(
        user_id=owner_id,
        conversation_id=conversation_id,
        message_id=message_id,
        direction=ModerationEvent.Direction.OUTPUT,
        result=result,
    )


def event_create(
    *,
    user_id: int,
    conversation_id: int,
    message_id: int | None,
    direction: str,
    result: ModerationResult,
) -> ModerationEvent:
    return ModerationEvent.objects.create(
        user_id=user_id,
        conversation_id=conversation_id,
        message_id=message_id,
        direction=direction,
        categories=list(result.categories),
        excerpt=result.excerpt,
        provider=result.provider,
    )


@transaction.atomic
def moderation_events_review(*, event_ids: list[int]) -> int:
    """Mark events as reviewed by staff; returns how many changed."""
    return ModerationEvent.objects.filter(pk__in=event_ids, reviewed=False).update(reviewed=True)
