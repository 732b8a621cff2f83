"""The load generator's two clients: one streaming chat turn, direct or through the product.

Both are deliberately lean (the client shares the 2-core machine with the servers it measures):
one JSON parse per frame or SSE line, a timestamp taken as soon as a frame arrives, nothing else.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

MODEL = "fake-model"


@dataclass
class TurnResult:
    sent: float
    ttft_ms: float | None = None
    started_ms: float | None = None  # product only: message.send -> turn.started
    tokens: int = 0
    deltas: int = 0
    error: str | None = None
    last_seq: int = 0
    lost: int = 0
    duplicated: int = 0
    message_id: int | None = None


def expected_answer(tokens: int) -> str:
    """What the fake server answers: "tok1 tok2 ... tokN "."""
    return "".join(f"tok{number} " for number in range(1, tokens + 1))


def finish_turn(result: TurnResult, text: str, expected: str) -> TurnResult:
    result.tokens = len(text.split())
    if text != expected and result.error is None:
        result.error = "content_mismatch"
    return result


# --- direct: straight to the fake server --------------------------------------------------------


async def direct_turn(
    session: aiohttp.ClientSession, url: str, question: str, expected: str, timeout_s: float
) -> TurnResult:
    """One streaming request read as SSE until [DONE]; TTFT = send -> first non-empty content."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 1024,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    result = TurnResult(sent=time.perf_counter())
    parts: list[str] = []
    try:
        async with asyncio.timeout(timeout_s), session.post(url, json=body) as response:
            if response.status != 200:
                result.error = f"http_{response.status}"
                return result
            async for line in response.content:
                if line.startswith(b"data: [DONE]"):
                    break
                if line.startswith(b"data: "):
                    sse_content(result, json.loads(line[6:]), parts)
    except TimeoutError:
        result.error = "timeout"
        return result
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        result.error = f"exception_{type(exc).__name__}"
        return result
    return finish_turn(result, "".join(parts), expected)


def sse_content(result: TurnResult, chunk: dict[str, Any], parts: list[str]) -> None:
    for choice in chunk.get("choices") or []:
        if text := (choice.get("delta") or {}).get("content"):
            if result.ttft_ms is None:
                result.ttft_ms = (time.perf_counter() - result.sent) * 1000
            parts.append(text)
            result.deltas += 1


# --- through the product: a websocket chat ------------------------------------------------------


class Socket(Protocol):
    async def send(self, text: str) -> None: ...
    async def recv(self) -> str: ...
    async def close(self) -> None: ...


class AiohttpSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def recv(self) -> str:
        message = await self.ws.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"websocket {message.type.name}")
        return str(message.data)

    async def close(self) -> None:
        await self.ws.close()


class WebsocketsSocket:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def send(self, text: str) -> None:
        await self.connection.send(text)

    async def recv(self) -> str:
        return str(await self.connection.recv())

    async def close(self) -> None:
        await self.connection.close()


async def socket_open(kind: str, session: aiohttp.ClientSession, url: str, api_key: str) -> Socket:
    """A websocket with a bearer key and no Origin header (an API client, not a browser)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    if kind == "websockets":
        from websockets.asyncio.client import connect

        connection = await connect(
            url, additional_headers=headers, compression=None, proxy=None, open_timeout=30
        )
        return WebsocketsSocket(connection)
    ws = await session.ws_connect(url, headers=headers, timeout=aiohttp.ClientWSTimeout(30))
    return AiohttpSocket(ws)


async def product_turn(sock: Socket, question: str, expected: str, timeout_s: float) -> TurnResult:
    """Send one message; read turn.started, the deltas and turn.done, checking every seq."""
    key = uuid.uuid4().hex
    result = TurnResult(sent=time.perf_counter())
    await sock.send(
        json.dumps({"type": "message.send", "content": question, "idempotency_key": key})
    )
    parts: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                raw = await sock.recv()
                received = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("type") == "turn.done" and frame["message_id"] == result.message_id:
                    return done_turn(result, frame, "".join(parts), expected)
                if not frame_apply(result, frame, key, received, parts):
                    return result
    except TimeoutError:
        result.error = "timeout"
    except (aiohttp.ClientError, OSError, ValueError, KeyError) as exc:
        result.error = f"exception_{type(exc).__name__}"
    return result


def frame_apply(
    result: TurnResult, frame: dict[str, Any], key: str, received: float, parts: list[str]
) -> bool:
    """Take one frame of the turn; False when it ended the turn (an error frame)."""
    kind = frame.get("type")
    if kind == "turn.delta" and frame["message_id"] == result.message_id:
        if result.ttft_ms is None:
            result.ttft_ms = (received - result.sent) * 1000
        seq = frame["seq"]
        if seq <= result.last_seq:
            result.duplicated += 1
        else:
            result.lost += seq - result.last_seq - 1
            result.last_seq = seq
            parts.append(frame["text"])
        result.deltas += 1
    elif kind == "turn.started" and frame.get("idempotency_key") == key:
        result.started_ms = (received - result.sent) * 1000
        result.message_id = frame["message_id"]
    elif kind == "error":
        result.error = f"error_frame_{frame.get('code')}"
        return False
    return True


def done_turn(result: TurnResult, frame: dict[str, Any], text: str, expected: str) -> TurnResult:
    if frame.get("status") != "complete":
        result.error = f"status_{frame.get('status')}"
    elif frame.get("content") != text:
        result.error = "done_content_differs_from_deltas"
    return finish_turn(result, text, expected)
