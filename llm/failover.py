"""Failover: a ChatProvider that tries a model's targets in order until one starts answering.

Before the first token, a retryable failure (429, 5xx, timeout, refused or dropped connection,
no first token within `first_token_timeout`) moves on to the next target; a provider whose
circuit breaker is open, or which asked to rest (`Retry-After`), is skipped. After the first
token nothing is retried: the error reaches the caller, which keeps the partial text as an
interrupted answer (a retry would start the answer again and could not be joined to it).

A 429 with a `Retry-After` no longer than `retry_after_max` is waited for once every other
target has failed: never sooner than the provider asked, never longer than the bound. When no
target can answer, `ProvidersUnavailable` carries a message meant for the user. A half-open
breaker's probe that produces a first token closes the breaker at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from llm.chat import ChatEvent, ChatMessage, ChatProvider, Finish, Served
from llm.circuit_breaker import Admission, CircuitBreaker
from llm.exceptions import ProviderError, ProvidersUnavailable
from llm.provider_config import Target

logger = logging.getLogger(__name__)

_WAKE_MARGIN_S = 0.005


@dataclass(frozen=True, slots=True)
class FailoverConfig:
    first_token_timeout: float = 15  # seconds to the first token before trying the next target
    retry_after_max: float = 5  # the longest Retry-After worth waiting for


@dataclass(frozen=True, slots=True)
class _Request:
    messages: Sequence[ChatMessage]
    max_tokens: int
    temperature: float | None


@dataclass(slots=True)
class _Opened:
    """A target that produced its first event; `stream` continues after it."""

    target: Target
    admission: Admission
    first: ChatEvent
    stream: AsyncIterator[ChatEvent]


@dataclass(slots=True)
class _Attempts:
    """What went wrong so far, and which rate-limited targets are worth waiting for."""

    notes: list[str] = field(default_factory=list)
    waits: list[tuple[float, Target]] = field(default_factory=list)  # (ready at, target)


class FailoverProvider:
    """Routes each model to its ordered targets; `name` of an answer comes as `Served`."""

    name = "failover"

    def __init__(
        self,
        providers: Mapping[str, ChatProvider],
        routes: Mapping[str, Sequence[Target]],
        *,
        breaker: CircuitBreaker | None,
        config: FailoverConfig,
    ) -> None:
        if not providers:
            raise ValueError("failover needs at least one provider")
        self.providers = dict(providers)
        self.routes = {model: list(targets) for model, targets in routes.items()}
        self.breaker = breaker
        self.config = config
        self._default = next(iter(self.providers))

    def targets(self, model: str) -> list[Target]:
        """The targets of `model`, in order; unlisted models go to the first provider."""
        return self.routes.get(model) or [Target(self._default, model)]

    async def stream_chat(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float | None = None,
    ) -> AsyncIterator[ChatEvent]:
        """`Served`, then the events of the first target that starts answering."""
        attempts = _Attempts()
        opened = await self._first_answering(
            self.targets(model), _Request(messages, max_tokens, temperature), attempts
        )
        if opened is None:
            logger.warning("no provider could answer %s: %s", model, "; ".join(attempts.notes))
            raise ProvidersUnavailable(attempts.notes)
        async with contextlib.aclosing(opened.stream):  # type: ignore[type-var]
            await self._answering(opened)
            yield Served(opened.target.provider, opened.target.model)
            yield opened.first
            try:
                if not isinstance(opened.first, Finish):  # an empty answer ends at once
                    async for event in opened.stream:
                        yield event
            except ProviderError as exc:
                await self._failed(opened.target, Admission.ALLOWED, exc, None)
                raise

    async def aclose(self) -> None:
        """Release every provider's and the breaker's connections of this event loop."""
        for provider in self.providers.values():
            await provider.aclose()
        if self.breaker is not None:
            await self.breaker.aclose()

    async def _first_answering(
        self, targets: list[Target], request: _Request, attempts: _Attempts
    ) -> _Opened | None:
        for target in targets:
            if (opened := await self._open(target, request, attempts)) is not None:
                return opened
        loop = asyncio.get_running_loop()
        for ready_at, target in sorted(attempts.waits, key=lambda wait: wait[0]):
            await asyncio.sleep(max(0.0, ready_at - loop.time()))
            if (opened := await self._open(target, request, attempts)) is not None:
                return opened
        return None

    async def _open(self, target: Target, request: _Request, attempts: _Attempts) -> _Opened | None:
        """Start `target` and wait for its first event; None (noted) when it cannot answer."""
        admission = await self._admit(target.provider)
        if admission is Admission.REFUSED:
            attempts.notes.append(f"{target}: circuit open or resting")
            return None
        stream = self.providers[target.provider].stream_chat(
            model=target.model,
            messages=request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
        )
        try:
            async with asyncio.timeout(self.config.first_token_timeout):
                first = await anext(stream)
        except BaseException as exc:
            await stream.aclose()  # type: ignore[attr-defined]
            error = _as_provider_error(exc, target, self.config.first_token_timeout)
            if error is None or not error.retryable:
                raise
            await self._failed(target, admission, error, attempts)
            return None
        return _Opened(target, admission, first, stream)

    async def _admit(self, provider: str) -> Admission:
        if self.breaker is None:
            return Admission.ALLOWED
        return await self.breaker.allow(provider)

    async def _failed(
        self,
        target: Target,
        admission: Admission,
        error: ProviderError,
        attempts: _Attempts | None,
    ) -> None:
        """Tell the breaker; remember a short enough Retry-After to wait for it later."""
        if attempts is not None:
            attempts.notes.append(f"{target}: {error}")
        logger.info("provider %s failed: %s", target, error)
        if self.breaker is None:
            return
        rest = error.retry_after if error.code == "rate_limited" else None
        if rest is not None:
            await self.breaker.rest(target.provider, rest)
            if attempts is not None and rest <= self.config.retry_after_max:
                # Measured after the rest key is set, so it has expired when we wake.
                ready_at = asyncio.get_running_loop().time() + rest + _WAKE_MARGIN_S
                attempts.waits.append((ready_at, target))
        if rest is None or admission is Admission.PROBE:
            # A 429 that says when to come back is saturation, not breakage.
            await self.breaker.failure(target.provider, probe=admission is Admission.PROBE)

    async def _answering(self, opened: _Opened) -> None:
        """A probe that produced its first token closes the breaker: the provider answers
        again (a stop or a later failure must not leave the probe slot taken)."""
        if self.breaker is not None and opened.admission is Admission.PROBE:
            await self.breaker.success(opened.target.provider)


def _as_provider_error(exc: BaseException, target: Target, timeout: float) -> ProviderError | None:
    """The failure before the first event as a ProviderError; None for anything else."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError):
        message = f"{target.provider}: no first token within {timeout:g}s"
        return ProviderError(message, code="timeout", retryable=True)
    if isinstance(exc, StopAsyncIteration):
        message = f"{target.provider}: the stream ended without an answer"
        return ProviderError(message, code="bad_response", retryable=True)
    return None
