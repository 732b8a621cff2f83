"""Writes: every state change of conversations and turns goes through a function here."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conversations.exceptions import InvalidInput, NotFound, TurnInProgress
from conversations.metering import models_for, turn_settle
from conversations.model_routing import AUTO, RouteDecision
from conversations.models import Conversation, Message
from conversations.selectors import conversation_get_for_user
from conversations.titles import title_schedule
from conversations.turn_sql import (
    ACTIVE_CONSTRAINT,
    begin_rows_insert,
    constraint_of,
    finish_rows_update,
)
from llm.tokens import token_count

MAX_TITLE_CHARS = 200
MAX_KEY_CHARS = 64


@dataclass(frozen=True)
class Turn:
    """A user message and the assistant message answering it; ``created`` is False on a replay."""

    conversation: Conversation
    user_message: Message
    assistant_message: Message
    created: bool
    # A new turn: whether the user may read a ready document (from the begin statement); None
    # when unknown (a replay), and retrieval checks for itself.
    searchable: bool | None = None
    first: bool | None = None  # the conversation's first question; None when unknown


class TurnConflict(Exception):  # not an error for the client: a replay or a refusal
    """The begin statement hit the idempotency key or the one-running-answer constraint.

    Raised by ``turn_begin(savepoint=False)``: the caller lets it roll its transaction back and
    answers it with ``turn_conflict`` (a replay, or ``TurnInProgress``).
    """

    def __init__(self, *, key: str, error: IntegrityError) -> None:
        super().__init__(str(error))
        self.key, self.error = key, error


def model_validate(model: str | None, *, user: Any = None) -> str:
    """A model ``user``'s plan allows, or ``auto`` (each turn picks one of those)."""
    models = models_for(user)
    if not models:
        raise InvalidInput("your plan offers no model; ask an administrator")
    if not model:
        return models[0]
    if model not in models and model != AUTO:
        choices = ", ".join([*models, AUTO])
        raise InvalidInput(f"unknown model {model!r}; choose one of {choices}")
    return model


def title_validate(title: str) -> str:
    title = title.strip()
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidInput(f"title is longer than {MAX_TITLE_CHARS} characters")
    return title


@transaction.atomic
def conversation_create(*, owner: Any, title: str = "", model: str | None = None) -> Conversation:
    """Start a conversation for ``owner`` with a validated title and model."""
    return Conversation.objects.create(
        owner=owner, title=title_validate(title), model=model_validate(model, user=owner)
    )


@transaction.atomic
def conversation_with_exchange_create(
    *, owner: Any, title: str, question: str, answer: str
) -> Conversation:
    """A conversation holding one finished question and answer (demo and imported data)."""
    conversation = conversation_create(owner=owner, title=title)
    asked = Message.objects.create(
        conversation=conversation, owner=owner, role=Message.Role.USER, content=question
    )
    Message.objects.create(
        conversation=conversation,
        owner=owner,
        role=Message.Role.ASSISTANT,
        content=answer,
        reply_to=asked,
        model=conversation.model,
    )
    return conversation


