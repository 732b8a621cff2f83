"""The fake server's application, and starting it in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from llm.fake_server.chat import chat_completions
from llm.fake_server.control import control, control_moderation, control_reset, models, stats
from llm.fake_server.embeddings import embeddings
from llm.fake_server.moderations import moderations
from llm.fake_server.state import STATE, FakeServerConfig, FakeServerState

_MAX_BODY_BYTES = 64 * 1024 * 1024


def create_app(config: FakeServerConfig) -> web.Application:
    """The aiohttp application; its state is `app[STATE]`."""
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app[STATE] = FakeServerState(defaults=config)
    app.on_shutdown.append(_release_stalled)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/moderations", moderations)
    app.router.add_post("/_control/moderation", control_moderation)
    app.router.add_post("/_control", control)
    app.router.add_post("/_control/reset", control_reset)
    app.router.add_get("/_stats", stats)
    return app


async def _release_stalled(app: web.Application) -> None:
    app[STATE].stopping.set()


async def start_server(
    config: FakeServerConfig, host: str, port: int
) -> tuple[web.AppRunner, FakeServerState, int]:
    """Serve on the running loop; return the runner, the state and the bound port."""
    app = create_app(config)
    # Cancelling handlers on disconnect ends a stalled stream when its client gives up.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
    await site.start()
    return runner, app[STATE], int(runner.addresses[0][1])


class RunningFakeServer:
    """A fake server on its own event loop in a daemon thread.

    `state.stats` can be read directly; `base_url` is like "http://127.0.0.1:PORT/v1".
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        runner: web.AppRunner,
        state: FakeServerState,
        port: int,
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.state = state
        self._loop = loop
        self._thread = thread
        self._runner: web.AppRunner | None = runner

    def set_override(self, count: int = 1, **changes: Any) -> FakeServerConfig:
        """Like `POST /_control`: the next `count` chat requests use `changes`."""
        return self._on_loop(lambda: self.state.set_override(changes, count))

    def set_flag_words(self, *words: str) -> None:
        """Like `POST /_control/moderation`: /v1/moderations flags texts with these words."""
        flagged = frozenset(word.lower() for word in words)
        self._on_loop(lambda: setattr(self.state, "flag_words", flagged))

    def clear_override(self) -> None:
        """Like `POST /_control/reset`."""
        self._on_loop(self.state.clear_override)

    def stop(self) -> None:
        """Stop serving (stalled streams are dropped) and end the thread."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        asyncio.run_coroutine_threadsafe(runner.cleanup(), self._loop).result(10)
        _stop_loop(self._loop, self._thread)

    def _on_loop[T](self, action: Callable[[], T]) -> T:
        """Run `action` on the server's loop, so state changes never race a request."""

        async def run() -> T:
            return action()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)


def run_in_thread(config: FakeServerConfig, port: int = 0) -> RunningFakeServer:
    """Start a fake server on 127.0.0.1 (port 0: a free one) in a daemon thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-openai", daemon=True)
    thread.start()
    starting = asyncio.run_coroutine_threadsafe(start_server(config, "127.0.0.1", port), loop)
    try:
        runner, state, bound_port = starting.result(10)
    except BaseException:
        _stop_loop(loop, thread)
        raise
    return RunningFakeServer(loop, thread, runner, state, bound_port)


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
