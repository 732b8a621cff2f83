"""Automatic titles: by the title model when configured, from the first question offline."""

from __future__ import annotations

from typing import Any

import pytest

from chatbot.users.tests.factories import UserFactory
from conversations.models import Conversation, Message
from conversations.services import conversation_update
from conversations.titles import conversation_autotitle, title_from_question, title_model

pytestmark = pytest.mark.django_db


def untitled(question: str) -> Conversation:
    conversation = Conversation.objects.create(
        owner=UserFactory.create(username="u"), title="", model="m1"
    )
    Message.objects.create(conversation=conversation, role="user", content=question)
    return conversation


def test_offline_the_title_is_the_questions_opening_words() -> None:
    question = "How do I rotate the API keys of our staging cluster without downtime please?"
    conversation = untitled(question)
    assert conversation_autotitle(conversation_id=conversation.pk) == (
        "How do I rotate the API keys of our staging cluster without…"
    )
    conversation.refresh_from_db()
    assert conversation.title.startswith("How do I rotate")


def test_a_short_question_is_its_own_title() -> None:
    assert title_from_question("  Hello\n  there ") == "Hello there"


def test_with_a_model_configured_the_title_model_writes_it(fake_llm: Any) -> None:
    conversation = untitled("Tell me about penguins")
    asked = fake_llm.state.stats.requests
    title = conversation_autotitle(conversation_id=conversation.pk)
    assert title and title != "Tell me about penguins"  # the fake model's words
    assert fake_llm.state.stats.requests == asked + 1
    assert title_model() == "fake-model"


def test_a_rename_by_the_user_wins_over_the_background_title() -> None:
    conversation = untitled("question")
    conversation_update(conversation=conversation, title="Mine")
    assert conversation_autotitle(conversation_id=conversation.pk) is None
    conversation.refresh_from_db()
    assert conversation.title == "Mine"


def test_the_title_model_is_the_cheapest_enabled_catalogue_model_the_provider_serves(
    fake_llm: Any, settings: Any
) -> None:
    from billing.models import ModelPrice

    settings.CHAT_MODELS = ["fake-model", "fake-mini", "fake-gone"]
    ModelPrice.objects.create(model="fake-model", input_price=3_000_000, output_price=9_000_000)
    ModelPrice.objects.create(model="fake-mini", input_price=100_000, output_price=400_000)
    ModelPrice.objects.create(model="fake-gone", input_price=0, output_price=0, enabled=False)
    ModelPrice.objects.create(model="not-served", input_price=0, output_price=1)
    assert title_model() == "fake-mini"
