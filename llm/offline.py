"""A provider that needs no model: an honest notice, or quotes from numbered sources.

Used when no language model is configured. Without sources it says so plainly. When a
system message lists sources as lines starting with "[n] ", it quotes the source
sentences sharing the most words with the last user message and cites them as "[n]".
Token counts are whitespace-separated words: there is no tokenizer offline, so they are
a rough estimate.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from llm.chat import ChatMessage, Delta, Finish

LABEL = "(Offline mode) No language model is configured for this server"
NO_MODEL_REPLY = (
    f"{LABEL}, so I can't write a free-form answer. "
    "An administrator can connect one, for example any OpenAI-compatible endpoint."
)
NO_MATCH_REPLY = (
    f"{LABEL}, and none of the provided sources shares words with your question, "
    "so I can't answer it."
)
QUOTES_INTRO = f"{LABEL}, so here are the source passages that best match your question:"

_SOURCE_START = re.compile(r"^\[(\d+)\]\s+(.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")
_PIECE = re.compile(r"\S+\s*")
_MAX_QUOTES = 3
_MAX_QUOTE_CHARS = 300
_STOPWORD_TEXT = """
a about an and any are as at be but by can could did do does for from had has have how
i if in into is it its me my no not of on or our should so than that the their them then
there these they this to was we were what when where which who why will with would you your
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class Source:
    number: int
    text: str


class OfflineProvider:
    """A ChatProvider that works with no model configured; `model` is ignored."""

    name: str = "offline"

    async def stream_chat(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float | None = None,
    ) -> AsyncIterator[Delta | Finish]:
        """Stream the offline reply word by word, cut at `max_tokens` words."""
        words = _PIECE.findall(offline_reply(messages))
        sent = words[: max(max_tokens, 0)]
        for word in sent:
            yield Delta(word)
            await asyncio.sleep(0)
        reason = "length" if len(sent) < len(words) else "stop"
        prompt_words = sum(len(m.content.split()) for m in messages)
        yield Finish(reason, prompt_tokens=prompt_words, completion_tokens=len(sent))

    async def aclose(self) -> None:
        """Nothing to release."""


def offline_reply(messages: Sequence[ChatMessage]) -> str:
    """The whole reply: the notice, or the best-matching source sentences with citations."""
    sources = parse_sources(m.content for m in messages if m.role == "system")
    if not sources:
        return NO_MODEL_REPLY
    question = next((m.content for m in reversed(messages) if m.role == "user"), "")
    quotes = best_sentences(sources, question)
    if not quotes:
        return NO_MATCH_REPLY
    lines = [f"- {_shortened(sentence)} [{number}]" for number, sentence in quotes]
    return "\n".join([QUOTES_INTRO, *lines])


def parse_sources(texts: Iterable[str]) -> list[Source]:
    """Sources listed as "[n] text" lines; a source runs until a blank line or the next."""
    sources: list[Source] = []
    for text in texts:
        in_source = False
        for line in (line.strip() for line in text.splitlines()):
            if match := _SOURCE_START.match(line):
                sources.append(Source(int(match[1]), match[2]))
                in_source = True
            elif in_source and line:
                last = sources[-1]
                sources[-1] = Source(last.number, f"{last.text} {line}")
            else:
                in_source = False
    return sources


def best_sentences(sources: Sequence[Source], question: str) -> list[tuple[int, str]]:
    """Up to three (source number, sentence) pairs sharing the most terms with `question`."""
    wanted = _terms(question)
    scored = [
        (len(wanted & _terms(sentence)), source.number, sentence)
        for source in sources
        for sentence in _SENTENCE_END.split(source.text)
        if sentence.strip()
    ]
    # A stable sort keeps earlier sources first among equal scores.
    scored.sort(key=lambda item: item[0], reverse=True)
    return [(number, sentence) for score, number, sentence in scored[:_MAX_QUOTES] if score]


def _terms(text: str) -> set[str]:
    words = (w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS)
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words}


def _shortened(sentence: str) -> str:
    sentence = sentence.strip()
    if len(sentence) <= _MAX_QUOTE_CHARS:
        return sentence
    return sentence[:_MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
