"""The documents websocket: authenticate, join the user's progress group, forward events.

Protocol: docs/protocol.md ("Document progress"). The client sends nothing.
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from knowledge.progress import progress_group


class DocumentProgressConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.send(json.dumps({"type": "error", "code": "unauthenticated"}))
            await self.close(code=4401)
            return
        self.group = progress_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Nothing to receive: the connection only listens."""

    async def document_progress_event(self, event: dict[str, Any]) -> None:
        await self.send(json.dumps({**event, "type": "document.progress"}))
