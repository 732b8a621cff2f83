from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from llm.openai_errors import error_detail, retry_after_seconds, status_error


def test_retry_after_is_read_as_seconds() -> None:
    assert retry_after_seconds({"Retry-After": "12"}) == 12.0
    assert retry_after_seconds({"Retry-After": "0.5"}) == 0.5


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5


def test_retry_after_as_an_http_date_becomes_seconds_from_now() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    assert retry_after_seconds({"Retry-After": soon}) == pytest.approx(30, abs=2)


def test_a_missing_or_unreadable_retry_after_is_none() -> None:
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "soon-ish"}) is None


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, "bad_request", False),
        (401, "auth", False),
        (403, "auth", False),
        (404, "not_found", False),
        (408, "timeout", True),
        (429, "rate_limited", True),
        (500, "server_error", True),
        (503, "server_error", True),
    ],
)
def test_http_statuses_map_to_codes_and_retryability(
    status: int, code: str, retryable: bool
) -> None:
    error = status_error(provider="p", status=status, body=b"", headers={})

    assert (error.code, error.retryable, error.status) == (code, retryable, status)


def test_error_detail_prefers_the_vendors_message_and_stays_short() -> None:
    assert error_detail(b'{"error": {"message": "model not found"}}') == "model not found"
    assert error_detail(b'{"detail": "Not Found"}') == "Not Found"
    assert len(error_detail(b"x" * 10_000)) == 300
