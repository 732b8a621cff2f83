"""Markdown with markdown-it-py (MIT): headings become the section path, markup is dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge.extraction.outline import BlockList
from knowledge.extraction.textcodec import decode_text
from knowledge.extraction.types import Extracted

_HARD_BREAKS = frozenset({"softbreak", "hardbreak"})


def markdown_extract(path: Path, name: str) -> Extracted:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(decode_text(path.read_bytes()))
    blocks = BlockList()
    row: list[str] | None = None
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            blocks.heading(int(token.tag[1:]), inline_text(tokens[index + 1]))
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            blocks.add(" | ".join(row))
            row = None
        elif token.type == "inline" and row is not None:
            row.append(inline_text(token))
        elif token.type == "inline" and tokens[index - 1].type != "heading_open":
            blocks.add(inline_text(token))
        elif token.type in ("fence", "code_block", "html_block"):
            blocks.add(token.content)
    return Extracted("text/markdown", blocks.first_heading, blocks.finish(), None)


def inline_text(token: Any) -> str:
    """The plain text of an inline token: emphasis and link markup dropped, alt text kept."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in _HARD_BREAKS:
            parts.append("\n")
        elif child.type == "image":
            parts.append(inline_text(child))
    return "".join(parts)
