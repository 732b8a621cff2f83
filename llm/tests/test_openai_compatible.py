from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from llm.chat import ChatProvider
from llm.fake_server import RunningFakeServer, token_text
from llm.openai_compatible import OpenAICompatibleProvider, auth_headers
from llm.tests.streaming import chat

ScriptedServer = Callable[..., Awaitable[str]]
TWENTY_TOKENS = "".join(token_text(n) for n in range(1, 21))


def test_the_provider_satisfies_the_chat_protocol() -> None:
    provider: ChatProvider = OpenAICompatibleProvider("http://127.0.0.1:1/v1", None)
    assert provider.name == "openai"


@pytest.mark.asyncio
async def test_a_full_stream_yields_every_token_then_a_finish_with_usage(provider) -> None:
    outcome = await chat(provider)

    assert outcome.error is None
    assert outcome.deltas == [token_text(n) for n in range(1, 21)]
    assert outcome.finish is not None
    assert outcome.finish.finish_reason == "stop"
    assert outcome.finish.completion_tokens == 20
    assert outcome.finish.prompt_tokens == 6  # words in HELLO's two messages


@pytest.mark.asyncio
async def test_max_tokens_cuts_the_answer_with_finish_reason_length(provider) -> None:
    outcome = await chat(provider, max_tokens=5)

    assert outcome.text == "tok1 tok2 tok3 tok4 tok5 "
    assert outcome.finish is not None
    assert (outcome.finish.finish_reason, outcome.finish.completion_tokens) == ("length", 5)


@pytest.mark.asyncio
async def test_a_base_url_with_a_trailing_slash_works(fake_server: RunningFakeServer) -> None:
    provider = OpenAICompatibleProvider(fake_server.base_url + "/", None)
    try:
        outcome = await chat(provider)
    finally:
        await provider.aclose()

    assert outcome.error is None
    assert outcome.text == TWENTY_TOKENS


@pytest.mark.asyncio
async def test_a_429_is_retryable_and_carries_retry_after(fake_server, provider) -> None:
    fake_server.set_override(fail="429", retry_after=7)

    outcome = await chat(provider)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.status) == ("rate_limited", 429)
    assert outcome.error.retryable is True
    assert outcome.error.retry_after == 7.0


@pytest.mark.asyncio
async def test_a_500_is_a_retryable_server_error(fake_server, provider) -> None:
    fake_server.set_override(fail="500")

    outcome = await chat(provider)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.status) == ("server_error", 500)
    assert outcome.error.retryable is True
    assert "injected failure 500" in str(outcome.error)


@pytest.mark.asyncio
async def test_a_reset_after_n_tokens_yields_them_then_a_connection_error(
    fake_server, provider
) -> None:
    fake_server.set_override(fail="reset", fail_after=3)

    outcome = await chat(provider)

    assert outcome.deltas == ["tok1 ", "tok2 ", "tok3 "]
    assert outcome.finish is None
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.retryable) == ("connection", True)


@pytest.mark.asyncio
async def test_a_stall_longer_than_read_timeout_is_a_timeout_error(fake_server) -> None:
    fake_server.set_override(fail="stall", fail_after=2)
    provider = OpenAICompatibleProvider(fake_server.base_url, None, read_timeout=0.3)
    started = time.monotonic()
    try:
        outcome = await chat(provider)
    finally:
        await provider.aclose()

    assert outcome.deltas == ["tok1 ", "tok2 "]
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.retryable) == ("timeout", True)
    assert 0.3 <= time.monotonic() - started < 5


@pytest.mark.asyncio
async def test_a_request_the_server_rejects_is_a_non_retryable_bad_request(provider) -> None:
    outcome = await chat(provider, model="")  # the fake server requires a model

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.status) == ("bad_request", 400)
    assert outcome.error.retryable is False


@pytest.mark.asyncio
async def test_a_refused_connection_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAICompatibleProvider(f"http://127.0.0.1:{port}/v1", None)
    try:
        outcome = await chat(provider)
    finally:
        await provider.aclose()

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.retryable) == ("connection", True)


@pytest.mark.asyncio
async def test_fifty_concurrent_streams_all_complete_with_exact_token_counts(
    fake_server, provider
) -> None:
    fake_server.set_override(count=50, tokens=30, tokens_per_s=100)
    completed_before = fake_server.state.stats.streams_completed

    outcomes = await asyncio.gather(*(chat(provider) for _ in range(50)))

    expected = "".join(token_text(n) for n in range(1, 31))
    assert [o.error for o in outcomes] == [None] * 50
    assert {o.text for o in outcomes} == {expected}
    assert {o.finish.completion_tokens for o in outcomes if o.finish} == {30}
    assert fake_server.state.stats.streams_completed - completed_before == 50
    assert fake_server.state.stats.max_active_streams >= 10  # they really overlapped


def test_azure_hosts_get_an_api_key_header_and_others_a_bearer_token() -> None:
    azure = auth_headers("https://acme.openai.azure.com/openai/v1", "k1")
    vllm = auth_headers("http://gpu-box:8000/v1", "k2")
    ollama = auth_headers("http://127.0.0.1:11434/v1", None)

    assert azure["api-key"] == "k1" and "Authorization" not in azure
    assert vllm["Authorization"] == "Bearer k2" and "api-key" not in vllm
    assert "Authorization" not in ollama and "api-key" not in ollama


# Servers scripted byte by byte, for what the fake server never sends.


