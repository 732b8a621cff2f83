"""Coalesces a provider's token deltas into stream entries (about every 30 ms).

The first delta goes out at once (time to first token); later ones are batched so a fast model
does not cost one Redis write and one websocket frame per token. Appends are serialised by a
lock and shielded from cancellation, so a stop never leaves a gap in the sequence numbers.
"""

from __future__ import annotations

import asyncio
import time

from conversations.streams import stream_append

COALESCE_S = 0.03


class Relay:
    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self.seq = 0
        self.parts: list[str] = []
        self.first_delta_at: float | None = None
        self._pending: list[str] = []
        self._last_flush = 0.0
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[None] | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def push(self, text: str) -> None:
        """Take one delta; write it now if the window has passed, else soon."""
        if not text:
            return
        if self.first_delta_at is None:
            self.first_delta_at = time.monotonic()
        self.parts.append(text)
        self._pending.append(text)
        wait = COALESCE_S - (time.monotonic() - self._last_flush)
        if self.seq == 0 or wait <= 0:
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_task = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Write what is pending as the next sequence number."""
        async with self._lock:
            if not self._pending:
                return
            text = "".join(self._pending)
            self._pending.clear()
            self.seq += 1
            self._last_flush = time.monotonic()
            self._inflight = asyncio.ensure_future(stream_append(self.message_id, self.seq, text))
            await asyncio.shield(self._inflight)

    async def close(self) -> None:
        """Flush the rest; after this, ``seq`` is the last delta's number."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for pending in (self._timer_task, self._inflight):
            if pending is not None and not pending.done():
                await asyncio.wait([pending])
        await self.flush()
