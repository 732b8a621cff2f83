"""Coalesces a provider's token deltas into numbered pieces (about every 30 ms).

The first delta goes out at once (time to first token); later ones are batched so a fast model
does not cost one frame per token. Each piece is published at once to readers in this process
(``LocalTurn``) and handed to the process's ``StreamBatcher``, which appends it to the turn's
Redis Stream (for readers elsewhere and for resume) within about 50 ms.
"""

from __future__ import annotations

import asyncio
import time

from conversations.batcher import stream_batcher
from conversations.hub import LocalTurn
from conversations.streams import StreamEntry
from llm.chat import Served

COALESCE_S = 0.03


class Relay:
    def __init__(self, message_id: int, local: LocalTurn) -> None:
        self.message_id = message_id
        self.local = local
        self.seq = 0
        self.parts: list[str] = []
        self.first_delta_at: float | None = None
        self.served: Served | None = None  # which provider and model answer, under failover
        self._pending: list[str] = []
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def push(self, text: str) -> None:
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
        stream_batcher().add(self.message_id, self.seq, text)

    def close(self) -> None:
        """Publish the rest; after this, ``seq`` is the last piece's number. The batcher
        writes the remaining pieces with the turn's done entry."""
        self.flush()
