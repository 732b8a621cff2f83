"""Helpers for reading provider streams in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from llm.chat import ChatEvent, ChatMessage, ChatProvider, Delta, Finish, Served
from llm.exceptions import ProviderError

HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello to me")]


@dataclass
class Outcome:
    """Everything a stream produced: its text pieces, then a Finish or an error."""

    deltas: list[str] = field(default_factory=list)
    finish: Finish | None = None
    error: ProviderError | None = None
    served: Served | None = None

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def collect(stream: AsyncIterator[ChatEvent]) -> Outcome:
    """Read a stream to its end, checking that Finish comes once and last."""
    outcome = Outcome()
    try:
        async for item in stream:
            assert outcome.finish is None, "nothing may follow the Finish"
            if isinstance(item, Served):
                assert not outcome.deltas, "Served comes before any text"
                outcome.served = item
            elif isinstance(item, Delta):
                outcome.deltas.append(item.text)
            else:
                outcome.finish = item
    except ProviderError as exc:
        outcome.error = exc
    return outcome


async def chat(
    provider: ChatProvider, *, model: str = "fake-model", max_tokens: int = 100
) -> Outcome:
    return await collect(provider.stream_chat(model=model, messages=HELLO, max_tokens=max_tokens))
