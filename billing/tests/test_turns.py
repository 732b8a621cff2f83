"""Billing along whole chat turns: websocket and REST, the fake OpenAI server, the reaper."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from billing.models import QuotaPeriod, UsageRecord
from billing.tests.conftest import plan_make, user_on
from conversations import streams
from conversations.generation import turn_start
from conversations.models import Message
from conversations.services import conversation_create, turns_reap
from conversations.tests.conftest import ChatClient, text_of
from llm.tokens import token_count

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("provider_cleanup"),
]

OPENAI_NAMED = "gpt-4o-mini"  # the fake server answers any name; this one is counted by tiktoken


@sync_to_async
def chat_user(model: str = "fake-model", **limits: Any) -> tuple[Any, Any]:
    user = user_on(plan_make(**limits))
    return user, conversation_create(owner=user, model=model)


@sync_to_async
def ledger(message_id: int) -> tuple[UsageRecord, QuotaPeriod, Message]:
    record = UsageRecord.objects.select_related("period").get(message_id=message_id)
    assert record.period is not None
    return record, record.period, Message.objects.get(pk=message_id)


async def start_turn(client: ChatClient, key: str = "k1") -> int:
    await client.send(type="message.send", content="Hello?", idempotency_key=key)
    started = await client.receive()
    assert started["type"] == "turn.started", started
    return int(started["message_id"])


async def test_a_complete_turn_bills_the_providers_usage(fake_llm):
    user, conversation = await chat_user(tokens_per_month=100_000)
    client = ChatClient(user, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    frames = await client.until_done()
    await client.close()

    record, period, message = await ledger(message_id)
    assert frames[-1]["status"] == record.status == "complete"
    assert record.completion_tokens == message.completion_tokens == 20
    assert record.prompt_tokens == message.prompt_tokens > 0
    assert period.tokens_used == record.prompt_tokens + record.completion_tokens
    assert period.tokens_reserved == 0
    assert record.ttft_ms is not None and record.settled_at is not None


async def test_a_provider_500_releases_the_reservation_and_bills_nothing(fake_llm):
    fake_llm.set_override(fail="500")
    user, conversation = await chat_user(tokens_per_month=100_000)
    client = ChatClient(user, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    frames = await client.until_done()
    await client.close()

    record, period, _ = await ledger(message_id)
    assert frames[-1]["status"] == record.status == "failed"
    assert (period.tokens_reserved, period.tokens_used, record.cost) == (0, 0, 0)


async def test_a_stop_mid_stream_bills_the_generated_tokens_once(fake_llm, settings):
    settings.CHAT_MODELS = [*settings.CHAT_MODELS, OPENAI_NAMED]
    fake_llm.set_override(tokens=400, tokens_per_s=40)
    user, conversation = await chat_user(model=OPENAI_NAMED, tokens_per_month=100_000)
    client = ChatClient(user, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    first = await client.receive()
    await client.send(type="turn.stop", message_id=message_id)
    frames = [first, *await client.until_done()]
    await client.close()
    await sync_to_async(turns_reap)(grace_s=0)  # a late reaper must not bill it again

    record, period, message = await ledger(message_id)
    generated = text_of(frames)
    assert frames[-1]["status"] == record.status == "stopped"
    assert message.content == generated != ""
    assert record.completion_tokens == token_count(generated, model=OPENAI_NAMED) > 0
    assert period.tokens_used == record.prompt_tokens + record.completion_tokens
    assert period.tokens_reserved == 0
    assert await UsageRecord.objects.filter(message_id=message_id).acount() == 1


@sync_to_async
def killed_turn(user: Any, conversation: Any) -> int:
    """A turn whose generating task died after two pieces: begun and reserved, never finished."""
    turn, _ = turn_start(
        user=user, conversation_id=conversation.pk, content="Hello?", idempotency_key="k"
    )
    message_id = turn.assistant_message.pk
    with streams.sync_client() as redis:
        redis.xadd(streams.stream_key(message_id), {"t": "partial "}, id="0-1")
        redis.xadd(streams.stream_key(message_id), {"t": "answer"}, id="0-2")
    Message.objects.filter(pk=message_id).update(created_at=timezone.now() - timedelta(seconds=120))
    return message_id


async def test_the_reaper_settles_a_killed_turn(fake_llm):
    user, conversation = await chat_user(tokens_per_month=100_000)
    message_id = await killed_turn(user, conversation)
    record, period, _ = await ledger(message_id)
    assert record.status == "reserved" and period.tokens_reserved > 0

    assert await sync_to_async(turns_reap)() == [message_id]
    record, period, message = await ledger(message_id)
    assert record.status == message.status == "interrupted"
    assert record.completion_tokens == token_count("partial answer", model="fake-model") > 0
    assert record.prompt_tokens > 0  # the prompt went to the provider: its estimate is billed
    assert period.tokens_reserved == 0
    assert period.tokens_used == record.prompt_tokens + record.completion_tokens


async def test_the_websocket_refuses_past_the_rate_limit_with_retry_after(fake_llm):
    user, conversation = await chat_user(requests_per_minute=1, tokens_per_month=100_000)
    client = ChatClient(user, conversation.pk)
    await client.connect()
    await start_turn(client)
    await client.until_done()
    await client.send(type="message.send", content="Again?", idempotency_key="k2")
    frame = await client.receive()
    await client.close()

    assert frame["type"] == "error"
    assert frame["code"] == "rate_limited"
    assert 0 < frame["retry_after"] <= 60


async def test_the_websocket_refuses_past_the_quota_with_the_reset_time(fake_llm):
    user, conversation = await chat_user(tokens_per_month=10)
    client = ChatClient(user, conversation.pk)
    await client.connect()
    await client.send(type="message.send", content="Hello?", idempotency_key="k")
    frame = await client.receive()
    await client.close()

    assert (frame["type"], frame["code"]) == ("error", "quota_exceeded")
    assert frame["reset_at"].endswith("-01T00:00:00+00:00")
    assert await Message.objects.filter(conversation=conversation).acount() == 0


async def post_message(user: Any, conversation_id: int, key: str) -> Any:
    client = AsyncClient()
    await client.aforce_login(user)
    return await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        {"content": "Hello?", "idempotency_key": key},
        content_type="application/json",
    )


async def test_rest_answers_429_with_retry_after_past_the_rate_limit(fake_llm):
    user, conversation = await chat_user(requests_per_minute=1, tokens_per_month=100_000)
    first = await post_message(user, conversation.pk, "k1")
    assert first.status_code == 200
    [_ async for _ in first.streaming_content]
    refused = await post_message(user, conversation.pk, "k2")

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["code"] == "rate_limited"


async def test_rest_answers_402_with_reset_at_past_the_quota(fake_llm):
    user, conversation = await chat_user(tokens_per_month=10)
    refused = await post_message(user, conversation.pk, "k1")
    body = refused.json()
    assert refused.status_code == 402
    assert body["code"] == "quota_exceeded" and body["detail"] and body["reset_at"]
