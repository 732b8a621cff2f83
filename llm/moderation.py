"""Moderation: is this text acceptable? Rules and word lists offline, or an OpenAI-compatible
`/moderations` endpoint; and a watch over a streamed answer that checks it in windows.

Rule files (`MODERATION_RULES_FILE`, default `llm/moderation_rules.txt`), one rule a line:

    # a comment
    violence: build a pipe bomb        a word or phrase: whole words, any case, any spacing
    fraud: /\\bcard ?dumps?\\b/          a regular expression between slashes (any case)

Matching is per category; the first match of each flagged category gives the excerpt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import aiohttp

from llm.chat import ChatEvent, Delta, Finish
from llm.exceptions import ProviderError
from llm.openai_compatible import auth_headers
from llm.openai_errors import status_error, transport_error

logger = logging.getLogger(__name__)

DEFAULT_RULES_FILE = Path(__file__).with_name("moderation_rules.txt")
EXCERPT_CONTEXT = 60
MAX_EXCERPT = 500


@dataclass(frozen=True, slots=True)
class ModerationResult:
    flagged: bool
    categories: tuple[str, ...] = ()
    excerpt: str = ""  # the text that was flagged, with a little context
    provider: str = ""


PASSED = ModerationResult(flagged=False)


class Moderator(Protocol):
    name: str
    inline: bool  # cheap enough to run between two tokens without a task of its own

    async def moderate(self, text: str) -> ModerationResult:
        """Check `text`. Raises `ProviderError` when a remote moderator fails."""
        ...

    async def aclose(self) -> None:
        """Release network resources held for the running event loop."""
        ...


class ModerationRuleError(ValueError):
    """A rule file line cannot be read; the message names the line."""


@dataclass(frozen=True, slots=True)
class Rule:
    category: str
    pattern: re.Pattern[str]
    anchor: str = ""  # a phrase's longest word: no match is possible without it (cheap test)


class RuleModerator:
    """Offline moderation by phrases and regular expressions, grouped by category.

    A phrase is only searched for when its longest word occurs in the text (a substring test),
    so a long list of phrases stays cheap; regular expressions are always run.
    """

    name = "rules"
    inline = True

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    @classmethod
    def from_file(cls, path: Path) -> RuleModerator:
        return cls.from_lines(path.read_text(encoding="utf-8").splitlines())

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> RuleModerator:
        """Parse rule lines (see the module docstring)."""
        rules = []
        for number, line in enumerate(lines, 1):
            if (line := line.strip()) and not line.startswith("#"):
                rules.append(_rule(line, number))
        return cls(rules)

    async def moderate(self, text: str) -> ModerationResult:
        """Flag every category with a match; the first match gives the excerpt."""
        return self.check(text)

    def check(self, text: str) -> ModerationResult:
        lowered = text.lower()
        matches: dict[str, re.Match[str]] = {}
        for rule in self.rules:
            if rule.category in matches or (rule.anchor and rule.anchor not in lowered):
                continue
            if match := rule.pattern.search(text):
                matches[rule.category] = match
        if not matches:
            return PASSED
        first = min(matches.values(), key=lambda m: m.start())
        start = max(0, first.start() - EXCERPT_CONTEXT)
        excerpt = text[start : first.end() + EXCERPT_CONTEXT][:MAX_EXCERPT]
        return ModerationResult(True, tuple(matches), excerpt, self.name)

    async def aclose(self) -> None:
        """Nothing to release."""


def _rule(line: str, number: int) -> Rule:
    category, sep, body = line.partition(":")
    category, body = category.strip(), body.strip()
    if not sep or not category or not body:
        raise ModerationRuleError(f"moderation rule line {number}: expected 'category: rule'")
    if len(body) > 2 and body.startswith("/") and body.endswith("/"):
        try:
            return Rule(category, re.compile(body[1:-1], re.IGNORECASE))
        except re.error as exc:
            raise ModerationRuleError(f"moderation rule line {number}: {exc}") from None
    words = body.split()
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(word) for word in words) + r"(?!\w)"
    return Rule(category, re.compile(pattern, re.IGNORECASE), max(words, key=len).lower())


class OpenAIModerator:
    """An OpenAI-compatible `POST /moderations` (OpenAI's omni-moderation, or a look-alike)."""

    name = "openai-moderation"
    inline = False

    def __init__(
        self, base_url: str, api_key: str | None, *, model: str, timeout: float = 10
    ) -> None:
        self._url = base_url.rstrip("/") + "/moderations"
        self._headers = {**auth_headers(base_url, api_key), "Accept": "application/json"}
        self._model = model
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sessions: WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]
        self._sessions = WeakKeyDictionary()

    async def moderate(self, text: str) -> ModerationResult:
        """Ask the endpoint; its flagged categories become the result's categories."""
        body = {"model": self._model, "input": text}
        try:
            async with self._session().post(self._url, json=body) as response:
                if response.status >= 300:
                    raise status_error(
                        provider=self.name,
                        status=response.status,
                        body=await response.read(),
                        headers=response.headers,
                    )
                payload = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise transport_error(exc, provider=self.name, read_timeout=10) from exc
        return self._result(payload, text)

    async def aclose(self) -> None:
        """Close the HTTP session of the running event loop."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    def _result(self, payload: Any, text: str) -> ModerationResult:
        results = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise ProviderError(f"{self.name}: no results", code="bad_response", retryable=True)
        first = results[0]
        if not first.get("flagged"):
            return PASSED
        categories = first.get("categories") or {}
        flagged = tuple(sorted(k for k, v in categories.items() if v is True)) or ("flagged",)
        return ModerationResult(True, flagged, text[-MAX_EXCERPT:], self.name)

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
            self._sessions[loop] = session
        return session


async def moderation_check(moderator: Moderator, text: str) -> ModerationResult:
    """Check `text`, letting it pass (and logging) when the moderator itself fails.

    Failing open keeps the chat up while a remote moderator is down; the rules moderator
    cannot fail this way.
    """
    try:
        return await moderator.moderate(text)
    except ProviderError as exc:
        logger.warning("moderation unavailable, text passed unchecked: %s", exc)
        return PASSED


class OutputFlagged(Exception):
    """The answer being streamed was flagged; the stream stops here."""

    def __init__(self, result: ModerationResult) -> None:
        super().__init__(f"answer flagged: {', '.join(result.categories)}")
        self.result = result


class OutputWatch:
    """Moderates a streamed answer in windows, not token by token, so it stays cheap.

    Every `every` new characters, the last `window` characters (`window` > `every`, so a
    phrase across two checks is still seen whole) are checked; at the end, whatever came
    since the last check. A remote moderator runs beside the stream (one check at a time)
    and a flag stops it at the next token; the rules moderator runs inline.
    """

    def __init__(self, moderator: Moderator, *, every: int, window: int) -> None:
        self.moderator = moderator
        self.every = max(1, every)
        self.window = max(window, self.every)
        self.tail = ""
        self.unchecked = 0
        self._pending: asyncio.Task[ModerationResult] | None = None

    async def watch(self, stream: AsyncIterator[ChatEvent]) -> AsyncIterator[ChatEvent]:
        """Pass `stream` through; raise `OutputFlagged` as soon as a check flags it."""
        try:
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                async for event in stream:
                    if isinstance(event, Delta):
                        # The hot path (every token) stays a few attribute updates.
                        self.tail += event.text
                        self.unchecked += len(event.text)
                        if self.unchecked >= self.every or self._pending is not None:
                            await self._take()
                    elif isinstance(event, Finish):
                        await self._final()
                    yield event
        finally:
            if self._pending is not None:
                self._pending.cancel()

    async def _take(self) -> None:
        self._raise_if_flagged()
        if self.unchecked < self.every or self._pending is not None:
            return
        self.unchecked = 0
        self.tail = self.tail[-self.window :]
        if self.moderator.inline:
            _raise_flagged(await moderation_check(self.moderator, self.tail))
        else:
            self._pending = asyncio.ensure_future(moderation_check(self.moderator, self.tail))

    async def _final(self) -> None:
        if self._pending is not None:
            result, self._pending = await self._pending, None
            _raise_flagged(result)
        if self.unchecked:
            self.unchecked = 0
            _raise_flagged(await moderation_check(self.moderator, self.tail[-self.window :]))

    def _raise_if_flagged(self) -> None:
        if self._pending is not None and self._pending.done():
            result, self._pending = self._pending.result(), None
            _raise_flagged(result)


def _raise_flagged(result: ModerationResult) -> None:
    if result.flagged:
        raise OutputFlagged(result)
