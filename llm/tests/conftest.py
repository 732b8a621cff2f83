from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from llm.fake_server import FakeServerConfig, RunningFakeServer, run_in_thread
from llm.openai_compatible import OpenAICompatibleProvider


@pytest.fixture(scope="session")
def shared_fake_server() -> Iterator[RunningFakeServer]:
    server = run_in_thread(FakeServerConfig(tokens=20))
    yield server
    server.stop()


@pytest.fixture
def fake_server(shared_fake_server: RunningFakeServer) -> RunningFakeServer:
    """The session's fake server, with no override left over from another test."""
    shared_fake_server.clear_override()
    return shared_fake_server


@pytest_asyncio.fixture
async def provider(fake_server: RunningFakeServer) -> AsyncIterator[OpenAICompatibleProvider]:
    provider = OpenAICompatibleProvider(fake_server.base_url, "test-key", name="fake")
    yield provider
    await provider.aclose()


@pytest.fixture(scope="session")
def shared_backup_server() -> Iterator[RunningFakeServer]:
    server = run_in_thread(FakeServerConfig(tokens=5))
    yield server
    server.stop()


@pytest.fixture
def backup_server(shared_backup_server: RunningFakeServer) -> RunningFakeServer:
    """A second fake server (answers of 5 tokens), to play another provider."""
    shared_backup_server.clear_override()
    return shared_backup_server