@transaction.atomic
def conversation_update(
    *,
    conversation: Conversation,
    title: str | None = None,
    pinned: bool | None = None,
    archived: bool | None = None,
    model: str | None = None,
) -> Conversation:
    """Rename, pin, archive or change the model (validated for the owner's plan); only the
    given fields change."""
    changed = []
    if model is not None:
        conversation.model = model_validate(model, user=conversation.owner)
        changed.append("model")
    if title is not None:
        conversation.title = title_validate(title)
        changed.append("title")
    if pinned is not None:
        conversation.pinned = pinned
        changed.append("pinned")
    if archived is not None:
        conversation.archived = archived
        changed.append("archived")
    if changed:
        conversation.save(update_fields=[*changed, "updated_at"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    """Soft delete: the conversation disappears for its owner and can be restored for a while."""
    conversation.deleted_at = timezone.now()
    conversation.save(update_fields=["deleted_at", "updated_at"])


def content_validate(content: str) -> str:
    if not content.strip():
        raise InvalidInput("message content is empty")
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise InvalidInput(f"message is longer than {settings.CHAT_MAX_MESSAGE_CHARS} characters")
    return content


def key_validate(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput(f"idempotency_key must be 1 to {MAX_KEY_CHARS} printable characters")
    return key


def turn_replay(conversation: Conversation, key: str) -> Turn | None:
    user_message = (
        Message.objects.filter(conversation=conversation, idempotency_key=key)
        .select_related("reply")
        .first()
    )
    if user_message is None:
        return None
    return Turn(conversation, user_message, user_message.reply, created=False)


def turn_begin(
    *, user: Any, conversation_id: int, content: str, idempotency_key: str, savepoint: bool = True
) -> Turn:
    """Begin a turn: the user message and a pending assistant message, atomically.

    A double submit with the same idempotency key gets the same turn back; a second turn while
    one is running is refused with ``TurnInProgress``; someone else's (or a deleted)
    conversation is ``NotFound``. One SQL statement on the hot path (see ``turn_sql``).

    ``savepoint=False``, for a caller whose transaction begins with this call (``turn_start``):
    no savepoint around the statement (two round trips fewer); a replayed key or a running
    answer raises ``TurnConflict`` instead, for the caller to roll back and pass to
    ``turn_conflict``.
    """
    content, key = content_validate(content), key_validate(idempotency_key)
    # One statement is atomic on its own; inside a caller's transaction, a savepoint keeps
    # that transaction usable after a constraint error.
    guarded = savepoint and connection.in_atomic_block
    guard = transaction.atomic() if guarded else contextlib.nullcontext()
    try:
        with guard:
            rows = begin_rows_insert(
                owner_id=user.pk, conversation_id=conversation_id, content=content, key=key
            )
    except IntegrityError as exc:
        if not savepoint:
            raise TurnConflict(key=key, error=exc) from exc
        return turn_conflict(user=user, conversation_id=conversation_id, key=key, error=exc)
    if rows is None:
        raise NotFound("conversation not found")
    if not rows.conversation.title:
        title_schedule(conversation_id=conversation_id)
    # updated_at moves when the turn finishes (turn_finish): one write less on the hot path.
    return Turn(
        rows.conversation,
        rows.question,
        rows.answer,
        created=True,
        searchable=rows.searchable,
        first=rows.first,
    )


def turn_conflict(*, user: Any, conversation_id: int, key: str, error: IntegrityError) -> Turn:
    """The begin hit a constraint: the turn of a replayed key, else ``TurnInProgress``.

    Runs after the failed statement's transaction (or savepoint) was rolled back.
    """
    conversation = conversation_get_for_user(user=user, conversation_id=conversation_id)
    replay = turn_replay(conversation, key)
    if replay is not None:
        return replay
    if constraint_of(error) == ACTIVE_CONSTRAINT:
        raise TurnInProgress("an answer is still being written in this conversation") from None
    raise error


def turns_mark_streaming(*, message_ids: list[int]) -> int:
    """These turns' first tokens arrived (pending turns only: never undoes a finish)."""
    return Message.objects.filter(pk__in=message_ids, status=Message.Status.PENDING).update(
        status=Message.Status.STREAMING
    )


@dataclass(frozen=True)
class TurnOutcome:
    status: str
    content: str
    provider: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: int | None = None
    duration_ms: int | None = None
    error_code: str = ""
    error_detail: str = ""
    citations: list[dict[str, Any]] | None = None
    route: RouteDecision | None = None  # an ``auto`` turn's choice, recorded with the outcome
    cached: bool = False  # served from the answer cache


def turn_finish(*, message_id: int, outcome: TurnOutcome) -> bool:
    """Record how a turn ended, once: False when it had already been finished (or reaped).

    One statement (see ``turn_sql``): the message's outcome and its conversation's updated_at.
    """
    values: dict[str, Any] = {
        "status": outcome.status,
        "content": outcome.content,
        "provider": outcome.provider,
        "model": outcome.model,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "ttft_ms": outcome.ttft_ms,
        "duration_ms": outcome.duration_ms,
        "error_code": outcome.error_code,
        "error_detail": outcome.error_detail,
        "citations": json.dumps(outcome.citations or []),
        "route_reason": outcome.route.reason if outcome.route else "",
        "route_detail": json.dumps(outcome.route.detail) if outcome.route else None,
        "cached": outcome.cached,
    }
    with transaction.atomic():  # the outcome and the quota settle together, or not at all
        finished = finish_rows_update(message_id=message_id, values=values)
        if finished:
            turn_settle(message_id=message_id, outcome=outcome)
    return finished


REAP_GRACE_S = 30


def turns_reap(*, grace_s: int = REAP_GRACE_S) -> list[int]:
    """Turn turns whose task died (no heartbeat) into ``interrupted``, keeping the partial text.

    Returns the ids of the reaped assistant messages.
    """
    from conversations.delivery import done_payload
    from conversations.selectors import active_turns_older_than
    from conversations.streams import heartbeats_alive, stream_close_sync, stream_text_sync

    cutoff = timezone.now() - timedelta(seconds=grace_s)
    candidates = {message.pk: message.model for message in active_turns_older_than(cutoff=cutoff)}
    alive = heartbeats_alive(list(candidates))
    reaped = []
    for message_id, model in candidates.items():
        if message_id in alive:
            continue
        text, last_seq, _ = stream_text_sync(message_id)
        outcome = TurnOutcome(
            status=Message.Status.INTERRUPTED,
            content=text,
            completion_tokens=token_count(text, model=model),
            error_code="interrupted",
            error_detail="The answer was interrupted (the server stopped); its text is kept.",
        )
        if turn_finish(message_id=message_id, outcome=outcome):
            stream_close_sync(message_id, last_seq + 1, done_payload(outcome))
            reaped.append(message_id)
    return reaped


def summary_write(*, previous: str, messages: list[Message]) -> str:
    """A compact summary of older messages: by the model when one is configured, else extractive."""
    from conversations.summaries import summary_by_model, summary_extractive
    from llm.registry import chat_is_configured

    if chat_is_configured():
        return summary_by_model(previous=previous, messages=messages)
    return summary_extractive(previous=previous, messages=messages)


def conversation_summarize(*, conversation_id: int, through_id: int) -> bool:
    """Fold messages up to ``through_id`` into the conversation's rolling summary."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return False
    start = conversation.summary_through_id or 0
    if start >= through_id:
        return False
    messages = list(
        Message.objects.filter(conversation=conversation, id__gt=start, id__lte=through_id)
        .exclude(content="")
        .order_by("id")
    )
    summary = summary_write(previous=conversation.summary, messages=messages)
    # Compare-and-set: a concurrent summary of the same range must not be folded in twice.
    updated = Conversation.objects.filter(pk=conversation_id)
    if start:
        updated = updated.filter(summary_through_id=start)
    else:
        updated = updated.filter(summary_through_id__isnull=True)
    return bool(updated.update(summary=summary, summary_through_id=through_id))
