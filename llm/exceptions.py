"""Errors raised by chat providers."""

from __future__ import annotations


class ProviderError(Exception):
    """A vendor call failed.

    `retryable` tells the caller whether trying again (possibly on another provider)
    can help; `retry_after` is the server's hint in seconds, when it gave one.
    `code` is one of: "rate_limited", "server_error", "timeout", "connection",
    "bad_request", "not_found", "auth", "bad_response".
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = f" HTTP {self.status}" if self.status is not None else ""
        return f"[{self.code}{status}] {self.message}"

    def __repr__(self) -> str:
        return (
            f"ProviderError(code={self.code!r}, retryable={self.retryable!r}, "
            f"status={self.status!r}, retry_after={self.retry_after!r}, "
            f"message={self.message!r})"
        )


UNAVAILABLE_DETAIL = (
    "All of our language model providers are busy or unavailable right now, so no answer "
    "could be written. Please try again in a minute."
)


class ProvidersUnavailable(ProviderError):
    """No provider of a model could start an answer (all failed, rate limited or open).

    Its text is meant for the user; what each provider said is in `attempts` (and the logs).
    """

    def __init__(self, attempts: list[str]) -> None:
        super().__init__(UNAVAILABLE_DETAIL, code="unavailable", retryable=True)
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message
