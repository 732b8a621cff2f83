"""One writer per process for the turns' Redis Streams: every piece of every running turn is
appended in one pipeline about every 50 ms, instead of one round trip per turn and piece.

Readers in this process never wait for it (they read from memory, see ``hub``); it serves
readers in other processes and resume, where 50 ms of lag is invisible. On a Redis error the
batch is kept and retried, so sequence numbers in Redis never have gaps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any

from conversations.streams import (
    DONE_TTL_S,
    STREAM_TTL_S,
    async_client,
    heartbeat_key,
    stream_key,
)

logger = logging.getLogger(__name__)

BATCH_S = 0.05


class StreamBatcher:
    def __init__(self) -> None:
        self.pending: dict[int, list[tuple[int, str]]] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def add(self, message_id: int, seq: int, text: str) -> None:
        self.pending.setdefault(message_id, []).append((seq, text))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        await asyncio.sleep(BATCH_S)
        try:
            await self.flush()
        except Exception:
            logger.exception("appending to turn streams failed; retrying")
        if self.pending:
            self._task = asyncio.get_running_loop().create_task(self._tick())

    async def flush(self) -> None:
        """Write everything pending now; on an error keep it for the next tick."""
        async with self._lock:
            batch, self.pending = self.pending, {}
            if not batch:
                return
            try:
                await self._write(batch)
            except BaseException:
                for message_id, pieces in batch.items():  # keep order: old pieces first
                    self.pending[message_id] = pieces + self.pending.get(message_id, [])
                raise

    async def _write(
        self, batch: dict[int, list[tuple[int, str]]], done: tuple[int, int, str] | None = None
    ) -> None:
        async with async_client().pipeline(transaction=False) as pipe:
            for message_id, pieces in batch.items():
                key = stream_key(message_id)
                for seq, text in pieces:
                    pipe.xadd(key, {"t": text}, id=f"0-{seq}")
                pipe.expire(key, STREAM_TTL_S)
            if done is not None:
                message_id, seq, payload = done
                key = stream_key(message_id)
                pipe.xadd(key, {"done": payload}, id=f"0-{seq}")
                pipe.expire(key, DONE_TTL_S)
                pipe.delete(heartbeat_key(message_id))
            await pipe.execute()

    async def close(self, message_id: int, seq: int, payload: dict[str, Any]) -> None:
        """Write the turn's last pieces and its done entry (``seq``) in one round trip."""
        async with self._lock:
            pieces = self.pending.pop(message_id, [])
            try:
                await self._write({message_id: pieces}, (message_id, seq, json.dumps(payload)))
            except BaseException:
                self.pending[message_id] = pieces + self.pending.get(message_id, [])
                raise


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamBatcher] = (
    weakref.WeakKeyDictionary()
)


def stream_batcher() -> StreamBatcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = StreamBatcher()
    return batcher
