"""Runs turns as asyncio tasks detached from the connection that asked for them.

One ``TurnRunner`` per event loop keeps the tasks referenced, and one supervisor loop serves all
of them: every 100 ms it asks Redis (one MGET) whether any running turn was asked to stop, from
any process, and every 5 s it refreshes their heartbeats (one pipeline).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from conversations import streams
from conversations.hub import TurnHub

logger = logging.getLogger(__name__)

STOP_POLL_S = 0.1
BEAT_EVERY_TICKS = 50  # heartbeats every 5 s (their TTL is 20 s)
MARK_EVERY_TICKS = 5  # status `streaming` reaches the database within half a second

TurnJob = Callable[[int, "TurnRunner"], Coroutine[Any, Any, None]]


class TurnRunner:
    def __init__(self) -> None:
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.streams: dict[int, asyncio.Task[Any]] = {}
        self.stopping: set[int] = set()
        self.background: set[asyncio.Task[Any]] = set()
        self.hub = TurnHub()
        self.streaming_started: list[int] = []  # marked `streaming` in the database in batches
        self._supervisor: asyncio.Task[None] | None = None

    def start(self, message_id: int, job: TurnJob) -> None:
        """Run ``job`` for a turn unless this process already runs it."""
        if message_id in self.tasks:
            return
        self.hub.open(message_id)  # before any reader looks: they all read from memory
        task = asyncio.get_running_loop().create_task(job(message_id, self))
        self.tasks[message_id] = task
        task.add_done_callback(lambda _: self.forget(message_id))
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.get_running_loop().create_task(self.supervise())

    def forget(self, message_id: int) -> None:
        self.tasks.pop(message_id, None)
        self.streams.pop(message_id, None)
        self.stopping.discard(message_id)

    def spawn(self, coroutine: Awaitable[Any]) -> None:
        """Fire and forget, but keep a reference so the task is not garbage collected."""
        task = asyncio.ensure_future(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def mark_streaming(self) -> None:
        """One UPDATE for every turn whose first token came since the last one."""
        from conversations.services import turns_mark_streaming

        ids, self.streaming_started = self.streaming_started, []
        self.spawn(db(turns_mark_streaming)(message_ids=ids))

    async def stop(self, message_id: int) -> None:
        """Ask the turn to stop wherever it runs; here, at once."""
        self.cancel_stream(message_id)
        await streams.stop_request(message_id)

    def cancel_stream(self, message_id: int) -> None:
        stream = self.streams.get(message_id)
        if stream is not None and not stream.done():
            self.stopping.add(message_id)
            stream.cancel()

    async def supervise(self) -> None:
        ticks = 0
        while self.tasks or self.streaming_started:
            try:
                if ticks % BEAT_EVERY_TICKS == 0:  # the first tick beats at once
                    await streams.heartbeat_beat(list(self.tasks))
                if self.streaming_started and ticks % MARK_EVERY_TICKS == 0:
                    self.mark_streaming()
                for message_id in await streams.stop_requested(list(self.streams)):
                    self.cancel_stream(message_id)
            except Exception:  # Redis hiccup: keep supervising, the next tick retries
                logger.exception("turn supervisor tick failed")
            await asyncio.sleep(STOP_POLL_S)
            ticks += 1


_runners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TurnRunner] = (
    weakref.WeakKeyDictionary()
)


def turn_runner() -> TurnRunner:
    """The runner of the running event loop."""
    loop = asyncio.get_running_loop()
    runner = _runners.get(loop)
    if runner is None:
        runner = _runners[loop] = TurnRunner()
    return runner


_db_executor: ThreadPoolExecutor | None = None


def db_executor() -> ThreadPoolExecutor:
    global _db_executor
    if _db_executor is None:
        _db_executor = ThreadPoolExecutor(settings.DB_THREADS, thread_name_prefix="db")
    return _db_executor


def db[R](func: Callable[..., R]) -> Callable[..., Awaitable[R]]:
    """Run a synchronous service in a worker thread with a healthy database connection.

    Not thread-sensitive (turns of many users run their DB steps in parallel instead of queueing
    on one thread), but on a small pool of its own: many more threads would mostly fight over the
    GIL with the event loop, which is what delays everyone's first token.
    """
    return database_sync_to_async(  # type: ignore[no-any-return]
        func, thread_sensitive=False, executor=db_executor()
    )
