"""Extracted blocks to chunks sized in the embedding model's tokens.

Blocks are grouped into runs of the same page and section (a chunk never spans two pages,
so its page is exact). A run is cut into sentences, each counted once; sentences are packed
greedily up to `target_tokens`, a chunk ends early at a paragraph boundary once it is half
full, and the next chunk repeats the last sentences (up to `overlap_tokens`) of the one before,
or the last words of its last sentence when that sentence alone is longer.
A sentence longer than a chunk is split at word boundaries by counted words. Every chunk
starts with its section path, so it stands alone, and is never over `max_tokens`.
Work is linear in the text: each sentence and each distinct over-long word is counted once,
plus one count of each finished chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import groupby

from knowledge.extraction import Block, Extracted

_ENDS = ".!?\u2026\u3002\uff01\uff1f"  # . ! ? and the ellipsis, CJK full stop, ! and ?
_CLOSERS = "\"')\\]\u2019\u201d"  # a quote or bracket closing the sentence
_SENTENCE_END = re.compile(rf"(?<=[{_ENDS}])\s+|(?<=[{_ENDS}][{_CLOSERS}])\s+|\n+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class ChunkDraft:
    ordinal: int
    text: str
    token_count: int
    page: int | None
    section: str


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    starts_paragraph: bool
    paragraph_tokens: int  # of the paragraph from this unit on, when it starts one


def chunks_make(
    *,
    extracted: Extracted,
    count_tokens: Callable[[str], int],
    target_tokens: int = 200,
    overlap_tokens: int = 30,
    max_tokens: int = 256,
) -> list[ChunkDraft]:
    """The chunks of a document, in reading order, numbered from 0."""
    packer = _Packer(count_tokens, target_tokens, overlap_tokens, max_tokens)
    texts: list[tuple[str, int | None, str]] = []
    for (page, section), run in groupby(extracted.blocks, key=lambda b: (b.page, b.section)):
        texts += [(text, page, section) for text in packer.pack(list(run), section)]
    drafts: list[ChunkDraft] = []
    for text, page, section in texts:
        for piece, tokens in _within(text, count_tokens, max_tokens):
            drafts.append(ChunkDraft(len(drafts), piece, tokens, page, section))
    return drafts


def _within(text: str, count_tokens: Callable[[str], int], limit: int) -> list[tuple[str, int]]:
    """The chunk and its count; halved at a space in the rare case that joining sentences
    made it count more than the sum of its parts and pass the limit."""
    tokens = count_tokens(text)
    middle = text.rfind(" ", 0, len(text) // 2 + 1)
    if tokens <= limit or middle <= 0:
        return [(text, tokens)]
    return _within(text[:middle], count_tokens, limit) + _within(
        text[middle + 1 :], count_tokens, limit
    )


class _Packer:
    def __init__(
        self, count_tokens: Callable[[str], int], target: int, overlap: int, maximum: int
    ) -> None:
        if not 0 < target <= maximum or overlap >= target:
            raise ValueError("need 0 < target_tokens <= max_tokens and overlap < target")
        self.count = count_tokens
        self.target = target
        self.overlap = overlap
        self.maximum = maximum
        self._word_tokens: dict[str, int] = {}

    def pack(self, blocks: list[Block], section: str) -> Iterator[str]:
        """The chunk texts of one run of blocks sharing a page and a section."""
        header = self._header(section)
        budget = self.target - (self.count(header) if header else 0)
        units = list(self._units(blocks, budget))
        for body in self._bodies(units, budget):
            yield f"{header}\n\n{body}" if header else body

    def _header(self, section: str) -> str:
        """The section path, shortened from the left if it would take over a third of a chunk."""
        while section and self.count(section) > self.target // 3:
            parts = section.split(" > ")
            section = " > ".join(parts[1:]) if len(parts) > 1 else section[: len(section) // 2]
        return section

    def _units(self, blocks: list[Block], budget: int) -> Iterator[_Unit]:
        for block in blocks:
            for paragraph in _PARAGRAPH_BREAK.split(block.text):
                units = [u for s in _sentences(paragraph) for u in self._fitted(s, budget)]
                total = sum(tokens for _, tokens in units)
                for i, (text, tokens) in enumerate(units):
                    yield _Unit(text, tokens, i == 0, total if i == 0 else 0)
                    total -= tokens

    def _fitted(self, sentence: str, budget: int) -> list[tuple[str, int]]:
        """The sentence, or its pieces of at most `budget` tokens when it is longer."""
        tokens = self.count(sentence)
        if tokens <= budget:
            return [(sentence, tokens)]
        pieces: list[tuple[str, int]] = []
        words: list[str] = []
        size = 0
        for word in sentence.split():
            for part, part_tokens in self._word_parts(word, budget):
                if words and size + part_tokens > budget:
                    pieces.append((" ".join(words), size))
                    words, size = [], 0
                words.append(part)
                size += part_tokens
        if words:
            pieces.append((" ".join(words), size))
        return pieces

    def _word_parts(self, word: str, budget: int) -> list[tuple[str, int]]:
        """A word's token count (cached); a word longer than a chunk is cut in halves."""
        tokens = self._word_tokens.get(word)
        if tokens is None:
            tokens = self._word_tokens[word] = self.count(word)
        if tokens <= budget or len(word) < 2:
            return [(word, tokens)]
        half = len(word) // 2
        return self._word_parts(word[:half], budget) + self._word_parts(word[half:], budget)

    def _bodies(self, units: list[_Unit], budget: int) -> Iterator[str]:
        start = 0
        carry: _Unit | None = None
        while start < len(units):
            if carry is not None and carry.tokens + units[start].tokens > budget:
                carry = None
            chunk: list[_Unit] = [carry] if carry is not None else []
            size, end = sum(u.tokens for u in chunk), start
            while end < len(units) and size + units[end].tokens <= budget:
                if end > start and self._paragraph_break_here(units[end], size, budget):
                    break
                size += units[end].tokens
                end += 1
            end = max(end, start + 1)
            yield self._joined(chunk + units[start:end])
            if end >= len(units):
                return
            start = self._overlap_start(units, start, end)
            carry = self._word_tail(units[end - 1]) if start == end else None

    def _word_tail(self, unit: _Unit) -> _Unit | None:
        """The last words of a sentence too long to repeat whole, up to `overlap` tokens."""
        tail: list[str] = []
        size = 0
        for word in reversed(unit.text.split()):
            tokens = sum(t for _, t in self._word_parts(word, self.target))
            if size + tokens > self.overlap:
                break
            tail.append(word)
            size += tokens
        return _Unit(" ".join(reversed(tail)), size, False, 0) if tail else None

    def _paragraph_break_here(self, unit: _Unit, size: int, budget: int) -> bool:
        """End the chunk before a paragraph that does not fit, once the chunk is half full."""
        return (
            unit.starts_paragraph and size >= budget // 2 and size + unit.paragraph_tokens > budget
        )

    def _overlap_start(self, units: list[_Unit], start: int, end: int) -> int:
        """Where the next chunk starts: back over whole sentences worth `overlap` tokens."""
        back, size = end, 0
        while back - 1 > start and size + units[back - 1].tokens <= self.overlap:
            back -= 1
            size += units[back].tokens
        return back

    @staticmethod
    def _joined(units: list[_Unit]) -> str:
        parts: list[str] = []
        for i, unit in enumerate(units):
            if i:
                parts.append("\n\n" if unit.starts_paragraph else " ")
            parts.append(unit.text)
        return "".join(parts)


def _sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]
