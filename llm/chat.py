"""The streaming chat protocol every provider implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of answer text, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The last item of every stream; token counts are None when the server gave none."""

    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class Served:
    """Which provider and model are answering: sent once, before the first Delta, by
    providers that choose between several (failover). Others never send it."""

    provider: str
    model: str


ChatEvent = Delta | Finish | Served


class ChatProvider(Protocol):
    name: str

    def stream_chat(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float | None = None,
    ) -> AsyncIterator[ChatEvent]:
        """Yield text deltas, then exactly one Finish (a `Served` may come first).

        Raises `llm.exceptions.ProviderError` when the vendor fails, before or during
        the stream.
        """
        ...

    async def aclose(self) -> None:
        """Release network resources held for the running event loop."""
        ...
