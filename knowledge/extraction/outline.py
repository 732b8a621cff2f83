"""Heading paths ("Install > Linux") and the block list that formats fill in."""

from __future__ import annotations

import re

from knowledge.extraction.types import Block

_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def clean_inline(text: str) -> str:
    """Collapse runs of spaces and tabs, keep single newlines, trim each line."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def paragraphs(text: str) -> list[str]:
    """`text` split at blank lines, each part cleaned; empty parts dropped."""
    parts = (clean_inline(part) for part in _BLANK_LINES.split(text))
    return [part for part in parts if part]


class Outline:
    """The stack of open headings: a level-2 heading closes any level 2 and deeper."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def heading(self, level: int, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            return
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title[:200]))

    @property
    def path(self) -> str:
        return " > ".join(title for _, title in self._stack)


class BlockList:
    """Blocks in reading order, under the current heading path and page.

    A heading with no text under it (followed at once by another heading, or the last thing
    in the document) becomes a block of its own, so no heading text is lost.
    """

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.outline = Outline()
        self.first_heading = ""
        self._pending: tuple[str, int | None] | None = None

    def heading(self, level: int, title: str, *, page: int | None = None) -> None:
        title = " ".join(title.split())
        if not title:
            return
        self._flush_pending()
        self.outline.heading(level, title)
        self._pending = (title, page)
        self.first_heading = self.first_heading or title[:300]

    def add(self, text: str, *, page: int | None = None, section: str | None = None) -> None:
        text = text.strip()
        if text:
            self._pending = None
            where = self.outline.path if section is None else section
            self.blocks.append(Block(text=text, page=page, section=where))

    def finish(self) -> list[Block]:
        """The blocks, once the document has ended."""
        self._flush_pending()
        return self.blocks

    def _flush_pending(self) -> None:
        if self._pending is not None:
            title, page = self._pending
            self._pending = None
            self.add(title, page=page)
