"""The base of every domain error: one shape that the API handler and the consumer turn into
``{code, detail, ...}``, whichever app raised it (apps do not import each other's errors)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """``code`` is the machine-readable error code clients see; ``status`` its HTTP status."""

    code = "invalid"
    status = 400
    retry_after: float | None = None  # seconds after which trying again may succeed

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extra(self) -> dict[str, Any]:
        """Fields added to the error body and frame next to ``code`` and ``detail``."""
        return {}
