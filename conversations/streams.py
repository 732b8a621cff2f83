"""Per-turn token streams in Redis Streams, plus the stop flag and heartbeat of each turn.

Entry ids are ``0-<seq>``: the sequence number *is* the stream id, so a reader resuming at cursor
N asks for ids after ``0-N`` and gets N+1.. exactly once, in order, from any process. Deltas
carry ``t`` (text); the last entry carries ``done`` (a JSON payload) instead.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

STREAM_TTL_S = 3600  # a live turn's stream; refreshed on every append
DONE_TTL_S = 600  # after the turn ends, the database is the record
STOP_TTL_S = 600
HEARTBEAT_TTL_S = 20
SOCKET_TIMEOUT_S = 30

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def stream_key(message_id: int) -> str:
    return f"turn:{message_id}:s"


def stop_key(message_id: int) -> str:
    return f"turn:{message_id}:stop"


def heartbeat_key(message_id: int) -> str:
    return f"turn:{message_id}:hb"


def async_client() -> aioredis.Redis:
    """One pooled async Redis client per event loop (connections cannot cross loops)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # Stream reads block up to 5 s; redis-py's default socket timeout (5 s) would race them.
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, max_connections=2000, socket_timeout=SOCKET_TIMEOUT_S
        )
        _clients[loop] = client
    return client


def sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@dataclass(frozen=True, slots=True)
class StreamEntry:
    seq: int
    text: str | None  # a delta
    done: dict[str, Any] | None  # the end of the turn


def parse_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> StreamEntry:
    seq = int(entry_id.split(b"-", 1)[1])
    if b"done" in fields:
        return StreamEntry(seq, None, json.loads(fields[b"done"]))
    return StreamEntry(seq, fields[b"t"].decode(), None)


async def stream_read(message_id: int, after: int, block_ms: int = 5000) -> list[StreamEntry]:
    """Entries after seq ``after``, waiting up to ``block_ms`` for the first one."""
    key = stream_key(message_id)
    reply: Any = await async_client().xread({key: f"0-{after}"}, block=block_ms, count=500)
    if not reply:
        return []
    return [parse_entry(entry_id, fields) for entry_id, fields in reply[0][1]]


async def stream_has_done(message_id: int) -> bool:
    """Whether the turn's stream still exists and ends with its done entry (one look at the end)."""
    last: Any = await async_client().xrevrange(stream_key(message_id), count=1)
    return bool(last) and b"done" in last[0][1]


async def stop_requested(message_ids: list[int]) -> set[int]:
    """Which of these turns were asked to stop, in one round trip."""
    if not message_ids:
        return set()
    flags = await async_client().mget([stop_key(mid) for mid in message_ids])
    return {mid for mid, flag in zip(message_ids, flags, strict=True) if flag}


async def stop_request(message_id: int) -> None:
    await async_client().set(stop_key(message_id), b"1", ex=STOP_TTL_S)


async def heartbeat_beat(message_ids: list[int]) -> None:
    """Prove these turns are alive; the reaper treats a missing heartbeat as a dead turn."""
    if not message_ids:
        return
    async with async_client().pipeline(transaction=False) as pipe:
        for mid in message_ids:
            pipe.set(heartbeat_key(mid), b"1", ex=HEARTBEAT_TTL_S)
        await pipe.execute()


def heartbeats_alive(message_ids: list[int]) -> set[int]:
    """Synchronous check for the reaper: the turns whose heartbeat is still present."""
    if not message_ids:
        return set()
    with sync_client() as client:
        flags = client.mget([heartbeat_key(mid) for mid in message_ids])
    return {mid for mid, flag in zip(message_ids, flags, strict=True) if flag}


def stream_text_sync(message_id: int) -> tuple[str, int, bool]:
    """For the reaper: the text streamed so far, the last seq, and whether ``done`` was written."""
    with sync_client() as client:
        entries: Any = client.xrange(stream_key(message_id))
    parsed = [parse_entry(entry_id, fields) for entry_id, fields in entries]
    text = "".join(entry.text for entry in parsed if entry.text is not None)
    last = parsed[-1].seq if parsed else 0
    return text, last, any(entry.done is not None for entry in parsed)


def stream_close_sync(message_id: int, seq: int, payload: dict[str, Any]) -> None:
    key = stream_key(message_id)
    with sync_client() as client, client.pipeline(transaction=False) as pipe:
        pipe.xadd(key, {"done": json.dumps(payload)}, id=f"0-{seq}")
        pipe.expire(key, DONE_TTL_S)
        pipe.execute()


def watchers_key(conversation_id: int) -> str:
    return f"conversation:{conversation_id}:watchers"


WATCHERS_TTL_S = 86400


async def watchers_change(conversation_id: int, delta: int) -> None:
    """Count open connections on a conversation (a crash can only leave the count too high)."""
    key = watchers_key(conversation_id)
    async with async_client().pipeline(transaction=False) as pipe:
        pipe.incrby(key, delta)
        pipe.expire(key, WATCHERS_TTL_S)
        await pipe.execute()


async def watchers_count(conversation_id: int) -> int:
    return int(await async_client().get(watchers_key(conversation_id)) or 0)
