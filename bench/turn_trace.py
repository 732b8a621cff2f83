"""The product's ASGI application, instrumented to show where a turn's first token waits.

Only for ``python -m bench.stream_load --trace``: the web process serves
``bench.turn_trace:application`` instead of ``chatbot.asgi:application``. The product's
behaviour is unchanged; a few module attributes are wrapped with timers (in this process only):

- every ``db(...)`` call of the consumer and of generation: queue wait (submitted -> a worker
  thread starts it), run time in the thread, and resume (thread done -> the awaiting task runs);
- per turn: frame received, ``turn.started`` handed to the server, generate task started, provider
  request sent, first token from the provider, and the first ``turn.delta`` handed to the server;
- every Redis append of the relay (its duration).

Timestamps are ``time.perf_counter()`` of this process; they are written as JSON to
``$BENCH_TRACE_FILE`` when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import json
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from chatbot.asgi import application
from conversations import batcher, consumers, generation
from llm.chat import Delta

__all__ = ["application"]

TURNS: defaultdict[int, dict[str, float]] = defaultdict(dict)
CALLS: defaultdict[str, list[tuple[float, float, float]]] = defaultdict(list)
received_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("received_at")
turn_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("turn_id")
MISSING: list[str] = []  # what could not be wrapped: the product changed under the trace
now = time.perf_counter


def traced_db(original: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``conversations.runtime.db``, timing the queue, the run and the resume."""

    def db(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            times: dict[str, float] = {}

            @functools.wraps(func)
            def in_thread(*a: Any, **kw: Any) -> Any:
                times["start"] = now()
                try:
                    return func(*a, **kw)
                finally:
                    times["end"] = now()

            submitted = now()
            result = await original(in_thread)(*args, **kwargs)
            resumed = now()
            queue, run = times["start"] - submitted, times["end"] - times["start"]
            CALLS[func.__name__].append((queue, run, resumed - times["end"]))
            turn_record(func.__name__, result, kwargs, submitted, times, resumed)
            return result

        return call

    return db


BEGIN_STEPS = {"turn_begin": "begin", "turn_start": "begin"}


def turn_record(
    name: str,
    result: Any,
    kwargs: dict[str, Any],
    submitted: float,
    times: dict[str, float],
    resumed: float,
) -> None:
    """Tie the begin (or begin + plan) call and a separate plan call to their turn."""
    step = BEGIN_STEPS.get(name)
    if step is None:
        return
    if step == "begin":
        turn = result[0] if isinstance(result, tuple) else result
        message_id = turn.assistant_message.pk
        if (received := received_at.get(None)) is not None:
            TURNS[message_id]["received"] = received
    else:
        message_id = kwargs["message_id"]
    TURNS[message_id].update(
        {
            f"{step}_submitted": submitted,
            f"{step}_start": times["start"],
            f"{step}_end": times["end"],
            f"{step}_resumed": resumed,
        }
    )


class TracedProvider:
    """Wraps the chat provider: when the request went out and when its first token came."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    def stream_chat(self, **kwargs: Any) -> AsyncIterator[Any]:
        return self._stream(**kwargs)

    async def _stream(self, **kwargs: Any) -> AsyncIterator[Any]:
        message_id = turn_id.get(None)
        record = TURNS[message_id] if message_id is not None else {}
        record["request"] = now()
        async with contextlib.aclosing(self.inner.stream_chat(**kwargs)) as events:
            async for event in events:
                if isinstance(event, Delta) and "first_token" not in record:
                    record["first_token"] = now()
                yield event

    async def aclose(self) -> None:
        await self.inner.aclose()


def wrap(owner: object, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``make(original)``; note it when the product has no such name."""
    original = getattr(owner, name, None)
    if original is None:
        MISSING.append(f"{getattr(owner, '__name__', owner)}.{name}")
        return
    setattr(owner, name, make(original))


def traced_receive(original: Any) -> Any:
    async def receive(
        self: Any, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        received_at.set(now())
        await original(self, text_data, bytes_data)

    return receive


def traced_send_json(original: Any) -> Any:
    async def send_json(self: Any, payload: dict[str, Any]) -> None:
        await original(self, payload)
        kind = payload.get("type")
        if kind == "turn.delta" and payload.get("seq") == 1:
            TURNS[payload["message_id"]]["first_delta_sent"] = now()
        elif kind == "turn.started":
            TURNS[payload["message_id"]].setdefault("started_sent", now())

    return send_json


def traced_generate(original: Any) -> Any:
    async def turn_generate(message_id: int, runner: Any, *args: Any, **kwargs: Any) -> None:
        TURNS[message_id].setdefault("generate", now())
        turn_id.set(message_id)
        await original(message_id, runner, *args, **kwargs)

    return turn_generate


def traced_append(original: Any) -> Any:
    """Times every Redis append, whatever its arguments (one piece or a batch)."""

    async def stream_append(*args: Any, **kwargs: Any) -> Any:
        started = now()
        try:
            return await original(*args, **kwargs)
        finally:
            CALLS["stream_append"].append((0.0, now() - started, 0.0))

    return stream_append


def traced_provider(original: Any) -> Any:
    return functools.cache(lambda: TracedProvider(original()))


def install() -> None:
    wrap(consumers.ConversationConsumer, "receive", traced_receive)
    wrap(consumers.ConversationConsumer, "send_json", traced_send_json)
    wrap(generation, "turn_generate", traced_generate)  # what the consumer's job calls
    wrap(consumers, "db", traced_db)
    wrap(generation, "db", traced_db)
    wrap(batcher.StreamBatcher, "_write", traced_append)  # one pipeline: pieces of all turns
    wrap(generation, "chat_provider", traced_provider)


def dump() -> None:
    path = os.environ.get("BENCH_TRACE_FILE")
    if path:
        Path(path).write_text(json.dumps({"turns": TURNS, "calls": CALLS, "missing": MISSING}))


def exit_on_sigterm(signum: int, frame: Any) -> None:
    sys.exit(128 + signum)


install()
atexit.register(dump)
# uvicorn restores the handler it found and raises SIGTERM again after its shutdown: exit
# through ``sys.exit`` then, so that ``dump`` runs (the default action would skip atexit).
signal.signal(signal.SIGTERM, exit_on_sigterm)
