"""The conversation list's keyset pages, and the history a prompt is built from."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from chatbot.users.tests.factories import UserFactory
from conversations.models import Conversation, Message
from conversations.selectors import conversation_list, message_history

pytestmark = pytest.mark.django_db


def test_list_pages_cover_every_conversation_once_even_when_updated_at_ties(
    django_assert_num_queries: Any,
) -> None:
    owner = UserFactory.create()
    made = [Conversation.objects.create(owner=owner, model="m1") for _ in range(7)]
    now = timezone.now()
    Conversation.objects.filter(pk__in=[c.pk for c in made[2:5]]).update(updated_at=now)
    seen: list[int] = []
    cursor = None
    for _ in range(4):
        with django_assert_num_queries(1):
            page = conversation_list(user=owner, cursor=cursor, limit=2)
        seen += [c.pk for c in page.items]
        cursor = page.next_cursor
    assert cursor is None
    expected = Conversation.objects.filter(owner=owner).order_by("-updated_at", "-id")
    assert seen == [c.pk for c in expected]
    assert len(set(seen)) == 7


def test_the_history_for_a_prompt_is_the_orm_query_written_out(
    django_assert_num_queries: Any,
) -> None:
    """``message_history`` runs raw SQL on the turn's hot path: the same rows as the ORM query
    it replaces (no failed message, no empty answer), newest first, at most ``limit``."""
    owner = UserFactory.create()
    conversation = Conversation.objects.create(owner=owner, model="m1")
    other = Conversation.objects.create(owner=owner, model="m1")
    rows = [
        ("user", "first question", Message.Status.COMPLETE),
        ("assistant", "first answer", Message.Status.COMPLETE),
        ("user", "a question that failed", Message.Status.COMPLETE),
        ("assistant", "", Message.Status.FAILED),
        ("assistant", "", Message.Status.STOPPED),  # stopped before any text
        ("assistant", "half an answer", Message.Status.INTERRUPTED),
        ("system", "a note", Message.Status.COMPLETE),
    ]
    made = [
        Message.objects.create(
            conversation=conversation, owner_id=owner.pk, role=role, content=text, status=status
        )
        for role, text, status in rows
    ]
    Message.objects.create(conversation=other, owner_id=owner.pk, role="user", content="elsewhere")
    question = Message.objects.create(conversation=conversation, owner_id=owner.pk, role="user")
    later = Message.objects.create(conversation=conversation, owner_id=owner.pk, role="user")
    expected = list(
        Message.objects.filter(conversation=conversation, id__lt=question.pk)
        .exclude(status=Message.Status.FAILED)
        .exclude(role=Message.Role.ASSISTANT, content="")
        .order_by("-id")
        .values_list("id", "role", "content")
    )
    with django_assert_num_queries(1):
        history = message_history(conversation=conversation, before_id=question.pk, limit=10)
    assert [tuple(m) for m in history] == expected
    assert [m.content for m in history] == [
        "a note",
        "half an answer",
        "a question that failed",
        "first answer",
        "first question",
    ]
    assert later.pk not in {m.pk for m in history} and made[3].pk not in {m.pk for m in history}
    limited = message_history(conversation=conversation, before_id=question.pk, limit=2)
    assert [m.content for m in limited] == ["a note", "half an answer"]
