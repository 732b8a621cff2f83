"""Billing's domain errors: refused by the rate limit or by the quota."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatbot.errors import DomainError


class BillingError(DomainError):
    code = "billing"
    status = 400


class RateLimited(BillingError):
    """Too many requests for now: HTTP 429 with ``Retry-After``; a frame with ``retry_after``."""

    code = "rate_limited"
    status = 429

    def __init__(self, retry_after: float, detail: str = "") -> None:
        super().__init__(detail or f"too many requests; try again in {retry_after:.1f} s")
        self.retry_after = max(0.0, retry_after)

    def extra(self) -> dict[str, Any]:
        return {"retry_after": round(self.retry_after or 0.0, 3)}


class QuotaExceeded(BillingError):
    """The period's budget cannot hold this request: HTTP 402 with ``reset_at``.

    402, not 429: waiting a few seconds does not help (the budget comes back at ``reset_at``,
    possibly weeks away), and generic clients retry 429s in a loop.
    """

    code = "quota_exceeded"
    status = 402

    def __init__(self, reset_at: datetime, detail: str = "") -> None:
        super().__init__(detail or f"your plan's quota is used up until {reset_at.isoformat()}")
        self.reset_at = reset_at

    def extra(self) -> dict[str, Any]:
        return {"reset_at": self.reset_at.isoformat()}
