"""Frames of one turn for any reader (websocket or SSE, any process, any tab), from a cursor.

Deltas come from the turn's Redis Stream; a reader resuming at cursor N gets N+1.. exactly once.
When the stream is gone (expired) or quiet while the database already holds the finished turn,
the rest comes from the database: the full text as delta 1 for a reader at cursor 0, and in
every case a ``turn.done`` frame carrying the final ``content``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer

from conversations import streams
from conversations.models import Message
from conversations.runtime import db, turn_runner

if TYPE_CHECKING:
    from conversations.services import TurnOutcome

IDLE_CHECK_MS = 5000


def delta_frame(message_id: int, seq: int, text: str) -> dict[str, Any]:
    return {"type": "turn.delta", "message_id": message_id, "seq": seq, "text": text}


def done_frame(message_id: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "turn.done", "message_id": message_id, **payload}


def entry_frame(message_id: int, entry: streams.StreamEntry) -> dict[str, Any]:
    if entry.done is not None:
        return done_frame(message_id, entry.done)
    return delta_frame(message_id, entry.seq, entry.text or "")


def message_state(message_id: int) -> Message | None:
    return (
        Message.objects.filter(pk=message_id)
        .only(
            "id",
            "status",
            "content",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "citations",
            "error_code",
            "error_detail",
            "cached",
        )
        .first()
    )


def done_payload(end: TurnOutcome | Message) -> dict[str, Any]:
    """What a ``done`` entry says, from a turn's outcome or from its finished message."""
    payload: dict[str, Any] = {
        "status": end.status,
        "usage": {"prompt_tokens": end.prompt_tokens, "completion_tokens": end.completion_tokens},
        "citations": end.citations or [],
        "content": end.content,
        "model": end.model,
    }
    if end.cached:
        payload["cached"] = True
    if end.error_code:
        payload["error"] = {"code": end.error_code, "detail": end.error_detail}
    return payload


def frames_from_database(message: Message, cursor: int) -> list[dict[str, Any]]:
    frames = []
    if cursor == 0 and message.content:
        frames.append(delta_frame(message.pk, 1, message.content))
    frames.append(done_frame(message.pk, done_payload(message)))
    return frames


async def turn_frames(
    message_id: int, cursor: int = 0, *, live: bool = False
) -> AsyncIterator[dict[str, Any]]:
    """Yield delta frames after ``cursor`` and then one done frame.

    ``live`` says the turn has just begun here, so its stream cannot have expired yet: the
    database check before the first blocking read is skipped (time to first token).
    """
    local = turn_runner().hub.get(message_id)
    if local is not None:  # generated in this process: straight from memory
        async for entry in local.read(cursor):
            yield entry_frame(message_id, entry)
        return
    after = cursor
    check_database = not live
    while True:
        if check_database:
            check_database = False
            finished = await finished_turn(message_id)
            if finished is not None:
                for frame in frames_from_database(finished, after):
                    yield frame
                return
        entries = await streams.stream_read(message_id, after, block_ms=IDLE_CHECK_MS)
        for entry in entries:
            yield entry_frame(message_id, entry)
            if entry.done is not None:
                return
            after = entry.seq
        check_database = not entries


async def finished_turn(message_id: int) -> Message | None:
    """The finished message when its stream is gone (or quiet with the turn already over)."""
    if await streams.stream_has_done(message_id):
        return None  # the stream has it all, done included: read it from there
    message = await db(message_state)(message_id)
    if message is None or message.is_active:
        return None
    return message


def group_name(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def started_frame(message_id: int, user_message_id: int, key: str) -> dict[str, Any]:
    return {
        "type": "turn.started",
        "message_id": message_id,
        "user_message_id": user_message_id,
        "idempotency_key": key,
    }


async def turn_announce(conversation_id: int, started: dict[str, Any], *, watchers: int) -> None:
    """Tell the conversation's open websockets that a turn began (other tabs follow it).

    ``watchers`` is how many of them the sender itself is (1 for a websocket, 0 for SSE): the
    group event costs several Redis round trips, so it is skipped when nobody else watches.
    """
    if await streams.watchers_count(conversation_id) > watchers:
        await get_channel_layer().group_send(
            group_name(conversation_id), {**started, "type": "turn.started.event"}
        )
