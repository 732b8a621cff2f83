"""Settings, counters and per-request overrides of the fake server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from aiohttp import web

FailMode = Literal["none", "429", "500", "reset", "stall"]
FAIL_MODES: tuple[str, ...] = get_args(FailMode)
MODEL_FAILURES: dict[str, FailMode] = {
    "fake-500": "500",
    "fake-429": "429",
    "fake-reset": "reset",
    "fake-stall": "stall",
}
_SETTING_TYPES: dict[str, type] = {
    "fail": str,
    "fail_after": int,
    "retry_after": float,
    "ttft_ms": float,
    "tokens": int,
    "tokens_per_s": float,
}


@dataclass(frozen=True, slots=True)
class FakeServerConfig:
    """How chat requests are answered; `fail_after` counts tokens sent before reset/stall."""

    ttft_ms: float = 0
    tokens_per_s: float = 0  # 0 = as fast as possible
    tokens: int = 20
    fail: FailMode = "none"
    fail_after: int = 0
    retry_after: float | None = None  # seconds, sent as Retry-After with 429
    flag_words: tuple[str, ...] = ()  # /v1/moderations flags texts containing any of these


@dataclass(slots=True)
class FakeServerStats:
    requests: int = 0  # chat requests received
    streams_completed: int = 0  # streams that reached [DONE]
    tokens_sent: int = 0
    embedding_requests: int = 0
    moderation_requests: int = 0
    active_streams: int = 0
    max_active_streams: int = 0
    models: dict[str, int] = field(default_factory=dict)  # chat requests per model name


@dataclass(slots=True)
class FakeServerState:
    """Defaults, the pending /_control override, counters and the stop signal."""

    defaults: FakeServerConfig
    stats: FakeServerStats = field(default_factory=FakeServerStats)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    override: FakeServerConfig | None = None
    override_left: int = 0
    flag_words: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.flag_words = frozenset(word.lower() for word in self.defaults.flag_words)

    def settings_for(self, model: str) -> FakeServerConfig:
        """Settings for the next chat request; each request uses up one override."""
        settings = self.defaults
        if self.override is not None and self.override_left > 0:
            settings, self.override_left = self.override, self.override_left - 1
        forced = MODEL_FAILURES.get(model)
        return replace(settings, fail=forced) if forced else settings

    def set_override(self, changes: dict[str, Any], count: int) -> FakeServerConfig:
        """Use the defaults with `changes` for the next `count` requests.

        Raises ValueError for an unknown setting or a value of the wrong type.
        """
        self.override = replace(self.defaults, **_checked_settings(changes))
        self.override_left = count
        return self.override

    def clear_override(self) -> None:
        self.override, self.override_left = None, 0

    def stream_started(self) -> None:
        self.stats.active_streams += 1
        self.stats.max_active_streams = max(
            self.stats.max_active_streams, self.stats.active_streams
        )


STATE = web.AppKey("state", FakeServerState)


def _checked_settings(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = changes.keys() - _SETTING_TYPES.keys()
    if unknown:
        raise ValueError(f"unknown settings: {sorted(unknown)}")
    try:
        checked = {k: None if v is None else _SETTING_TYPES[k](v) for k, v in changes.items()}
    except TypeError as exc:
        raise ValueError(f"bad setting value: {exc}") from exc
    if checked.get("fail", "none") not in FAIL_MODES:
        raise ValueError(f"'fail' must be one of {list(FAIL_MODES)}")
    return checked
