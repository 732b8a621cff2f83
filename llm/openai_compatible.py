"""Chat over any OpenAI-compatible `/chat/completions` server, streamed with aiohttp.

Works with OpenAI, Azure OpenAI (v1 API), vLLM, Ollama and the llama.cpp server. The
openai SDK is deliberately not used: its default httpx transport scales poorly to many
concurrent streams, while one aiohttp session per event loop keeps hundreds cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

import aiohttp

from llm.chat import ChatMessage, Delta, Finish
from llm.exceptions import ProviderError
from llm.openai_errors import status_error, stream_error, transport_error
from llm.sse import SSEDecoder

_AZURE_HOSTS = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
)
_DRAIN_SECONDS = 1.0


class OpenAICompatibleProvider:
    """A ChatProvider for one OpenAI-compatible endpoint, e.g. "http://host:8000/v1".

    `read_timeout` bounds every wait for data (the response headers, then each read of
    the stream), so a stalled server fails in `read_timeout` seconds whatever the answer
    length. Call `aclose()` in every event loop that used the provider.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        name: str = "openai",
        connect_timeout: float = 10,
        read_timeout: float = 60,
        max_connections: int = 1000,
        max_tokens_param: str = "max_tokens",
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {**auth_headers(base_url, api_key), **(extra_headers or {})}
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=read_timeout
        )
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._max_tokens_param = max_tokens_param
        self._sessions: WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]
        self._sessions = WeakKeyDictionary()

    async def stream_chat(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float | None = None,
    ) -> AsyncIterator[Delta | Finish]:
        """Stream one chat completion: Deltas, then a Finish with the server's usage.

        The read, decode and parse loop is inlined here rather than split into nested
        async generators: each level costs a resumption per token of every stream.
        """
        body = self._request_body(model, messages, max_tokens, temperature)
        try:
            async with self._session().post(
                self._url, json=body, allow_redirects=False
            ) as response:
                if response.status >= 300 or response.content_type == "application/json":
                    for item in await self._whole_response(response):
                        yield item
                    return
                state = _StreamState(self.name)
                decoder = SSEDecoder()
                content = response.content
                while True:
                    chunk = await content.readany()
                    for data in decoder.feed(chunk) if chunk else decoder.flush():
                        if data[:1] != "{" and data.strip() == "[DONE]":
                            await _drain(response)
                            yield state.finish()
                            return
                        if text := state.apply(_parse_json(data, provider=self.name)):
                            yield Delta(text)
                    if not chunk:
                        break
                if state.finish_reason is None:
                    message = f"{self.name}: the stream ended before the answer was complete"
                    raise ProviderError(message, code="connection", retryable=True)
                yield state.finish()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise transport_error(exc, provider=self.name, read_timeout=self._read_timeout) from exc

    async def aclose(self) -> None:
        """Close the HTTP session of the running event loop, if one was opened."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300
            )
            session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers=self._headers
            )
            self._sessions[loop] = session
        return session

    def _request_body(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            self._max_tokens_param: max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if temperature is not None:
            body["temperature"] = temperature
        return body

    async def _whole_response(self, response: aiohttp.ClientResponse) -> list[Delta | Finish]:
        """An error status, or a server that ignored "stream": true and sent it all at once."""
        if response.status >= 300:
            raise status_error(
                provider=self.name,
                status=response.status,
                body=await response.read(),
                headers=response.headers,
            )
        payload = _parse_json(await response.text(), provider=self.name)
        return _completion_items(payload, provider=self.name)


def auth_headers(base_url: str, api_key: str | None) -> dict[str, str]:
    """Request headers carrying the key: `api-key` for Azure hosts, Bearer otherwise."""
    headers = {"Accept": "text/event-stream"}
    if api_key:
        host = urlsplit(base_url).hostname or ""
        if host.endswith(_AZURE_HOSTS):
            headers["api-key"] = api_key
        else:
            headers["Authorization"] = f"Bearer {api_key}"
    return headers


class _StreamState:
    """What the chunks told us so far: the finish reason and the token usage."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def apply(self, chunk: Any) -> str:
        """Record the chunk's usage and finish reason; return its text (maybe "")."""
        if not isinstance(chunk, dict):
            return ""
        if chunk.get("error"):
            raise stream_error(chunk["error"], provider=self.provider)
        usage = chunk.get("usage")
        if usage is not None:
            self._apply_usage(usage)
        choices = chunk.get("choices")
        if type(choices) is list and len(choices) == 1:  # the usual chunk: one choice
            return self._apply_choice(choices[0])
        return "".join(self._apply_choice(c) for c in choices or [])

    def finish(self) -> Finish:
        # A server that says [DONE] without any finish_reason finished normally.
        reason = self.finish_reason or "stop"
        return Finish(reason, self.prompt_tokens, self.completion_tokens)

    def _apply_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
            self.completion_tokens = _int_or_none(usage.get("completion_tokens"))

    def _apply_choice(self, choice: Any) -> str:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            return ""
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or choice.get("message") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        return content if isinstance(content, str) else ""


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read the body's end so the connection goes back to the pool instead of closing."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            await response.content.read()


def _completion_items(payload: Any, *, provider: str) -> list[Delta | Finish]:
    state = _StreamState(provider)
    text = state.apply(payload)
    finish = state.finish()
    return [Delta(text), finish] if text else [finish]


def _parse_json(data: str, *, provider: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        message = f"{provider}: unreadable stream chunk {data[:80]!r}"
        raise ProviderError(message, code="bad_response", retryable=True) from exc


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
