"""The fake server's token counting for `usage` fields."""

from __future__ import annotations


def word_count(text: str) -> int:
    """A rough token count: whitespace-separated words."""
    return len(text.split())
