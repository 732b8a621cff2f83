"""What extraction returns, its limits, and its one error type."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Block:
    """A paragraph, a heading-led section, a group of table rows, a slide or a sheet region."""

    text: str
    page: int | None  # 1-based: PDF page, PPTX slide, XLSX sheet index; None when unpaged
    section: str  # heading path such as "Install > Linux", "" if none


@dataclass(frozen=True)
class Extracted:
    media_type: str  # detected from the content, e.g. "application/pdf"
    title: str  # from metadata, else the first heading, else the file name
    blocks: list[Block]
    page_count: int | None


class ExtractionError(Exception):
    """A file that cannot be turned into text, with a reason a person understands.

    `code` is one of: "encrypted", "empty", "corrupt", "unsupported_type", "too_large",
    "too_many_pages", "decompression_bomb", "timeout", "no_text".
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __reduce__(self) -> tuple[type[ExtractionError], tuple[str, str]]:
        return (type(self), (self.code, self.reason))  # crosses the child process pipe

    def __repr__(self) -> str:
        return f"ExtractionError(code={self.code!r}, reason={self.reason!r})"


@dataclass(frozen=True)
class ExtractionLimits:
    max_bytes: int
    max_pages: int
    max_decompressed_bytes: int
    max_seconds: float
    max_memory_bytes: int  # address-space limit of the process that parses

    @classmethod
    def from_settings(cls) -> ExtractionLimits:
        return cls(
            max_bytes=settings.KNOWLEDGE_MAX_UPLOAD_BYTES,
            max_pages=settings.KNOWLEDGE_MAX_PAGES,
            max_decompressed_bytes=settings.KNOWLEDGE_MAX_DECOMPRESSED_BYTES,
            max_seconds=settings.KNOWLEDGE_EXTRACT_TIMEOUT_S,
            max_memory_bytes=settings.KNOWLEDGE_EXTRACT_MEMORY_BYTES,
        )
