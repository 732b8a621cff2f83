"""Fixtures for chat tests: a fake OpenAI-compatible server and websocket clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from chatbot.users.tests.factories import UserFactory
from conversations.models import Conversation
from conversations.routing import websocket_urlpatterns
from conversations.runtime import turn_runner
from conversations.services import conversation_create
from llm.circuit_breaker import KEY_PREFIX
from llm.fake_server import FakeServerConfig, RunningFakeServer, run_in_thread
from llm.registry import chat_provider, moderator

FAKE_MODEL = "fake-model"


@pytest.fixture(scope="session")
def fake_server() -> Iterator[RunningFakeServer]:
    server = run_in_thread(FakeServerConfig(tokens=20))
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_server: RunningFakeServer, settings: Any) -> Iterator[RunningFakeServer]:
    """Point the product at the fake server (cleared of overrides) for this test."""
    fake_server.clear_override()
    settings.OPENAI_BASE_URL = fake_server.base_url
    settings.OPENAI_API_KEY = "test-key-not-real"
    settings.CHAT_MODELS = [FAKE_MODEL, "fake-500", "fake-reset"]
    settings.CHAT_PROVIDER_READ_TIMEOUT = 5
    breakers_reset()
    yield fake_server
    fake_server.clear_override()


def breakers_reset() -> None:
    """Forget every provider's circuit breaker: failures of one test must not open it for the
    next (the breaker is shared through Redis, as in production)."""
    with redis.Redis.from_url(django_settings.REDIS_URL) as client:
        keys = list(client.scan_iter(f"{KEY_PREFIX}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture(scope="session")
def backup_server() -> Iterator[RunningFakeServer]:
    server = run_in_thread(FakeServerConfig(tokens=5))
    yield server
    server.stop()


@pytest.fixture
def two_providers(
    fake_llm: RunningFakeServer, backup_server: RunningFakeServer, settings: Any
) -> tuple[RunningFakeServer, RunningFakeServer]:
    """Two providers: "primary" (the usual fake server) then "backup" (5-token answers)."""
    backup_server.clear_override()
    settings.CHAT_PROVIDERS = (
        f"primary={fake_llm.base_url}|TEST_PRIMARY_KEY,backup={backup_server.base_url}"
    )
    settings.CHAT_FALLBACKS = f"{FAKE_MODEL}=primary:{FAKE_MODEL},backup:backup-model"
    settings.CHAT_FIRST_TOKEN_TIMEOUT = 1
    settings.CHAT_RETRY_AFTER_MAX = 1
    return fake_llm, backup_server


@pytest.fixture
def alice(transactional_db: None) -> Any:
    return UserFactory.create(username="alice")


@pytest.fixture
def mallory(transactional_db: None) -> Any:
    return UserFactory.create(username="mallory")


@pytest.fixture
def conversation(alice: Any, fake_llm: RunningFakeServer) -> Conversation:
    return conversation_create(owner=alice, title="test", model=FAKE_MODEL)


class ChatClient:
    """A websocket client of the chat protocol, with the frames it has seen."""

    def __init__(self, user: Any, conversation_id: int) -> None:
        application = URLRouter(websocket_urlpatterns)
        self.ws = WebsocketCommunicator(application, f"/ws/conversations/{conversation_id}/")
        self.ws.scope["user"] = user

    async def connect(self) -> bool:
        connected, _ = await self.ws.connect()
        return bool(connected)

    async def send(self, **frame: Any) -> None:
        await self.ws.send_to(text_data=json.dumps(frame))

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await self.ws.receive_from(timeout=timeout))
        return frame

    async def until_done(self, timeout: float = 10) -> list[dict[str, Any]]:
        """Frames up to and including the next turn.done (or error)."""
        frames = []
        while True:
            frame = await self.receive(timeout)
            frames.append(frame)
            if frame["type"] in {"turn.done", "error"}:
                return frames

    async def close(self) -> None:
        await self.ws.disconnect()


def deltas(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == "turn.delta"]


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(frame["text"] for frame in deltas(frames))


@pytest_asyncio.fixture
async def provider_cleanup(settings: Any) -> Any:
    """Close the provider's (and a remote moderator's) HTTP sessions of this test's loop.

    First wait for the turns' background steps (the answer cache's store, summaries): they run
    in database threads, which outlive the test's loop and would otherwise write into the next
    test's database.
    """
    yield
    runner = turn_runner()
    if runner.tasks:  # a turn that has just sent its end may not have spawned its steps yet
        await asyncio.wait(list(runner.tasks.values()), timeout=0.5)
    if runner.background:
        await asyncio.wait(list(runner.background), timeout=10)
    await chat_provider().aclose()
    checker = moderator()
    if checker is not None:
        await checker.aclose()
