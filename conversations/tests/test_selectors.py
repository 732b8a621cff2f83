"""The conversation list's keyset pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from chatbot.users.tests.factories import UserFactory
from conversations.models import Conversation
from conversations.selectors import conversation_list

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
