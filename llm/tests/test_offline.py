from __future__ import annotations

import pytest

from llm.chat import ChatMessage, ChatProvider
from llm.offline import NO_MATCH_REPLY, NO_MODEL_REPLY, OfflineProvider, parse_sources
from llm.tests.streaming import collect

SOURCES = """Answer using only these sources.

[1] Refunds are accepted within 30 days of purchase. Opened software cannot be refunded.
[2] The support desk is open Monday to Friday, from 9 to 17.
[3] Shipping is free for orders above 50 euros.
"""


def ask(question: str, system: str | None = None) -> list[ChatMessage]:
    messages = [ChatMessage("system", system)] if system else []
    return [*messages, ChatMessage("user", question)]


async def reply(messages: list[ChatMessage], max_tokens: int = 500):
    return await collect(
        OfflineProvider().stream_chat(model="", messages=messages, max_tokens=max_tokens)
    )


def test_the_offline_provider_satisfies_the_chat_protocol() -> None:
    provider: ChatProvider = OfflineProvider()
    assert provider.name == "offline"


@pytest.mark.asyncio
async def test_without_sources_the_reply_is_a_clearly_labelled_notice() -> None:
    outcome = await reply(ask("Write me a poem about spring"))

    assert outcome.text == NO_MODEL_REPLY
    assert outcome.text.startswith("(Offline mode)")


@pytest.mark.asyncio
async def test_the_reply_streams_word_by_word_and_counts_words_as_tokens() -> None:
    messages = ask("Write me a poem about spring", system="Be nice.")

    outcome = await reply(messages)

    assert len(outcome.deltas) == len(NO_MODEL_REPLY.split())
    assert outcome.finish is not None
    assert outcome.finish.finish_reason == "stop"
    assert outcome.finish.completion_tokens == len(outcome.deltas)
    assert outcome.finish.prompt_tokens == 8  # "Be nice." + six question words


@pytest.mark.asyncio
async def test_with_sources_it_quotes_the_best_matching_sentence_and_cites_it() -> None:
    outcome = await reply(ask("When is the support desk open?", system=SOURCES))

    lines = outcome.text.splitlines()
    assert lines[0].startswith("(Offline mode)")
    assert lines[1] == "- The support desk is open Monday to Friday, from 9 to 17. [2]"
    assert "[3]" not in outcome.text  # nothing about shipping


@pytest.mark.asyncio
async def test_several_matching_sentences_are_ranked_by_shared_words() -> None:
    outcome = await reply(ask("Can opened software be refunded after purchase?", SOURCES))

    lines = outcome.text.splitlines()[1:]
    assert lines == [
        "- Opened software cannot be refunded. [1]",
        "- Refunds are accepted within 30 days of purchase. [1]",
    ]


@pytest.mark.asyncio
async def test_sources_sharing_no_words_with_the_question_get_an_honest_no() -> None:
    outcome = await reply(ask("Who painted the Mona Lisa?", system=SOURCES))

    assert outcome.text == NO_MATCH_REPLY


@pytest.mark.asyncio
async def test_max_tokens_cuts_the_reply_and_says_length() -> None:
    outcome = await reply(ask("Hello"), max_tokens=4)

    assert outcome.text == "(Offline mode) No language "
    assert outcome.finish is not None
    assert (outcome.finish.finish_reason, outcome.finish.completion_tokens) == ("length", 4)


def test_a_source_runs_over_following_lines_until_a_blank_line() -> None:
    sources = parse_sources(["[1] First line\ncontinues here.\n\nNot a source.\n[7] Seven."])

    assert [(s.number, s.text) for s in sources] == [
        (1, "First line continues here."),
        (7, "Seven."),
    ]
