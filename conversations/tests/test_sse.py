"""The SSE endpoints: send-and-stream, and resume after Last-Event-ID."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient

from conversations.tests.test_consumers import answer

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("provider_cleanup"),
]


def parse_sse(raw: str) -> list[dict[str, Any]]:
    events = []
    for block in raw.strip().split("\n\n"):
        event: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            event[name] = json.loads(value) if name == "data" else value
        events.append(event)
    return events


async def read_stream(response: Any) -> list[dict[str, Any]]:
    chunks = [chunk async for chunk in response.streaming_content]
    return parse_sse(b"".join(chunks).decode())


async def logged_in(user: Any) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def send(client: AsyncClient, conversation_id: int, key: str = "k") -> Any:
    return await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        {"content": "Hello?", "idempotency_key": key},
        content_type="application/json",
    )


async def test_posting_a_message_streams_the_answer_as_server_sent_events(conversation):
    client = await logged_in(conversation.owner)
    response = await send(client, conversation.pk)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["X-Accel-Buffering"] == "no"
    events = await read_stream(response)

    assert events[0]["event"] == "started"
    deltas = [e for e in events if e["event"] == "delta"]
    assert [int(e["id"]) for e in deltas] == list(range(1, len(deltas) + 1))
    assert "".join(e["data"]["text"] for e in deltas) == answer(20)
    assert events[-1]["event"] == "done"
    assert events[-1]["data"]["status"] == "complete"


async def test_last_event_id_resumes_after_that_delta(conversation, fake_llm):
    fake_llm.set_override(tokens=60, tokens_per_s=300)
    client = await logged_in(conversation.owner)
    events = await read_stream(await send(client, conversation.pk))
    message_id = events[0]["data"]["message_id"]
    deltas = [e for e in events if e["event"] == "delta"]
    assert len(deltas) > 3

    resumed = await client.get(
        f"/api/v1/messages/{message_id}/stream", headers={"Last-Event-ID": "3"}
    )
    rest = await read_stream(resumed)
    rest_deltas = [e for e in rest if e["event"] == "delta"]
    assert [int(e["id"]) for e in rest_deltas] == list(range(4, len(deltas) + 1))
    head = "".join(e["data"]["text"] for e in deltas[:3])
    assert head + "".join(e["data"]["text"] for e in rest_deltas) == answer(60)
    assert rest[-1]["event"] == "done"


async def test_someone_elses_message_stream_is_404(conversation, mallory):
    owner = await logged_in(conversation.owner)
    events = await read_stream(await send(owner, conversation.pk))
    message_id = events[0]["data"]["message_id"]
    intruder = await logged_in(mallory)
    response = await intruder.get(f"/api/v1/messages/{message_id}/stream")
    assert response.status_code == 404
    assert json.loads(response.content)["code"] == "not_found"


async def test_a_bad_last_event_id_is_a_400(conversation):
    client = await logged_in(conversation.owner)
    events = await read_stream(await send(client, conversation.pk))
    message_id = events[0]["data"]["message_id"]
    response = await client.get(
        f"/api/v1/messages/{message_id}/stream", headers={"Last-Event-ID": "abc"}
    )
    assert response.status_code == 400


async def test_a_missing_idempotency_key_is_a_400(conversation):
    client = await logged_in(conversation.owner)
    response = await client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"content": "Hello?"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "idempotency" in json.loads(response.content)["detail"]


async def test_the_idempotency_key_header_is_accepted(conversation):
    client = await logged_in(conversation.owner)
    response = await client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"content": "Hello?"},
        content_type="application/json",
        headers={"Idempotency-Key": "from-header"},
    )
    events = await read_stream(response)
    assert events[-1]["data"]["status"] == "complete"


async def test_an_open_tab_follows_a_turn_started_through_sse(conversation):
    from conversations.tests.conftest import ChatClient, text_of

    tab = ChatClient(conversation.owner, conversation.pk)
    assert await tab.connect()
    client = await logged_in(conversation.owner)
    events = await read_stream(await send(client, conversation.pk, key="via-sse"))
    seen = await tab.until_done()
    await tab.close()

    assert seen[0]["type"] == "turn.started"
    assert (seen[0]["message_id"], seen[0]["idempotency_key"]) == (
        events[0]["data"]["message_id"],
        "via-sse",
    )
    assert text_of(seen) == "".join(e["data"]["text"] for e in events if e["event"] == "delta")
