from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from llm.fake_server import FakeServerConfig, run_in_thread
from llm.openai_compatible import OpenAICompatibleProvider
from llm.tests.streaming import chat

CHAT_BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi there"}]}
PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as response:
        return response.status, await response.json()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_run_in_thread_serves_on_a_free_port_of_127_0_0_1(fake_server) -> None:
    assert fake_server.port > 0
    assert fake_server.base_url == f"http://127.0.0.1:{fake_server.port}/v1"


@pytest.mark.asyncio
async def test_models_lists_the_models_that_fail_on_purpose(fake_server, http) -> None:
    async with http.get(f"{fake_server.base_url}/models") as response:
        names = [model["id"] for model in (await response.json())["data"]]

    assert {"fake-model", "fake-500", "fake-429", "fake-reset"} <= set(names)


@pytest.mark.asyncio
async def test_the_stream_is_sse_with_one_token_per_chunk_usage_and_done(fake_server, http) -> None:
    body = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}
    fake_server.set_override(tokens=3)
    async with http.post(f"{fake_server.base_url}/chat/completions", json=body) as response:
        raw = (await response.read()).decode()
        content_type = response.content_type

    events = [event.removeprefix("data: ") for event in raw.split("\n\n") if event]
    chunks = [json.loads(event) for event in events[:-1]]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert content_type == "text/event-stream"
    assert contents == ["", "tok1 ", "tok2 ", "tok3 ", None]
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert events[-1] == "[DONE]"


@pytest.mark.asyncio
async def test_a_non_streaming_completion_returns_the_whole_answer_and_usage(
    fake_server, http
) -> None:
    fake_server.set_override(tokens=4)

    status, body = await post(http, f"{fake_server.base_url}/chat/completions", CHAT_BODY)

    assert status == 200
    assert body["choices"][0]["message"]["content"] == "tok1 tok2 tok3 tok4 "
    assert body["usage"]["completion_tokens"] == 4


@pytest.mark.asyncio
async def test_control_applies_to_the_next_count_requests_then_reverts(fake_server, http) -> None:
    url = f"{fake_server.base_url}/chat/completions"
    root = fake_server.base_url.removesuffix("/v1")

    control_status, _ = await post(http, f"{root}/_control", {"fail": "500", "count": 2})
    statuses = [(await post(http, url, CHAT_BODY))[0] for _ in range(3)]

    assert control_status == 200
    assert statuses == [500, 500, 200]


@pytest.mark.asyncio
async def test_control_reset_drops_a_pending_override(fake_server, http) -> None:
    root = fake_server.base_url.removesuffix("/v1")
    await post(http, f"{root}/_control", {"fail": "429", "count": 5})

    await post(http, f"{root}/_control/reset", {})
    status, _ = await post(http, f"{fake_server.base_url}/chat/completions", CHAT_BODY)

    assert status == 200


@pytest.mark.asyncio
async def test_control_rejects_unknown_settings_and_bad_fail_modes(fake_server, http) -> None:
    root = fake_server.base_url.removesuffix("/v1")

    unknown, _ = await post(http, f"{root}/_control", {"colour": "red"})
    bad_mode, _ = await post(http, f"{root}/_control", {"fail": "418"})

    assert (unknown, bad_mode) == (400, 400)


@pytest.mark.asyncio
async def test_stats_count_requests_completed_streams_and_tokens(fake_server, http) -> None:
    provider = OpenAICompatibleProvider(fake_server.base_url, None)
    root = fake_server.base_url.removesuffix("/v1")
    async with http.get(f"{root}/_stats") as response:
        before = await response.json()

    fake_server.set_override(tokens=5)
    await chat(provider)
    await chat(provider, model="fake-500")
    await provider.aclose()
    async with http.get(f"{root}/_stats") as response:
        after = await response.json()

    assert after["requests"] - before["requests"] == 2
    assert after["streams_completed"] - before["streams_completed"] == 1
    assert after["tokens_sent"] - before["tokens_sent"] == 5


