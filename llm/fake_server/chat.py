"""POST /v1/chat/completions: "tok1 tok2 ..." answers, streamed or whole, with failures."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from llm.fake_server.request_body import bad_request, json_object
from llm.fake_server.state import STATE, FakeServerConfig, FakeServerState
from llm.fake_server.usage import word_count

_answer_numbers = itertools.count(1)


def token_text(number: int) -> str:
    """The text of the `number`-th token (1-based) of every fake answer."""
    return f"tok{number} "


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one chat request gets back, before any injected failure."""

    id: str
    model: str
    tokens: int
    finish_reason: str
    prompt_tokens: int
    include_usage: bool

    def chunk(self, delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return self._event({"choices": [choice]})

    def usage_chunk(self) -> bytes:
        return self._event({"choices": [], "usage": self.usage()})

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.tokens,
            "total_tokens": self.prompt_tokens + self.tokens,
        }

    def _event(self, fields: dict[str, Any]) -> bytes:
        head = {"id": self.id, "object": "chat.completion.chunk", "model": self.model}
        return b"data: " + json.dumps({**head, **fields}).encode() + b"\n\n"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Answer with the settings of this request (defaults, override or model name)."""
    state = request.app[STATE]
    body = await json_object(request)
    if not body.get("model") or not isinstance(body.get("messages"), list):
        raise bad_request("'model' and a 'messages' list are required")
    state.stats.requests += 1
    model = str(body["model"])
    state.stats.models[model] = state.stats.models.get(model, 0) + 1
    settings = state.settings_for(model)
    if settings.fail in ("429", "500"):
        return _failure_response(settings)
    answer = _answer_for(body, settings)
    try:
        if body.get("stream") is True:
            return await _stream(request, state, settings, answer)
        return await _complete(request, state, settings, answer)
    except ConnectionResetError:  # the client went away
        return web.Response(status=499)


async def _stream(
    request: web.Request,
    state: FakeServerState,
    settings: FakeServerConfig,
    answer: _Answer,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    state.stream_started()
    try:
        await response.write(answer.chunk({"role": "assistant", "content": ""}))
        failing = settings.fail in ("reset", "stall")
        count = min(settings.fail_after, answer.tokens) if failing else answer.tokens
        await _send_tokens(response, state, settings, answer, count)
        if failing:
            await _fail_connection(request, state, settings)
            return response
        await _finish_stream(response, answer)
        state.stats.streams_completed += 1
        return response
    finally:
        state.stats.active_streams -= 1


async def _send_tokens(
    response: web.StreamResponse,
    state: FakeServerState,
    settings: FakeServerConfig,
    answer: _Answer,
    count: int,
) -> None:
    await asyncio.sleep(settings.ttft_ms / 1000)
    loop = asyncio.get_running_loop()
    start = loop.time()
    interval = 1 / settings.tokens_per_s if settings.tokens_per_s > 0 else 0.0
    for number in range(1, count + 1):
        # Pace against the start time so that sleep overshoot does not accumulate.
        delay = start + (number - 1) * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await response.write(answer.chunk({"content": token_text(number)}))
        state.stats.tokens_sent += 1


async def _finish_stream(response: web.StreamResponse, answer: _Answer) -> None:
    await response.write(answer.chunk({}, answer.finish_reason))
    if answer.include_usage:
        await response.write(answer.usage_chunk())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()


async def _complete(
    request: web.Request,
    state: FakeServerState,
    settings: FakeServerConfig,
    answer: _Answer,
) -> web.StreamResponse:
    speed = settings.tokens_per_s
    await asyncio.sleep(settings.ttft_ms / 1000 + (answer.tokens / speed if speed else 0))
    if settings.fail in ("reset", "stall"):
        await _fail_connection(request, state, settings)
        return web.Response(status=499)
    state.stats.tokens_sent += answer.tokens
    text = "".join(token_text(n) for n in range(1, answer.tokens + 1))
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "finish_reason": answer.finish_reason}
    return web.json_response(
        {
            "id": answer.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": answer.model,
            "choices": [choice],
            "usage": answer.usage(),
        }
    )


async def _fail_connection(
    request: web.Request, state: FakeServerState, settings: FakeServerConfig
) -> None:
    """Reset: drop the connection now. Stall: send nothing until the server stops."""
    if settings.fail == "stall":
        await state.stopping.wait()  # the handler is cancelled if the client leaves
    if request.transport is not None:
        request.transport.abort()


def _failure_response(settings: FakeServerConfig) -> web.Response:
    status = int(settings.fail)
    headers = {}
    if status == 429 and settings.retry_after is not None:
        headers["Retry-After"] = f"{settings.retry_after:g}"
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    error = {"message": f"injected failure {status}", "type": kind, "code": kind}
    return web.json_response({"error": error}, status=status, headers=headers)


def _answer_for(body: dict[str, Any], settings: FakeServerConfig) -> _Answer:
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    truncated = isinstance(limit, int) and 0 < limit < settings.tokens
    options = body.get("stream_options")
    return _Answer(
        id=f"chatcmpl-fake-{next(_answer_numbers)}",
        model=str(body["model"]),
        tokens=limit if truncated and isinstance(limit, int) else settings.tokens,
        finish_reason="length" if truncated else "stop",
        prompt_tokens=sum(_message_words(m) for m in body["messages"]),
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
    )


def _message_words(message: Any) -> int:
    content = message.get("content") if isinstance(message, dict) else None
    return word_count(content if isinstance(content, str) else json.dumps(content))
