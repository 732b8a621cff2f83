"""In-process delivery of the turns this process is generating.

A reader in the same process as the turn's generator (the usual case: the connection that asked)
gets each piece from memory the moment it is produced, with no Redis round trip; readers in other
processes read the Redis Stream. Both see the same sequence numbers, so resume stays exactly-once
wherever the client reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from conversations.streams import StreamEntry

KEEP_AFTER_DONE_S = 30.0  # late local readers still find a finished turn in memory


class LocalTurn:
    """The entries of one turn so far (seq 1..n, then the done entry), and who waits for more."""

    def __init__(self) -> None:
        self.entries: list[StreamEntry] = []
        self._waiters: list[asyncio.Future[None]] = []

    def publish(self, entry: StreamEntry) -> None:
        self.entries.append(entry)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def read(self, after: int) -> AsyncIterator[StreamEntry]:
        """Entries with seq > ``after``, waiting for new ones until the done entry."""
        index = 0
        while True:
            while index < len(self.entries):
                entry = self.entries[index]
                index += 1
                if entry.done is not None:
                    yield entry
                    return
                if entry.seq > after:
                    yield entry
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


class TurnHub:
    def __init__(self) -> None:
        self.turns: dict[int, LocalTurn] = {}

    def open(self, message_id: int) -> LocalTurn:
        return self.turns.setdefault(message_id, LocalTurn())

    def get(self, message_id: int) -> LocalTurn | None:
        return self.turns.get(message_id)

    def release_later(self, message_id: int) -> None:
        asyncio.get_running_loop().call_later(KEEP_AFTER_DONE_S, self.turns.pop, message_id, None)
