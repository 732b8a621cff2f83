"""Turns under failover: which provider answered, and a polite end when none can."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Message
from conversations.tests.conftest import ChatClient, text_of
from conversations.tests.test_consumers import start_turn
from llm.exceptions import UNAVAILABLE_DETAIL
from llm.fake_server import token_text

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("provider_cleanup"),
]


async def run_turn(conversation) -> tuple[int, list[dict[str, Any]]]:
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    frames = await client.until_done()
    await client.close()
    return message_id, frames


async def test_a_429_on_the_primary_is_answered_by_the_backup_which_is_recorded(
    conversation, two_providers
):
    primary, _ = two_providers
    primary.set_override(fail="429", retry_after=30)

    message_id, frames = await run_turn(conversation)

    assert frames[-1]["status"] == "complete"
    assert text_of(frames) == "".join(token_text(n) for n in range(1, 6))
    stored = await Message.objects.aget(pk=message_id)
    assert (stored.provider, stored.model) == ("backup", "backup-model")


async def test_a_healthy_primary_is_recorded_as_the_provider(conversation, two_providers):
    message_id, frames = await run_turn(conversation)

    assert frames[-1]["status"] == "complete"
    stored = await Message.objects.aget(pk=message_id)
    assert (stored.provider, stored.model) == ("primary", "fake-model")


async def test_when_every_provider_fails_the_turn_ends_with_a_polite_message(
    conversation, two_providers
):
    primary, backup = two_providers
    primary.set_override(fail="500")
    backup.set_override(fail="500")

    message_id, frames = await run_turn(conversation)

    done = frames[-1]
    assert (done["status"], done["content"]) == ("failed", "")
    assert done["error"] == {"code": "provider_unavailable", "detail": UNAVAILABLE_DETAIL}
    stored = await Message.objects.aget(pk=message_id)
    assert (stored.status, stored.error_code) == ("failed", "provider_unavailable")


async def test_a_reset_mid_answer_is_interrupted_without_a_fallback_answer_appended(
    conversation, two_providers
):
    primary, backup = two_providers
    primary.set_override(fail="reset", fail_after=7, tokens=30)
    backup_requests = backup.state.stats.requests

    message_id, frames = await run_turn(conversation)

    partial = "".join(token_text(n) for n in range(1, 8))
    assert (frames[-1]["status"], text_of(frames)) == ("interrupted", partial)
    stored = await Message.objects.aget(pk=message_id)
    assert (stored.status, stored.content, stored.provider) == ("interrupted", partial, "primary")
    assert backup.state.stats.requests == backup_requests


async def test_a_stalled_primary_is_left_after_the_first_token_timeout(conversation, two_providers):
    primary, _ = two_providers
    primary.set_override(fail="stall", fail_after=0)

    message_id, frames = await run_turn(conversation)

    assert frames[-1]["status"] == "complete"
    assert (await Message.objects.aget(pk=message_id)).provider == "backup"
