"""Turn services: begin, finish, the reaper, context assembly and rolling summaries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot.users.tests.factories import UserFactory
from conversations import streams
from conversations.context import context_build
from conversations.exceptions import InvalidInput, NotFound, TurnInProgress
from conversations.models import Message
from conversations.services import (
    TurnOutcome,
    conversation_create,
    conversation_summarize,
    turn_begin,
    turn_finish,
    turns_reap,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory.create(username="sam")


@pytest.fixture
def conversation(user):
    return conversation_create(owner=user, title="t")


def begin(user, conversation, key="k", content="Hi"):
    return turn_begin(
        user=user, conversation_id=conversation.pk, content=content, idempotency_key=key
    )


def test_begin_writes_the_question_and_a_pending_answer(user, conversation):
    turn = begin(user, conversation)
    assert turn.created
    assert (turn.user_message.role, turn.user_message.content) == ("user", "Hi")
    assert turn.assistant_message.status == "pending"
    assert turn.assistant_message.reply_to_id == turn.user_message.pk


def test_begin_with_the_same_key_returns_the_same_turn(user, conversation):
    first = begin(user, conversation)
    second = begin(user, conversation)
    assert not second.created
    assert second.assistant_message.pk == first.assistant_message.pk
    assert Message.objects.count() == 2


def test_begin_refuses_empty_and_oversized_content_and_bad_keys(user, conversation, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    for content, key in (("   ", "k"), ("x" * 11, "k"), ("ok", ""), ("ok", "k" * 65)):
        with pytest.raises(InvalidInput):
            begin(user, conversation, key=key, content=content)
    assert not Message.objects.exists()


def test_begin_in_someone_elses_conversation_is_not_found(conversation):
    with pytest.raises(NotFound):
        begin(UserFactory.create(username="eve"), conversation)


def test_begin_in_a_deleted_conversation_is_not_found(user, conversation):
    conversation.deleted_at = timezone.now()
    conversation.save(update_fields=["deleted_at"])
    with pytest.raises(NotFound):
        begin(user, conversation)


def test_only_one_turn_runs_per_conversation(user, conversation):
    begin(user, conversation, key="a")
    with pytest.raises(TurnInProgress):
        begin(user, conversation, key="b")


def test_finish_happens_once(user, conversation):
    turn = begin(user, conversation)
    done = TurnOutcome(status="complete", content="answer", completion_tokens=3)
    assert turn_finish(message_id=turn.assistant_message.pk, outcome=done) is True
    late = TurnOutcome(status="interrupted", content="other")
    assert turn_finish(message_id=turn.assistant_message.pk, outcome=late) is False
    turn.assistant_message.refresh_from_db()
    assert (turn.assistant_message.status, turn.assistant_message.content) == (
        "complete",
        "answer",
    )


def age(message: Message, seconds: int) -> None:
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_reaper_interrupts_a_dead_turn_and_keeps_its_partial_text(user, conversation):
    turn = begin(user, conversation)
    message_id = turn.assistant_message.pk
    with streams.sync_client() as client:
        client.xadd(streams.stream_key(message_id), {"t": "partial "}, id="0-1")
        client.xadd(streams.stream_key(message_id), {"t": "answer"}, id="0-2")
    age(turn.assistant_message, 120)

    assert turns_reap() == [message_id]
    stored = Message.objects.get(pk=message_id)
    assert (stored.status, stored.content, stored.error_code) == (
        "interrupted",
        "partial answer",
        "interrupted",
    )
    text, last_seq, done = streams.stream_text_sync(message_id)
    assert (text, last_seq, done) == ("partial answer", 3, True)
    assert turns_reap() == []


def test_the_reaper_leaves_live_and_young_turns_alone(user, conversation):
    live = begin(user, conversation, key="live").assistant_message
    age(live, 120)
    with streams.sync_client() as client:
        client.set(streams.heartbeat_key(live.pk), b"1", ex=20)
    other = conversation_create(owner=user)
    young = begin(user, other, key="young").assistant_message

    assert turns_reap() == []
    statuses = set(
        Message.objects.filter(pk__in=[live.pk, young.pk]).values_list("status", flat=True)
    )
    assert statuses == {"pending"}


def add_exchange(conversation, n: int, size: int = 400) -> Message:
    question = Message.objects.create(
        conversation=conversation, role="user", content=f"q{n} " + "x" * size
    )
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content=f"a{n} " + "y" * size,
        reply_to=question,
    )
    return question


def test_context_keeps_the_newest_messages_within_the_budget(conversation, settings):
    settings.CHAT_CONTEXT_WINDOW = 2000
    settings.CHAT_MAX_OUTPUT_TOKENS = 500
    for n in range(20):
        add_exchange(conversation, n)
    question = Message.objects.create(conversation=conversation, role="user", content="latest?")

    context = context_build(conversation=conversation, question=question)
    contents = [m.content for m in context.messages]
    assert contents[0].startswith(settings.CHAT_SYSTEM_PROMPT)
    assert contents[-1] == "latest?"
    assert contents[-2].startswith("a19 ") and contents[-3].startswith("q19 ")
    assert not any(c.startswith("q0 ") for c in contents)
    assert context.prompt_tokens_estimate <= 1500
    assert context.dropped_before_id is not None


def test_a_rolling_summary_replaces_the_dropped_messages(conversation, settings):
    settings.CHAT_CONTEXT_WINDOW = 2000
    settings.CHAT_MAX_OUTPUT_TOKENS = 500
    for n in range(20):
        add_exchange(conversation, n)
    question = Message.objects.create(conversation=conversation, role="user", content="latest?")
    dropped = context_build(conversation=conversation, question=question).dropped_before_id
    assert dropped is not None

    assert conversation_summarize(conversation_id=conversation.pk, through_id=dropped) is True
    assert conversation_summarize(conversation_id=conversation.pk, through_id=dropped) is False
    conversation.refresh_from_db()
    assert conversation.summary_through_id == dropped
    newest_folded = Message.objects.get(pk=dropped)
    assert f"said: {newest_folded.content[:20]}" in conversation.summary
    assert conversation.summary.startswith("- ")  # whole lines only
    assert len(conversation.summary) <= 2000
    context = context_build(conversation=conversation, question=question)
    assert "Summary of the earlier conversation" in context.messages[0].content
    ids_in_context = [m.content.split()[0] for m in context.messages[1:-1]]
    assert all(int(tag[1:]) > 0 for tag in ids_in_context)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_key", [True, False])
def test_concurrent_begins_start_exactly_one_answer(same_key):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    owner = UserFactory.create(username="racer")
    conversation = conversation_create(owner=owner)

    def attempt(n: int) -> str:
        try:
            key = "same" if same_key else f"k{n}"
            turn = begin(owner, conversation, key=key)
            return f"turn {turn.assistant_message.pk}"
        except TurnInProgress:
            return "refused"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    answers = Message.objects.filter(conversation=conversation, role="assistant")
    assert answers.count() == 1
    if same_key:
        assert set(outcomes) == {f"turn {answers.get().pk}"}
    else:
        assert outcomes.count("refused") == 7


def test_messages_beyond_the_history_scan_are_left_to_the_summary(conversation, monkeypatch):
    monkeypatch.setattr("conversations.context.HISTORY_SCAN_LIMIT", 4)
    for n in range(5):
        add_exchange(conversation, n, size=5)
    question = Message.objects.create(conversation=conversation, role="user", content="now?")

    context = context_build(conversation=conversation, question=question)
    assert len(context.messages) == 1 + 4 + 1  # system, the 4 scanned, the question
    oldest_kept = Message.objects.filter(content__startswith="q3 ").get()
    assert context.dropped_before_id == oldest_kept.pk - 1