@pytest_asyncio.fixture
async def scripted_server() -> AsyncIterator[ScriptedServer]:
    servers: list[TestServer] = []

    async def start(
        pieces: list[bytes], *, status: int = 200, content_type: str = "text/event-stream"
    ) -> str:
        async def answer(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
            await response.prepare(request)
            for piece in pieces:
                await response.write(piece)
                await asyncio.sleep(0.005)  # let pieces arrive in separate reads
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_post("/v1/chat/completions", answer)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/v1"))

    yield start
    for server in servers:
        await server.close()


async def scripted_chat(base_url: str):
    provider = OpenAICompatibleProvider(base_url, None, name="scripted", read_timeout=5)
    try:
        return await chat(provider)
    finally:
        await provider.aclose()


@pytest.mark.asyncio
async def test_comments_crlf_split_lines_and_a_usage_only_chunk_are_understood(
    scripted_server: ScriptedServer,
) -> None:
    url = await scripted_server(
        [
            b": keep-alive\r\n\r\n",
            b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\r\n\r\n',
            b'data: {"choices":[{"index":0,"delta":{"content":"Hel',
            b'lo"}}]}\n\n',
            b'data: {"choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}',
            b"\n\n: ping\n\n",
            b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}\n\n',
            b"data: [DONE]\n\n",
        ]
    )

    outcome = await scripted_chat(url)

    assert outcome.error is None
    assert outcome.text == "Hello world"
    assert outcome.finish is not None
    assert (outcome.finish.prompt_tokens, outcome.finish.completion_tokens) == (7, 2)


@pytest.mark.asyncio
async def test_a_stream_ending_after_a_finish_reason_without_done_still_finishes(
    scripted_server: ScriptedServer,
) -> None:
    url = await scripted_server(
        [b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"length"}]}\n\n']
    )

    outcome = await scripted_chat(url)

    assert outcome.text == "ok"
    assert outcome.finish is not None
    assert outcome.finish.finish_reason == "length"
    assert outcome.finish.completion_tokens is None  # the server sent no usage


@pytest.mark.asyncio
async def test_a_stream_ending_before_any_finish_reason_is_a_connection_error(
    scripted_server: ScriptedServer,
) -> None:
    url = await scripted_server([b'data: {"choices":[{"index":0,"delta":{"content":"Hal"}}]}\n\n'])

    outcome = await scripted_chat(url)

    assert outcome.deltas == ["Hal"]
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.retryable) == ("connection", True)


@pytest.mark.asyncio
async def test_an_error_object_inside_the_stream_becomes_a_retryable_error(
    scripted_server: ScriptedServer,
) -> None:
    url = await scripted_server([b'data: {"error":{"message":"engine overloaded"}}\n\n'])

    outcome = await scripted_chat(url)

    assert outcome.error is not None
    assert outcome.error.code == "server_error"
    assert "engine overloaded" in str(outcome.error)


@pytest.mark.asyncio
async def test_an_unreadable_chunk_is_a_bad_response_error(
    scripted_server: ScriptedServer,
) -> None:
    url = await scripted_server([b"data: {not json\n\n"])

    outcome = await scripted_chat(url)

    assert outcome.error is not None
    assert outcome.error.code == "bad_response"


@pytest.mark.asyncio
async def test_a_server_that_ignores_stream_true_still_gives_the_answer(
    scripted_server: ScriptedServer,
) -> None:
    body = (
        b'{"choices":[{"index":0,"message":{"role":"assistant","content":"Whole answer"},'
        b'"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}'
    )
    url = await scripted_server([body], content_type="application/json")

    outcome = await scripted_chat(url)

    assert outcome.deltas == ["Whole answer"]
    assert outcome.finish is not None
    assert (outcome.finish.finish_reason, outcome.finish.completion_tokens) == ("stop", 2)


@pytest.mark.asyncio
async def test_a_401_is_a_non_retryable_auth_error_with_the_vendors_message(
    scripted_server: ScriptedServer,
) -> None:
    body = b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}'
    url = await scripted_server([body], status=401, content_type="application/json")

    outcome = await scripted_chat(url)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.status) == ("auth", 401)
    assert outcome.error.retryable is False
    assert "Incorrect API key provided" in str(outcome.error)


@pytest.mark.asyncio
async def test_a_character_and_the_done_line_split_across_reads_come_out_whole(
    scripted_server: ScriptedServer,
) -> None:
    body = (
        'data: {"choices":[{"index":0,"delta":{"content":"Prix: 5 €"}}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{"content":" 日本"},"finish_reason":"stop"}]}\n\n'
        'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":3}}\n\n'
        "data: [DONE]\n\n"
    ).encode()
    cuts = [body.index("€".encode()) + 2, body.index("日".encode()) + 1, body.index(b"[DO") + 3]
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]

    outcome = await scripted_chat(await scripted_server(pieces))

    assert outcome.error is None
    assert outcome.deltas == ["Prix: 5 €", " 日本"]
    assert outcome.finish is not None
    assert (outcome.finish.finish_reason, outcome.finish.prompt_tokens) == ("stop", 4)
    assert outcome.finish.completion_tokens == 3


@pytest.mark.asyncio
async def test_a_chunk_with_two_choices_keeps_only_the_first_choices_text(
    scripted_server: ScriptedServer,
) -> None:
    url = await scripted_server(
        [
            b'data: {"choices":[{"index":1,"delta":{"content":"B"}},'
            b'{"index":0,"delta":{"content":"A"},"finish_reason":"stop"}]}\n\n',
            b"data: [DONE]\n\n",
        ]
    )

    outcome = await scripted_chat(url)

    assert outcome.deltas == ["A"]
    assert outcome.finish is not None and outcome.finish.finish_reason == "stop"
