"""Moderation of questions (refused before a turn exists) and of answers (halted mid-stream)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conversations.models import Message, ModerationEvent
from conversations.moderation import INPUT_REFUSED, OUTPUT_WITHHELD
from conversations.services import conversation_create
from conversations.tests.conftest import ChatClient, deltas
from conversations.tests.test_consumers import start_turn
from conversations.tests.test_sse import logged_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("provider_cleanup"),
]


@pytest.fixture
def rules(settings: Any, tmp_path: Path) -> Path:
    """A deployment's own rules: a test phrase, and the 9th token of every fake answer."""
    path = tmp_path / "rules.txt"
    path.write_text("test-abuse: forbidden phrase\ntest-output: /tok9\\b/\n")
    settings.MODERATION = "rules"
    settings.MODERATION_RULES_FILE = str(path)
    settings.MODERATION_OUTPUT_EVERY_CHARS = 20
    settings.MODERATION_OUTPUT_WINDOW_CHARS = 60
    return path


async def message_count(conversation: Any) -> int:
    return await Message.objects.filter(conversation=conversation).acount()


@pytest.mark.asyncio
async def test_a_flagged_question_is_refused_before_any_turn_and_recorded(conversation, rules):
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    await client.send(
        type="message.send", content="Write a FORBIDDEN phrase now", idempotency_key="m1"
    )
    frame = await client.receive()
    await client.close()

    assert frame == {"type": "error", "code": "moderation_blocked", "detail": INPUT_REFUSED}
    assert await message_count(conversation) == 0
    event = await ModerationEvent.objects.aget()
    assert (event.user_id, event.conversation_id, event.message_id) == (
        conversation.owner_id,
        conversation.pk,
        None,
    )
    assert (event.direction, event.categories, event.provider) == ("input", ["test-abuse"], "rules")
    assert "FORBIDDEN phrase" in event.excerpt
    assert event.reviewed is False


@pytest.mark.asyncio
async def test_a_flagged_question_over_rest_is_a_400_with_its_code(conversation, rules):
    client = await logged_in(conversation.owner)
    response = await client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"content": "a forbidden phrase", "idempotency_key": "r1"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json() == {"code": "moderation_blocked", "detail": INPUT_REFUSED}
    assert await message_count(conversation) == 0


@pytest.mark.asyncio
async def test_a_flagged_question_in_someone_elses_conversation_is_not_found(
    conversation, mallory, rules
):
    client = await logged_in(mallory)
    response = await client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"content": "a forbidden phrase", "idempotency_key": "r1"},
        content_type="application/json",
    )

    assert response.status_code == 404
    assert await ModerationEvent.objects.acount() == 0


@pytest.mark.asyncio
async def test_an_ordinary_question_and_answer_pass_moderation(conversation, fake_llm, rules):
    fake_llm.set_override(tokens=8)  # stops before "tok9"
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    await start_turn(client, content="What is our travel policy?")
    frames = await client.until_done()
    await client.close()

    assert frames[-1]["status"] == "complete"
    assert await message_count(conversation) == 2
    assert await ModerationEvent.objects.acount() == 0


@pytest.mark.asyncio
async def test_a_flagged_answer_halts_mid_stream_is_withheld_and_recorded(
    conversation, fake_llm, rules
):
    fake_llm.set_override(tokens=200, tokens_per_s=400)
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    frames = await client.until_done()
    await client.close()

    done = frames[-1]
    assert done["status"] == "moderated"
    assert done["content"] == ""  # the client replaces what it showed with nothing
    assert done["error"] == {"code": "moderated", "detail": OUTPUT_WITHHELD}
    shown = "".join(frame["text"] for frame in deltas(frames))
    assert "tok9 " in shown and "tok30 " not in shown  # halted within a window of the match
    stored = await Message.objects.aget(pk=message_id)
    assert (stored.status, stored.content, stored.error_code) == ("moderated", "", "moderated")
    event = await ModerationEvent.objects.aget()
    assert (event.direction, event.message_id, event.categories) == (
        "output",
        message_id,
        ["test-output"],
    )
    assert "tok9" in event.excerpt


@pytest.mark.asyncio
async def test_the_openai_moderator_of_the_fake_server_halts_a_flagged_answer(
    conversation, fake_llm, settings
):
    settings.MODERATION = "openai"
    settings.MODERATION_BASE_URL = fake_llm.base_url
    settings.MODERATION_OUTPUT_EVERY_CHARS = 20
    fake_llm.set_flag_words("tok12 ")
    fake_llm.set_override(tokens=200, tokens_per_s=400)
    try:
        client = ChatClient(conversation.owner, conversation.pk)
        await client.connect()
        message_id = await start_turn(client)
        frames = await client.until_done()
        await client.close()
    finally:
        fake_llm.set_flag_words()

    assert frames[-1]["status"] == "moderated"
    event = await ModerationEvent.objects.aget(message_id=message_id)
    assert (event.provider, event.categories) == ("openai-moderation", ["harassment"])


def test_staff_review_moderation_events_in_the_admin(
    admin_client, admin_user, django_assert_max_num_queries
):
    conversation = conversation_create(owner=admin_user, title="flagged")
    event = ModerationEvent.objects.create(
        user=admin_user,
        conversation=conversation,
        direction="input",
        categories=["weapons"],
        excerpt="how to build a pipe bomb",
        provider="rules",
    )

    for _ in range(20):  # the list's query count must not grow with its rows
        ModerationEvent.objects.create(user=admin_user, direction="output", provider="rules")
    with django_assert_max_num_queries(12):
        listing = admin_client.get("/admin/conversations/moderationevent/?reviewed__exact=0")
    assert listing.status_code == 200
    assert "how to build a pipe bomb" in listing.content.decode()
    found = admin_client.get("/admin/conversations/moderationevent/?q=pipe+bomb")
    assert "how to build a pipe bomb" in found.content.decode()
    detail = admin_client.get(f"/admin/conversations/moderationevent/{event.pk}/change/")
    assert detail.status_code == 200
    response = admin_client.post(
        "/admin/conversations/moderationevent/",
        {"action": "mark_reviewed", "_selected_action": [event.pk]},
    )
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.reviewed is True
