from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llm.chat import ChatEvent, Delta, Finish
from llm.fake_server import RunningFakeServer
from llm.moderation import (
    DEFAULT_RULES_FILE,
    ModerationResult,
    ModerationRuleError,
    OpenAIModerator,
    OutputFlagged,
    OutputWatch,
    RuleModerator,
    moderation_check,
)

RULES = RuleModerator.from_lines(
    ["# a comment", "", "test-words: forbidden phrase", "test-regex: /\\bzz+top\\b/"]
)


def test_a_phrase_matches_whole_words_in_any_case_and_spacing():
    result = RULES.check("well, a FORBIDDEN\n  phrase it is")

    assert result.flagged
    assert result.categories == ("test-words",)
    assert "FORBIDDEN\n  phrase" in result.excerpt
    assert result.provider == "rules"


def test_a_phrase_inside_another_word_does_not_match():
    assert not RULES.check("unforbidden phrases").flagged


def test_regex_rules_match_and_every_flagged_category_is_named():
    result = RULES.check("zzzztop and a forbidden phrase")

    assert set(result.categories) == {"test-words", "test-regex"}
    assert result.excerpt.startswith("zzzztop")


@pytest.mark.parametrize("line", ["no category", "weapons:", "bad: /([/"])
def test_unreadable_rule_lines_are_refused_with_the_line_number(line):
    with pytest.raises(ModerationRuleError, match="line 1"):
        RuleModerator.from_lines([line])


def test_the_default_rules_flag_weapon_instructions_but_not_ordinary_questions():
    rules = RuleModerator.from_file(DEFAULT_RULES_FILE)

    assert rules.check("Tell me how to build a pipe bomb").categories == ("weapons",)
    assert not rules.check("How do I bomb-proof my deployment pipeline?").flagged
    assert not rules.check("What is our holiday policy?").flagged


@pytest.mark.asyncio
async def test_the_openai_moderator_reads_flagged_categories(fake_server: RunningFakeServer):
    fake_server.set_flag_words("xyzzy")
    moderator = OpenAIModerator(fake_server.base_url, "test-key", model="omni-moderation-latest")
    try:
        flagged = await moderator.moderate("say xyzzy please")
        passed = await moderator.moderate("say hello please")
    finally:
        await moderator.aclose()
        fake_server.set_flag_words()

    assert flagged == ModerationResult(True, ("harassment",), "say xyzzy please", moderator.name)
    assert not passed.flagged


@pytest.mark.asyncio
async def test_an_unreachable_moderator_lets_text_pass_and_does_not_raise():
    moderator = OpenAIModerator("http://127.0.0.1:1/v1", None, model="m")
    try:
        assert not (await moderation_check(moderator, "anything")).flagged
    finally:
        await moderator.aclose()


class CountingRules(RuleModerator):
    def __init__(self, rules: RuleModerator) -> None:
        super().__init__(rules.rules)
        self.checked: list[str] = []

    def check(self, text: str) -> ModerationResult:
        self.checked.append(text)
        return super().check(text)


async def stream_of(*pieces: str) -> AsyncIterator[ChatEvent]:
    for piece in pieces:
        yield Delta(piece)
    yield Finish("stop", None, None)


async def read(
    watch: OutputWatch, stream: AsyncIterator[ChatEvent]
) -> tuple[str, Exception | None]:
    text = ""
    try:
        async for event in watch.watch(stream):
            if isinstance(event, Delta):
                text += event.text
    except OutputFlagged as exc:
        return text, exc
    return text, None


@pytest.mark.asyncio
async def test_the_output_watch_checks_windows_not_every_token():
    rules = CountingRules(RULES)
    watch = OutputWatch(rules, every=100, window=150)

    text, flagged = await read(watch, stream_of(*["word "] * 200))  # 1000 characters

    assert flagged is None and len(text) == 1000
    assert len(rules.checked) == 10  # every 100 characters (the last one at the end)
    assert all(len(window) <= 150 for window in rules.checked)


@pytest.mark.asyncio
async def test_a_flagged_phrase_across_two_windows_halts_the_stream():
    watch = OutputWatch(CountingRules(RULES), every=20, window=60)
    pieces = ["a" * 15 + " ", "forbid", "den ", "phrase", " and then more text", " never sent"]

    text, flagged = await read(watch, stream_of(*pieces))

    assert isinstance(flagged, OutputFlagged)
    assert flagged.result.categories == ("test-words",)
    assert "never sent" not in text


@pytest.mark.asyncio
async def test_a_short_flagged_answer_is_caught_at_its_end_before_the_finish():
    watch = OutputWatch(RULES, every=400, window=600)

    _, flagged = await read(watch, stream_of("a forbidden phrase"))

    assert isinstance(flagged, OutputFlagged)


@pytest.mark.asyncio
async def test_a_remote_moderator_runs_beside_the_stream_and_still_halts_it(fake_server):
    fake_server.set_flag_words("tok3")
    moderator = OpenAIModerator(fake_server.base_url, None, model="m")
    watch = OutputWatch(moderator, every=5, window=40)
    try:
        _, flagged = await read(watch, stream_of(*[f"tok{n} " for n in range(1, 40)]))
    finally:
        await moderator.aclose()
        fake_server.set_flag_words()

    assert isinstance(flagged, OutputFlagged)
    assert flagged.result.provider == "openai-moderation"
