"""Chunking: sizes, overlap, pages and sections, nothing lost, deterministic, linear."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable

import pytest

from knowledge.chunking import ChunkDraft, chunks_make
from knowledge.extraction import Block, Extracted


def words(text: str) -> int:
    """A stand-in tokenizer: one token per word."""
    return len(text.split())


def document(*blocks: Block) -> Extracted:
    return Extracted(media_type="text/plain", title="t", blocks=list(blocks), page_count=None)


def prose(count: int, *, prefix: str = "s", length: int = 12) -> str:
    """`count` distinct sentences of `length` words each."""
    return " ".join(
        " ".join(f"{prefix}{i}w{j}" for j in range(length - 1)) + f" end{prefix}{i}."
        for i in range(count)
    )


def sentences_of(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=\.)\s+", text) if s]


def body(chunk: ChunkDraft) -> str:
    return chunk.text.removeprefix(chunk.section).strip() if chunk.section else chunk.text


def test_chunks_stay_within_the_token_limits_and_near_the_target() -> None:
    chunks = chunks_make(extracted=document(Block(prose(100), None, "")), count_tokens=words)
    assert all(c.token_count <= 200 for c in chunks)
    assert all(c.token_count == words(c.text) for c in chunks)
    assert all(c.token_count >= 150 for c in chunks[:-1])


def test_consecutive_chunks_overlap_by_whole_sentences() -> None:
    chunks = chunks_make(
        extracted=document(Block(prose(60), None, "")), count_tokens=words, overlap_tokens=30
    )
    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        tail = sentences_of(before.text)
        head = sentences_of(after.text)
        shared = next(n for n in range(len(head), -1, -1) if tail[len(tail) - n :] == head[:n])
        assert 1 <= shared < len(head)  # some overlap, not the whole chunk
        assert words(" ".join(head[:shared])) <= 30


def test_no_sentence_is_lost_and_order_is_kept() -> None:
    blocks = [
        Block(prose(30, prefix="a"), 1, "Intro"),
        Block(prose(5, prefix="b"), 1, "Intro > Detail"),
        Block(prose(40, prefix="c"), 2, "Intro > Detail"),
    ]
    chunks = chunks_make(extracted=document(*blocks), count_tokens=words)
    joined = "\n".join(c.text for c in chunks)
    expected = [s for b in blocks for s in sentences_of(b.text)]
    assert all(s in joined for s in expected)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_a_chunk_never_mixes_pages_and_keeps_its_section_as_a_prefix() -> None:
    blocks = [
        Block(prose(3, prefix="p1"), 1, "Guide > Install"),
        Block(prose(3, prefix="p2"), 2, "Guide > Install"),
        Block(prose(3, prefix="p3"), 2, "Guide > Usage"),
    ]
    chunks = chunks_make(extracted=document(*blocks), count_tokens=words)
    assert [(c.page, c.section) for c in chunks] == [
        (1, "Guide > Install"),
        (2, "Guide > Install"),
        (2, "Guide > Usage"),
    ]
    for chunk, block in zip(chunks, blocks, strict=True):
        assert chunk.text == f"{block.section}\n\n{block.text}"


def test_a_long_section_path_is_shortened_from_the_left() -> None:
    section = " > ".join(f"level{i} " + "word " * 20 for i in range(6))
    chunks = chunks_make(extracted=document(Block("Short.", None, section)), count_tokens=words)
    header, text = chunks[0].text.split("\n\n")
    assert chunks[0].section == section  # the field keeps the whole path
    assert section.endswith(header) and header.startswith("level")
    assert words(header) <= 200 // 3
    assert text == "Short."


def test_a_paragraph_that_does_not_fit_starts_a_new_chunk() -> None:
    text = prose(10, prefix="x") + "\n\n" + prose(10, prefix="y")  # 120 words each
    chunks = chunks_make(extracted=document(Block(text, None, "")), count_tokens=words)
    assert chunks[0].text == prose(10, prefix="x")
    assert chunks[-1].text.endswith(prose(10, prefix="y"))


def test_an_over_long_sentence_is_split_by_tokens_without_losing_words() -> None:
    sentence = " ".join(f"w{i}" for i in range(1000))  # no punctuation at all
    chunks = chunks_make(extracted=document(Block(sentence, None, "")), count_tokens=words)
    assert all(c.token_count <= 200 for c in chunks)
    seen = {w for c in chunks for w in c.text.split()}
    assert seen == set(sentence.split())


def test_an_over_long_word_is_cut_so_no_chunk_passes_max_tokens() -> None:
    def by_chars(text: str) -> int:
        return math.ceil(len(text) / 4)

    blob = "x" * 5000  # base64 or a hash: one "word" of 1250 tokens
    chunks = chunks_make(
        extracted=document(Block(f"Before. {blob} After.", None, "")), count_tokens=by_chars
    )
    assert all(c.token_count <= 256 for c in chunks)
    assert sum(c.text.count("x") for c in chunks) >= 5000


def test_chunking_is_deterministic() -> None:
    extracted = document(Block(prose(50), 3, "A"), Block(prose(20, prefix="z"), 4, "B"))
    first = chunks_make(extracted=extracted, count_tokens=words)
    assert first == chunks_make(extracted=extracted, count_tokens=words)


def test_token_counting_is_linear_in_the_text() -> None:
    counted = 0

    def counting(text: str) -> int:
        nonlocal counted
        counted += len(text)
        return words(text)

    text = "\n\n".join(prose(8, prefix=f"p{i}") for i in range(300))  # 29k words
    chunks_make(extracted=document(Block(text, None, "S")), count_tokens=counting)
    # each sentence once, each chunk once (with its overlap and header): about 2.3x the text
    assert counted < 3 * len(text)


def test_target_above_max_is_refused() -> None:
    with pytest.raises(ValueError):
        chunks_make(extracted=document(), count_tokens=words, target_tokens=300, max_tokens=256)


@pytest.mark.parametrize("name", ["minilm"])
def test_chunks_of_a_real_document_fit_the_minilm_window(name: str, minilm: object) -> None:
    count: Callable[[str], int] = minilm.count_tokens  # type: ignore[attr-defined]
    blocks = [Block(prose(40, prefix="m"), 1, "Manual > Setup")]
    chunks = chunks_make(extracted=document(*blocks), count_tokens=count, max_tokens=254)
    assert all(0 < c.token_count <= 254 for c in chunks)
    assert all(c.token_count == count(c.text) for c in chunks)


def test_a_sentence_longer_than_the_overlap_is_repeated_by_its_last_words() -> None:
    text = prose(30, length=40)  # every sentence is 40 words, more than the 30-token overlap
    chunks = chunks_make(extracted=document(Block(text, None, "")), count_tokens=words)
    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        tail = " ".join(before.text.split()[-30:])
        assert after.text.startswith(tail)
        assert after.token_count <= 200
    assert all(s in "\n".join(c.text for c in chunks) for s in sentences_of(text))
