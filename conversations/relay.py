"""Coalesces a provider's token deltas into numbered pieces (about every 30 ms).

The first delta goes out at once (time to first token); later ones are batched so a fast model
does not cost one frame per token. Each piece is published at once to readers in this process
(``LocalTurn``) and appended to the turn's Redis Stream in batches (about every 100 ms, one
pipeline), for readers elsewhere and for resume. Redis writes are serialised and shielded from
cancellation, so a stop never leaves a gap in the sequence numbers.
"""

from __future__ import annotations

import asyncio
import time

from conversations.hub import LocalTurn
from conversations.streams import StreamEntry, stream_append

COALESCE_S = 0.03
REDIS_BATCH_S = 0.1


class Relay:
    def __init__(self, message_id: int, local: LocalTurn) -> None:
        self.message_id = message_id
        self.local = local
        self.seq = 0
        self.parts: list[str] = []
        self.first_delta_at: float | None = None
        self._pending: list[str] = []
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._unsaved: list[tuple[int, str]] = []
        self._saver: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def push(self, text: str) -> None:
        """Take one delta; publish it now if the window has passed, else soon."""
        if not text:
            return
        if self.first_delta_at is None:
            self.first_delta_at = time.monotonic()
        self.parts.append(text)
        self._pending.append(text)
        wait = COALESCE_S - (time.monotonic() - self._last_flush)
        if self.seq == 0 or wait <= 0:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self) -> None:
        """Publish what is pending as the next sequence number."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self.seq += 1
        self._last_flush = time.monotonic()
        self.local.publish(StreamEntry(self.seq, text, None))
        self._unsaved.append((self.seq, text))
        if self._saver is None or self._saver.done():
            self._saver = asyncio.get_running_loop().create_task(self._save_soon())

    async def _save_soon(self) -> None:
        if self._unsaved[0][0] != 1:  # the first piece is saved at once, the rest in batches
            await asyncio.sleep(REDIS_BATCH_S)
        batch, self._unsaved = self._unsaved, []
        await stream_append(self.message_id, batch)

    async def close(self) -> None:
        """Publish and save the rest; after this, ``seq`` is the last piece's number."""
        self.flush()
        while self._saver is not None and not self._saver.done():
            await asyncio.wait([self._saver])
        if self._unsaved:
            batch, self._unsaved = self._unsaved, []
            await stream_append(self.message_id, batch)
