"""The chat websocket, end to end: real PostgreSQL, real Redis, the fake OpenAI server."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from conversations import streams
from conversations.models import Message
from conversations.runtime import turn_runner
from conversations.tests.conftest import ChatClient, deltas, text_of
from llm.fake_server import token_text

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("provider_cleanup"),
]


def answer(tokens: int) -> str:
    return "".join(token_text(n) for n in range(1, tokens + 1))


async def message(message_id: int) -> Message:
    return await Message.objects.aget(pk=message_id)


async def start_turn(client: ChatClient, key: str = "k1", content: str = "Hello?") -> int:
    await client.send(type="message.send", content=content, idempotency_key=key)
    started = await client.receive()
    assert started["type"] == "turn.started", started
    return int(started["message_id"])


async def test_a_full_turn_streams_every_token_in_order_and_is_persisted(conversation):
    client = ChatClient(conversation.owner, conversation.pk)
    assert await client.connect()
    message_id = await start_turn(client)
    frames = await client.until_done()
    await client.close()

    assert [f["seq"] for f in deltas(frames)] == list(range(1, len(deltas(frames)) + 1))
    assert text_of(frames) == answer(20)
    done = frames[-1]
    assert done["status"] == "complete"
    assert done["usage"]["completion_tokens"] == 20
    stored = await message(message_id)
    assert (stored.status, stored.content) == ("complete", answer(20))
    assert stored.ttft_ms is not None and stored.completion_tokens == 20


async def test_resume_at_cursor_5_after_a_disconnect_delivers_6_onwards_exactly_once(
    conversation, fake_llm
):
    fake_llm.set_override(tokens=60, tokens_per_s=150)
    first = ChatClient(conversation.owner, conversation.pk)
    await first.connect()
    message_id = await start_turn(first)
    seen = [await first.receive() for _ in range(5)]
    assert [f["seq"] for f in seen] == [1, 2, 3, 4, 5]
    await first.close()

    second = ChatClient(conversation.owner, conversation.pk)
    await second.connect()
    await second.send(type="turn.resume", message_id=message_id, cursor=5)
    rest = await second.until_done()
    await second.close()

    seqs = [f["seq"] for f in deltas(rest)]
    assert seqs == list(range(6, 6 + len(seqs)))
    assert text_of(seen) + text_of(rest) == answer(60)
    assert rest[-1]["status"] == "complete"


async def test_reconnecting_after_completion_replays_the_stream_then_falls_back_to_the_database(
    conversation,
):
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    await client.until_done()

    await client.send(type="turn.resume", message_id=message_id, cursor=0)
    replay = await client.until_done()
    assert text_of(replay) == answer(20)

    turn_runner().hub.turns.pop(message_id)  # time passes: this process forgets the turn
    await client.send(type="turn.resume", message_id=message_id, cursor=0)
    from_redis = await client.until_done()
    assert text_of(from_redis) == answer(20)

    await streams.async_client().delete(streams.stream_key(message_id))  # the stream expired
    await client.send(type="turn.resume", message_id=message_id, cursor=0)
    from_db = await client.until_done()
    assert [(f["seq"], f["text"]) for f in deltas(from_db)] == [(1, answer(20))]
    await client.send(type="turn.resume", message_id=message_id, cursor=3)
    later = await client.until_done()
    await client.close()
    assert deltas(later) == []
    assert later[-1]["content"] == answer(20)
    assert later[-1]["status"] == "complete"


async def test_two_tabs_on_one_conversation_both_see_the_whole_turn(conversation):
    sender = ChatClient(conversation.owner, conversation.pk)
    watcher = ChatClient(conversation.owner, conversation.pk)
    await sender.connect()
    await watcher.connect()
    message_id = await start_turn(sender)
    sent_frames = await sender.until_done()
    watched = await watcher.until_done()
    await sender.close()
    await watcher.close()

    assert watched[0]["type"] == "turn.started"
    assert (watched[0]["message_id"], watched[0]["idempotency_key"]) == (message_id, "k1")
    assert text_of(watched) == text_of(sent_frames) == answer(20)


async def test_a_double_submit_gets_the_same_turn_and_one_generation(conversation, fake_llm):
    before = fake_llm.state.stats.requests
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    first_id = await start_turn(client, key="same")
    await client.until_done()
    second_id = await start_turn(client, key="same")
    again = await client.until_done()
    await client.close()

    assert first_id == second_id
    assert text_of(again) == answer(20)
    assert fake_llm.state.stats.requests - before == 1
    count = await Message.objects.filter(conversation=conversation).acount()
    assert count == 2


async def test_stop_ends_the_answer_quickly_and_keeps_the_partial_text(conversation, fake_llm):
    fake_llm.set_override(tokens=400, tokens_per_s=40)
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    first_delta = await client.receive()
    assert first_delta["type"] == "turn.delta"
    asked = time.monotonic()
    await client.send(type="turn.stop", message_id=message_id)
    frames = [first_delta, *await client.until_done()]
    elapsed = time.monotonic() - asked
    await client.close()

    assert frames[-1]["status"] == "stopped"
    assert elapsed < 1.0  # generous for a loaded CI machine; the benchmark measures it
    stored = await message(message_id)
    assert stored.status == "stopped"
    assert stored.content == text_of(frames) != ""
    assert stored.completion_tokens > 0
    assert len(stored.content.split()) < 400


async def test_stop_from_another_connection_reaches_the_running_turn(conversation, fake_llm):
    fake_llm.set_override(tokens=400, tokens_per_s=40)
    client = ChatClient(conversation.owner, conversation.pk)
    other = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    await other.connect()
    message_id = await start_turn(client)
    await client.receive()
    await streams.stop_request(message_id)  # as another process would: only the Redis flag
    frames = await client.until_done()
    await client.close()
    await other.close()
    assert frames[-1]["status"] == "stopped"


async def test_a_provider_500_before_the_first_token_fails_the_turn_clearly(conversation, fake_llm):
    fake_llm.set_override(fail="500")
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    frames = await client.until_done()
    await client.close()

    assert deltas(frames) == []
    assert frames[-1]["status"] == "failed"
    assert frames[-1]["error"]["code"] == "provider_unavailable"
    stored = await message(message_id)
    assert (stored.status, stored.content, stored.error_code) == (
        "failed",
        "",
        "provider_unavailable",
    )


async def test_a_connection_reset_mid_answer_interrupts_and_keeps_the_partial_text(
    conversation, fake_llm
):
    fake_llm.set_override(fail="reset", fail_after=7, tokens=30)
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    frames = await client.until_done()
    await client.close()

    assert frames[-1]["status"] == "interrupted"
    assert text_of(frames) == answer(7)
    stored = await message(message_id)
    assert (stored.status, stored.content) == ("interrupted", answer(7))


async def test_a_second_message_while_an_answer_streams_is_refused(conversation, fake_llm):
    fake_llm.set_override(tokens=200, tokens_per_s=50)
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    message_id = await start_turn(client, key="a")
    await client.send(type="message.send", content="and another", idempotency_key="b")
    while (frame := await client.receive())["type"] != "error":
        pass
    assert frame["code"] == "turn_in_progress"
    await client.send(type="turn.stop", message_id=message_id)
    await client.until_done()
    await client.close()


async def test_someone_elses_conversation_is_not_found(conversation, mallory):
    intruder = ChatClient(mallory, conversation.pk)
    await intruder.connect()
    frame = await intruder.receive()
    assert (frame["type"], frame["code"]) == ("error", "not_found")
    output = await intruder.ws.receive_output(timeout=2)
    assert output == {"type": "websocket.close", "code": 4404}


async def test_someone_elses_message_cannot_be_stopped_or_resumed(conversation, mallory):
    owner = ChatClient(conversation.owner, conversation.pk)
    await owner.connect()
    message_id = await start_turn(owner)
    await owner.until_done()
    await owner.close()

    own = await sync_to_async(conversation_for)(mallory)
    intruder = ChatClient(mallory, own.pk)
    await intruder.connect()
    for frame in (
        {"type": "turn.resume", "message_id": message_id, "cursor": 0},
        {"type": "turn.stop", "message_id": message_id},
    ):
        await intruder.send(**frame)
        reply = await intruder.receive()
        assert (reply["type"], reply["code"]) == ("error", "not_found")
    await intruder.close()


def conversation_for(user):
    from conversations.services import conversation_create

    return conversation_create(owner=user, model="fake-model")


async def test_anonymous_connections_are_refused(conversation):
    from django.contrib.auth.models import AnonymousUser

    client = ChatClient(AnonymousUser(), conversation.pk)
    assert await client.connect()
    frame = await client.receive()
    assert (frame["type"], frame["code"]) == ("error", "unauthenticated")
    assert await client.ws.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("{not json", "bad frame"),
        ('{"type": "message.delete", "message_id": 1}', "bad frame"),
        ('{"type": "message.send", "content": "hi"}', "idempotency_key"),
        ('{"type": "turn.resume", "message_id": 1, "cursor": -1}', "bad frame"),
        ("[1, 2, 3]", "bad frame"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_connection_survives(conversation, raw, detail):
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    await client.ws.send_to(text_data=raw)
    frame = await client.receive()
    assert (frame["type"], frame["code"]) == ("error", "invalid")
    assert detail in frame["detail"]
    await start_turn(client)
    assert (await client.until_done())[-1]["status"] == "complete"
    await client.close()


async def test_a_one_megabyte_message_is_refused_with_an_error_frame(conversation):
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    await client.send(type="message.send", content="x" * 1_000_000, idempotency_key="big")
    frame = await client.receive()
    assert (frame["type"], frame["code"]) == ("error", "invalid")
    await client.send(type="message.send", content="x" * 40_000, idempotency_key="long")
    frame = await client.receive()
    assert (frame["code"], "longer than") == ("invalid", "longer than")
    assert "longer than" in frame["detail"]
    assert await Message.objects.filter(conversation=conversation).acount() == 0
    await client.close()


async def test_many_concurrent_turns_lose_and_duplicate_nothing(alice, fake_llm):
    conversations = [await sync_to_async(conversation_for)(alice) for _ in range(8)]
    clients = [ChatClient(alice, c.pk) for c in conversations]
    for client in clients:
        await client.connect()
    ids = await asyncio.gather(*(start_turn(client) for client in clients))
    results = await asyncio.gather(*(client.until_done() for client in clients))
    for client in clients:
        await client.close()
    assert len(set(ids)) == 8
    for frames in results:
        assert [f["seq"] for f in deltas(frames)] == list(range(1, len(deltas(frames)) + 1))
        assert text_of(frames) == answer(20)


async def test_a_reader_in_another_process_gets_the_turn_through_redis_exactly_once(
    conversation, fake_llm
):
    fake_llm.set_override(tokens=60, tokens_per_s=150)
    sender = ChatClient(conversation.owner, conversation.pk)
    await sender.connect()
    message_id = await start_turn(sender)
    first = await sender.receive()
    assert first["seq"] == 1
    local = turn_runner().hub.turns.pop(message_id)  # readers from now on see only Redis
    remote = ChatClient(conversation.owner, conversation.pk)
    await remote.connect()
    await remote.send(type="turn.resume", message_id=message_id, cursor=2)
    frames = await remote.until_done()
    sent = [first, *await sender.until_done()]
    await sender.close()
    await remote.close()

    seqs = [f["seq"] for f in deltas(frames)]
    assert seqs == list(range(3, 3 + len(seqs)))
    head = "".join(entry.text or "" for entry in local.entries[:2])
    assert head + text_of(frames) == answer(60) == text_of(sent)
    assert frames[-1]["status"] == "complete"


async def test_one_connection_follows_a_bounded_number_of_answers(
    conversation, fake_llm, monkeypatch
):
    monkeypatch.setattr("conversations.consumers.MAX_READERS", 1)
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    finished = await start_turn(client, key="a")
    await client.until_done()
    fake_llm.set_override(tokens=400, tokens_per_s=20)
    running = await start_turn(client, key="b")
    await client.send(type="turn.resume", message_id=finished, cursor=0)
    while (frame := await client.receive())["type"] != "error":
        pass
    assert (frame["code"], "at most 1" in frame["detail"]) == ("invalid", True)
    await client.send(type="turn.stop", message_id=running)
    assert (await client.until_done())[-1]["status"] == "stopped"
    await client.close()


async def test_a_streaming_answer_is_marked_streaming_in_the_database(conversation, fake_llm):
    fake_llm.set_override(tokens=400, tokens_per_s=40)
    client = ChatClient(conversation.owner, conversation.pk)
    await client.connect()
    message_id = await start_turn(client)
    assert (await client.receive())["type"] == "turn.delta"
    for _ in range(20):  # the runner writes the status in batches, within about half a second
        if (await message(message_id)).status == "streaming":
            break
        await asyncio.sleep(0.1)
    assert (await message(message_id)).status == "streaming"
    await client.send(type="turn.stop", message_id=message_id)
    assert (await client.until_done())[-1]["status"] == "stopped"
    await client.close()
