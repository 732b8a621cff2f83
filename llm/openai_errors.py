"""Turn HTTP and transport failures of OpenAI-compatible servers into ProviderError."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from llm.exceptions import ProviderError

_MAX_DETAIL = 300


def status_error(
    *, provider: str, status: int, body: bytes, headers: Mapping[str, str]
) -> ProviderError:
    """Build the error for a non-2xx response."""
    code, retryable = _classify_status(status)
    return ProviderError(
        f"{provider}: {error_detail(body) or f'HTTP {status}'}",
        code=code,
        retryable=retryable,
        status=status,
        retry_after=retry_after_seconds(headers),
    )


def transport_error(exc: BaseException, *, provider: str, read_timeout: float) -> ProviderError:
    """Build the error for a timeout, refused or dropped connection, or bad URL."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        message = f"{provider}: timed out while connecting"
        return ProviderError(message, code="timeout", retryable=True)
    if isinstance(exc, TimeoutError):
        message = f"{provider}: no data received for {read_timeout:g}s"
        return ProviderError(message, code="timeout", retryable=True)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return ProviderError(f"{provider}: {exc}", code="bad_request", retryable=False)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        message = f"{provider}: the connection dropped before the answer was complete"
        return ProviderError(message, code="connection", retryable=True)
    reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return ProviderError(f"{provider}: {reason}", code="connection", retryable=True)


def stream_error(error: Any, *, provider: str) -> ProviderError:
    """Build the error for an `{"error": ...}` object sent inside the event stream."""
    detail = _message_of(error) or "error event in the stream"
    return ProviderError(f"{provider}: {detail}", code="server_error", retryable=True)


def error_detail(body: bytes) -> str:
    """The vendor's error message from a response body, shortened for logs."""
    text = body.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:_MAX_DETAIL]
    if isinstance(payload, dict):
        found = payload.get("error") or payload.get("detail") or payload.get("message")
        text = _message_of(found) or text
    return text[:_MAX_DETAIL]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or HTTP date)."""
    millis = _as_float(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("Retry-After")
    if value is None:
        return None
    seconds = _as_float(value)
    return max(0.0, seconds) if seconds is not None else _seconds_until(value)


def _classify_status(status: int) -> tuple[str, bool]:
    if status in (401, 403):
        return "auth", False
    if status == 404:
        return "not_found", False
    if status == 408:
        return "timeout", True
    if status == 429:
        return "rate_limited", True
    if status >= 500:
        return "server_error", True
    return "bad_request", False


def _message_of(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or "")
    return str(error) if error else ""


def _as_float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _seconds_until(http_date: str) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
