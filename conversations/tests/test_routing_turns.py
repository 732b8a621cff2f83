"""``auto`` conversations through whole turns: the fake server, the ledger, the done frames."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.models import ModelPrice, QuotaPeriod, UsageRecord
from billing.selectors import period_start_of
from billing.tests.conftest import plan_make, user_on
from conversations.generation import turn_start
from conversations.models import Message
from conversations.services import conversation_create, turns_reap
from conversations.tests.conftest import ChatClient
from conversations.tests.test_sse import logged_in, read_stream

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("provider_cleanup"),
]

CHEAP, STRONG = "fake-model", "fake-strong"
PRICES = {CHEAP: (100_000, 400_000), STRONG: (5_000_000, 15_000_000)}
CODE_QUESTION = "Why does this fail?\n```\ndef f(x):\n    return x +\n```"


@pytest.fixture
def priced_models(fake_llm: Any, settings: Any) -> Any:
    settings.CHAT_MODELS = [CHEAP, STRONG]
    for model, (input_price, output_price) in PRICES.items():
        ModelPrice.objects.create(model=model, input_price=input_price, output_price=output_price)
    return fake_llm


@sync_to_async
def auto_chat(model: str = "auto", **limits: Any) -> tuple[Any, Any]:
    user = user_on(plan_make(**limits))
    return user, conversation_create(owner=user, title="routing", model=model)


async def ws_turn(user: Any, conversation_id: int, content: str) -> tuple[int, dict[str, Any]]:
    client = ChatClient(user, conversation_id)
    await client.connect()
    await client.send(type="message.send", content=content, idempotency_key="k1")
    frames = await client.until_done()
    await client.close()
    assert frames[0]["type"] == "turn.started", frames
    return int(frames[0]["message_id"]), frames[-1]


def cost_of(model: str, prompt: int, completion: int) -> int:
    input_price, output_price = PRICES[model]
    return (prompt * input_price + completion * output_price + 999_999) // 1_000_000


def detail_of(message: Message) -> dict[str, Any]:
    assert message.route_detail is not None
    return dict(message.route_detail)


async def billed(message_id: int) -> tuple[Message, UsageRecord]:
    message = await Message.objects.aget(pk=message_id)
    record = await UsageRecord.objects.aget(message_id=message_id)
    return message, record


async def test_a_simple_question_is_answered_and_billed_by_the_cheap_model(priced_models):
    calls = dict(priced_models.state.stats.models)
    user, conversation = await auto_chat(tokens_per_month=100_000)

    message_id, done = await ws_turn(user, conversation.pk, "Hello, how are you?")

    message, record = await billed(message_id)
    assert done["status"] == "complete" and done["model"] == CHEAP
    assert (message.model, message.route_reason) == (CHEAP, "simple")
    assert detail_of(message)["strong"] == STRONG
    assert priced_models.state.stats.models.get(CHEAP, 0) == calls.get(CHEAP, 0) + 1
    assert priced_models.state.stats.models.get(STRONG, 0) == calls.get(STRONG, 0)
    assert record.model == CHEAP
    assert record.cost == cost_of(CHEAP, record.prompt_tokens, record.completion_tokens) > 0


async def test_a_code_question_is_called_stored_billed_and_reported_as_the_strong_model(
    priced_models, settings
):
    calls = priced_models.state.stats.models.get(STRONG, 0)
    user, conversation = await auto_chat(tokens_per_month=100_000)

    message_id, done = await ws_turn(user, conversation.pk, CODE_QUESTION)

    message, record = await billed(message_id)
    assert done["status"] == "complete" and done["model"] == STRONG
    assert (message.model, message.route_reason) == (STRONG, "code")
    assert detail_of(message)["cues"]
    assert priced_models.state.stats.models.get(STRONG, 0) == calls + 1
    assert record.model == STRONG
    assert record.cost == cost_of(STRONG, record.prompt_tokens, record.completion_tokens)
    # The reservation was priced for the strong model too (prompt estimate + max output).
    max_output = settings.CHAT_MAX_OUTPUT_TOKENS
    prompt_estimate = record.reserved_tokens - max_output
    assert record.reserved_cost == cost_of(STRONG, prompt_estimate, max_output)


@sync_to_async
def spend(user: Any, tokens: int) -> None:
    QuotaPeriod.objects.update_or_create(
        user=user, period_start=period_start_of(timezone.now()), defaults={"tokens_used": tokens}
    )


async def test_near_the_plans_cap_the_cheap_model_answers_a_code_question(priced_models):
    user, conversation = await auto_chat(tokens_per_month=100_000)
    await spend(user, 85_000)

    message_id, done = await ws_turn(user, conversation.pk, CODE_QUESTION)

    message, record = await billed(message_id)
    assert done["model"] == CHEAP == message.model == record.model
    assert message.route_reason == "budget"
    assert detail_of(message)["wanted"] == "code"
    assert detail_of(message)["budget_used"] == 0.85


async def test_a_plan_with_one_model_routes_everything_to_it(priced_models):
    user, conversation = await auto_chat(tokens_per_month=100_000, models_allowed=[STRONG])

    message_id, done = await ws_turn(user, conversation.pk, "Hi")

    message = await Message.objects.aget(pk=message_id)
    assert (done["model"], message.model, message.route_reason) == (STRONG, STRONG, "single_model")


async def test_a_fixed_model_is_not_routed_and_done_names_it(priced_models):
    user, conversation = await auto_chat(model=STRONG, tokens_per_month=100_000)

    message_id, done = await ws_turn(user, conversation.pk, "Hello?")

    message = await Message.objects.aget(pk=message_id)
    assert (done["model"], message.model, message.route_reason) == (STRONG, STRONG, "")
    assert message.route_detail is None


async def test_the_sse_done_event_names_the_model_that_answered(priced_models):
    user, conversation = await auto_chat(tokens_per_month=100_000)
    client = await logged_in(user)

    response = await client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"content": CODE_QUESTION, "idempotency_key": "sse-1"},
        content_type="application/json",
    )
    events = await read_stream(response)

    assert events[-1]["event"] == "done"
    assert events[-1]["data"]["model"] == STRONG
    # A resume after the end reads the same answer from the stream or the database.
    message_id = events[0]["data"]["message_id"]
    resumed = await read_stream(await client.get(f"/api/v1/messages/{message_id}/stream"))
    assert resumed[-1]["data"]["model"] == STRONG


async def test_the_message_list_shows_each_answers_model(priced_models):
    user, conversation = await auto_chat(tokens_per_month=100_000)
    await ws_turn(user, conversation.pk, CODE_QUESTION)
    client = await logged_in(user)

    page = await client.get(f"/api/v1/conversations/{conversation.pk}/messages")

    answers = [m for m in json.loads(page.content)["items"] if m["role"] == "assistant"]
    assert [m["model"] for m in answers] == [STRONG]


@sync_to_async
def killed_auto_turn(user: Any, conversation: Any) -> int:
    """An auto turn begun, routed and reserved, whose task died before any text."""
    turn, plan = turn_start(
        user=user, conversation_id=conversation.pk, content=CODE_QUESTION, idempotency_key="k"
    )
    assert plan is not None and plan.model == STRONG
    message_id = turn.assistant_message.pk
    Message.objects.filter(pk=message_id).update(created_at=timezone.now() - timedelta(minutes=2))
    return message_id


async def test_a_reaped_auto_turn_is_settled_on_the_routed_models_price(priced_models):
    user, conversation = await auto_chat(tokens_per_month=100_000)
    message_id = await killed_auto_turn(user, conversation)

    assert await sync_to_async(turns_reap)(grace_s=0) == [message_id]

    message, record = await billed(message_id)
    assert message.status == "interrupted"
    assert record.model == STRONG  # reserved for the routed model, settled on it
    assert record.cost == cost_of(STRONG, record.prompt_tokens, record.completion_tokens) > 0


@sync_to_async
def plan_narrowed(user: Any, models: list[str]) -> None:
    from billing.services import plan_set

    plan_set(name=user.subscription.plan.name, models_allowed=models)


async def test_an_auto_turn_whose_plan_no_longer_offers_a_model_is_refused_cleanly(
    priced_models,
):
    user, conversation = await auto_chat(tokens_per_month=100_000)
    await plan_narrowed(user, ["retired-model"])
    client = ChatClient(user, conversation.pk)
    await client.connect()

    await client.send(type="message.send", content="Hello?", idempotency_key="k1")
    frame = await client.receive()
    await client.close()

    assert (frame["type"], frame["code"]) == ("error", "invalid")
    assert "no model" in frame["detail"]
    assert not await Message.objects.filter(conversation_id=conversation.pk).aexists()
    assert not await UsageRecord.objects.filter(conversation_id=conversation.pk).aexists()
