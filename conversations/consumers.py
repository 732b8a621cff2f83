"""The chat websocket: authenticate, check ownership, then forward typed frames.

Protocol: docs/protocol.md. Turns run detached from this connection (``TurnRunner``); this
consumer only begins them, asks them to stop, and reads their streams from a cursor.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any, Literal

from channels.generic.websocket import AsyncWebsocketConsumer
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from chatbot.errors import DomainError
from conversations import streams
from conversations.delivery import group_name, started_frame, turn_frames
from conversations.exceptions import InvalidInput, NotFound
from conversations.generation import turn_launch
from conversations.runtime import db, turn_runner
from conversations.selectors import conversation_get_for_user, message_get_for_user

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 256 * 1024
MAX_READERS = 8  # answers one connection may follow at once


class MessageSend(BaseModel):
    type: Literal["message.send"]
    content: str
    idempotency_key: str
    cache: bool = True  # false: do not answer from the answer cache (a fresh answer replaces it)


class TurnStop(BaseModel):
    type: Literal["turn.stop"]
    message_id: int


class TurnResume(BaseModel):
    type: Literal["turn.resume"]
    message_id: int
    cursor: int = Field(ge=0)


ClientFrame = TypeAdapter(
    Annotated[MessageSend | TurnStop | TurnResume, Field(discriminator="type")]
)


def error_frame(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "detail": detail, **extra}


def parse_frame(text: str | None, data: bytes | None) -> MessageSend | TurnStop | TurnResume:
    raw = text if text is not None else (data or b"").decode("utf-8", "replace")
    if len(raw) > MAX_FRAME_BYTES:
        raise InvalidInput(f"frame larger than {MAX_FRAME_BYTES} bytes")
    try:
        return ClientFrame.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(
            f"bad frame: {first['msg']}" + (f" at {where}" if where else "")
        ) from None


class ConversationConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    conversation_id: int
    readers: dict[int, asyncio.Task[None]]
    watching = False  # True once the connection is accepted for a conversation of the user

    async def connect(self) -> None:
        self.readers = {}
        user = self.scope.get("user")
        await self.accept()  # then close with a code: a refused handshake reaches browsers as 1006
        if user is None or not user.is_authenticated:
            await self.send_json(error_frame("unauthenticated", "log in first"))
            await self.close(code=4401)
            return
        self.conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        try:
            await db(conversation_get_for_user)(user=user, conversation_id=self.conversation_id)
        except NotFound as exc:
            await self.send_json(error_frame(exc.code, exc.detail))
            await self.close(code=4404)
            return
        await self.channel_layer.group_add(group_name(self.conversation_id), self.channel_name)
        await streams.watchers_change(self.conversation_id, 1)
        self.watching = True

    async def disconnect(self, code: int) -> None:
        for reader in self.readers.values():
            reader.cancel()
        if self.watching:
            await streams.watchers_change(self.conversation_id, -1)
            await self.channel_layer.group_discard(
                group_name(self.conversation_id), self.channel_name
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.watching:  # refused at connect: frames racing the close are ignored
            return
        try:
            frame = parse_frame(text_data, bytes_data)
            if isinstance(frame, MessageSend):
                await self.message_send(frame)
            elif isinstance(frame, TurnStop):
                await self.turn_stop(frame)
            else:
                await self.turn_resume(frame)
        except DomainError as exc:  # the chat's own errors and billing's refusals
            await self.send_json(error_frame(exc.code, exc.detail, **exc.extra()))
        except Exception:
            logger.exception("websocket frame failed")
            await self.send_json(error_frame("internal", "something went wrong; try again"))

    async def message_send(self, frame: MessageSend) -> None:
        turn = await turn_launch(
            user=self.scope["user"],
            conversation_id=self.conversation_id,
            content=frame.content,
            idempotency_key=frame.idempotency_key,
            watchers=1,
            cache="use" if frame.cache else "refresh",
        )
        message_id = turn.assistant_message.pk
        await self.send_json(started_frame(message_id, turn.user_message.pk, frame.idempotency_key))
        self.read(message_id, cursor=0, live=turn.created)

    async def turn_stop(self, frame: TurnStop) -> None:
        message = await db(self.own_message)(frame.message_id)
        await turn_runner().stop(message.pk)

    async def turn_resume(self, frame: TurnResume) -> None:
        message = await db(self.own_message)(frame.message_id)
        self.read(message.pk, cursor=frame.cursor, restart=True)

    def own_message(self, message_id: int) -> Any:
        message = message_get_for_user(user=self.scope["user"], message_id=message_id)
        if message.conversation_id != self.conversation_id:
            raise NotFound("message not found")
        return message

    async def turn_started_event(self, event: dict[str, Any]) -> None:
        """Another connection began a turn here: show it in this tab too."""
        message_id = event["message_id"]
        if message_id in self.readers:
            return
        await self.send_json(
            started_frame(message_id, event["user_message_id"], event["idempotency_key"])
        )
        self.read(message_id, cursor=0, live=True)

    def read(
        self, message_id: int, *, cursor: int, restart: bool = False, live: bool = False
    ) -> None:
        current = self.readers.get(message_id)
        if current is not None and not current.done():
            if not restart:
                return
            current.cancel()
        elif len(self.readers) >= MAX_READERS:
            raise InvalidInput(f"at most {MAX_READERS} answers can be followed at once")
        task = asyncio.get_running_loop().create_task(self.forward(message_id, cursor, live))
        self.readers[message_id] = task
        task.add_done_callback(lambda done: self.reader_done(message_id, done))

    def reader_done(self, message_id: int, task: asyncio.Task[None]) -> None:
        if self.readers.get(message_id) is task:
            del self.readers[message_id]

    async def forward(self, message_id: int, cursor: int, live: bool) -> None:
        try:
            async for frame in turn_frames(message_id, cursor, live=live):
                await self.send_json(frame)
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from None  # closing: Redis reported it as a timeout
            logger.exception("reading turn %s failed", message_id)
            await self.send_json(error_frame("internal", "lost the answer stream; resume it"))

    async def send_json(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload, ensure_ascii=False))