@pytest.mark.asyncio
@pytest.mark.parametrize(("model", "status"), [("fake-500", 500), ("fake-429", 429)])
async def test_failing_model_names_fail_every_time(fake_server, http, model, status) -> None:
    body = {**CHAT_BODY, "model": model}
    url = f"{fake_server.base_url}/chat/completions"

    statuses = [(await post(http, url, body))[0] for _ in range(3)]

    assert statuses == [status] * 3


@pytest.mark.asyncio
async def test_embeddings_are_deterministic_unit_vectors_of_the_asked_size(
    fake_server, http
) -> None:
    url = f"{fake_server.base_url}/embeddings"
    body = {"model": "fake-embedding", "input": ["refund policy", "opening hours"]}

    _, first = await post(http, url, {**body, "dimensions": 64})
    _, again = await post(http, url, {**body, "dimensions": 64})
    _, single = await post(http, url, {"input": "refund policy"})

    vectors = [item["embedding"] for item in first["data"]]
    assert [item["embedding"] for item in again["data"]] == vectors
    assert [len(v) for v in vectors] == [64, 64]
    assert all(math.isclose(math.sqrt(cosine(v, v)), 1.0) for v in vectors)
    assert len(single["data"][0]["embedding"]) == 384
    assert first["usage"]["prompt_tokens"] == 4


@pytest.mark.asyncio
async def test_embeddings_of_texts_sharing_words_are_closer(fake_server, http) -> None:
    texts = ["how do refunds work", "refunds work within 30 days", "the cafeteria opens at 8"]
    _, body = await post(http, f"{fake_server.base_url}/embeddings", {"input": texts})

    question, related, unrelated = (item["embedding"] for item in body["data"])

    assert cosine(question, related) > cosine(question, unrelated) + 0.2


@pytest.mark.asyncio
async def test_base64_embeddings_decode_to_the_float_vector(fake_server, http) -> None:
    url = f"{fake_server.base_url}/embeddings"
    body = {"input": "refund policy", "dimensions": 8}

    _, floats = await post(http, url, body)
    _, encoded = await post(http, url, {**body, "encoding_format": "base64"})

    decoded = struct.unpack("<8f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], rel=1e-6)


@pytest.mark.asyncio
async def test_a_stalled_stream_is_dropped_when_the_server_stops() -> None:
    server = run_in_thread(FakeServerConfig(fail="stall", fail_after=1))
    provider = OpenAICompatibleProvider(server.base_url, None, read_timeout=30)
    try:
        pending = asyncio.create_task(chat(provider))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(server.stop)
        outcome = await asyncio.wait_for(pending, 5)
    finally:
        server.stop()
        await provider.aclose()

    assert outcome.deltas == ["tok1 "]
    assert outcome.error is not None
    assert outcome.error.code == "connection"


def test_the_command_line_serves_on_the_port_it_is_given() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "llm.fake_server", "--port", str(port), "--tokens", "3"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    with subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE) as process:
        try:
            banner = process.stdout.readline().decode() if process.stdout else ""
            answer = asyncio.run(_complete_once(f"http://127.0.0.1:{port}/v1"))
        finally:
            process.terminate()

    assert f"http://127.0.0.1:{port}/v1" in banner
    assert answer == "tok1 tok2 tok3 "


async def _complete_once(base_url: str) -> str:
    deadline = time.monotonic() + 10
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                _, body = await post(http, f"{base_url}/chat/completions", CHAT_BODY)
                return str(body["choices"][0]["message"]["content"])
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_moderations_flag_texts_with_the_words_set_through_control(fake_server, http) -> None:
    root = fake_server.base_url.removesuffix("/v1")
    status, _ = await post(http, f"{root}/_control/moderation", {"flag": ["Badword"]})
    try:
        _, reply = await post(
            http, f"{fake_server.base_url}/moderations", {"input": ["a BADWORD here", "fine"]}
        )
    finally:
        fake_server.set_flag_words()

    assert status == 200
    assert [result["flagged"] for result in reply["results"]] == [True, False]
    assert reply["results"][0]["categories"]["harassment"] is True
    _, after = await post(http, f"{fake_server.base_url}/moderations", {"input": "a badword"})
    assert after["results"][0]["flagged"] is False
