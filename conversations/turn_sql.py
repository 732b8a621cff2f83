"""The hot path of ``turn_begin`` as one SQL statement: one round trip instead of six.

Under load every round trip waits for a CPU slice of the database and of the web process, and
the begin step sits in front of every first token. The statement locks the conversation row
(ownership and soft delete in the same ``WHERE``), inserts the question and the pending answer,
and returns what the turn needs. The invariants stay in the database, where races cannot break
them: a unique idempotency key per conversation, and at most one running answer per
conversation (a partial unique index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection

from conversations.models import Conversation, Message
from knowledge.search_sql import READABLE_SQL, SEARCHABLE_EXISTS

KEY_CONSTRAINT = "message_idempotency_key_per_conversation"
ACTIVE_CONSTRAINT = "message_one_running_answer"

# The last two columns, so the turn needs no extra round trip for them: whether this is the
# conversation's first question (the answer cache's standalone check: the statement's snapshot
# does not see the rows it inserts, so any message seen is an earlier one), and whether the user
# may read any ready document (the retrieval check, same permission SQL as
# ``knowledge.selectors.searchable_exists``).
BEGIN_SQL = f"""
WITH conv AS (
    SELECT id, model, summary, summary_through_id, title FROM conversations_conversation
    WHERE id = %(conversation_id)s AND owner_id = %(owner_id)s AND deleted_at IS NULL
    FOR UPDATE
), question AS (
    INSERT INTO conversations_message (conversation_id, owner_id, role, content, status,
        idempotency_key, model, provider, prompt_tokens, completion_tokens, citations, error_code,
        error_detail, created_at)
    SELECT id, %(owner_id)s, 'user', %(content)s, 'complete', %(key)s, '', '', 0, 0, '[]'::jsonb,
        '', '', now()
    FROM conv
    RETURNING id, created_at
), answer AS (
    INSERT INTO conversations_message (conversation_id, owner_id, role, content, status,
        idempotency_key, model, provider, prompt_tokens, completion_tokens, citations, error_code,
        error_detail, created_at, reply_to_id)
    SELECT conv.id, %(owner_id)s, 'assistant', '', 'pending', '', conv.model, '', 0, 0,
        '[]'::jsonb, '', '', now(), question.id
    FROM conv, question
    RETURNING id
), {READABLE_SQL}
SELECT conv.model, conv.summary, conv.summary_through_id, conv.title, question.id,
    question.created_at, answer.id,
    NOT EXISTS (SELECT 1 FROM conversations_message m WHERE m.conversation_id = conv.id),
    {SEARCHABLE_EXISTS}
FROM conv, question, answer
"""  # noqa: S608


@dataclass(frozen=True)
class BegunRows:
    conversation: Conversation
    question: Message
    answer: Message
    searchable: bool  # the user may read a ready document (retrieval has something to search)
    first: bool  # the conversation's first question


def begin_rows_insert(
    *, owner_id: int, conversation_id: int, content: str, key: str
) -> BegunRows | None:
    """Insert a turn's two messages; None when the conversation is not the owner's (or gone).

    Raises ``IntegrityError`` (constraint ``KEY_CONSTRAINT`` or ``ACTIVE_CONSTRAINT``) for a
    replayed key or a running answer; the caller decides what that means.
    """
    params: dict[str, int | str | None] = {
        "conversation_id": conversation_id,
        "owner_id": owner_id,
        "content": content,
        "key": key,
        "user_id": owner_id,  # READABLE_SQL's parameters
        "collection_ids": None,
    }
    with connection.cursor() as cursor:
        cursor.execute(BEGIN_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    model, summary, summary_through_id, title, question_id, created_at, answer_id = row[:7]
    first, searchable = row[7:]
    conversation = Conversation.from_db(
        "default",
        # Values in the model's field order (from_db fills the deferred ones in by position).
        ["id", "owner_id", "title", "model", "summary", "summary_through_id"],
        [conversation_id, owner_id, title, model, summary, summary_through_id],
    )
    question = loaded_message(question_id, conversation, created_at, role="user", content=content)
    question.idempotency_key = key
    answer = loaded_message(answer_id, conversation, created_at, role="assistant", content="")
    answer.status, answer.model, answer.reply_to_id = Message.Status.PENDING, model, question_id
    return BegunRows(conversation, question, answer, bool(searchable), bool(first))


def loaded_message(
    message_id: int, conversation: Conversation, created_at: datetime, *, role: str, content: str
) -> Message:
    """A Message instance for a row just inserted, marked as loaded from the database."""
    message = Message(
        id=message_id,
        conversation=conversation,
        owner_id=conversation.owner_id,
        role=role,
        content=content,
        status=Message.Status.COMPLETE,
        created_at=created_at,
    )
    message._state.adding = False
    message._state.db = "default"
    return message


def constraint_of(exc: Exception) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return str(getattr(diag, "constraint_name", "") or "")


# The same rows as the ORM query ``Message.objects.filter(conversation=..., id__lt=...)
# .exclude(status=failed).exclude(role=assistant, content="")``, newest first, through the
# (conversation, -id) index. Written out because the turn's begin runs it every time: the ORM's
# query compilation cost several times the query itself (bench/README.md, 2 Dec).
HISTORY_SQL = """
SELECT id, role, content FROM conversations_message
WHERE conversation_id = %(conversation_id)s AND id < %(before_id)s AND status <> 'failed'
    AND NOT (role = 'assistant' AND content = '')
ORDER BY id DESC
LIMIT %(limit)s
"""


class HistoryMessage(NamedTuple):
    pk: int
    role: str
    content: str


def history_rows(*, conversation_id: int, before_id: int, limit: int) -> list[HistoryMessage]:
    params = {"conversation_id": conversation_id, "before_id": before_id, "limit": limit}
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_SQL, params)
        return [HistoryMessage(*row) for row in cursor.fetchall()]


FINISH_SQL = """
WITH finished AS (
    UPDATE conversations_message SET status = %(status)s, content = %(content)s,
        provider = %(provider)s, model = COALESCE(NULLIF(%(model)s, ''), model),
        prompt_tokens = %(prompt_tokens)s, completion_tokens = %(completion_tokens)s,
        ttft_ms = %(ttft_ms)s, duration_ms = %(duration_ms)s, error_code = %(error_code)s,
        error_detail = %(error_detail)s, citations = %(citations)s::jsonb, cached = %(cached)s,
        finished_at = now(), route_reason = %(route_reason)s,
        route_detail = %(route_detail)s::jsonb
    WHERE id = %(message_id)s AND status IN ('pending', 'streaming')
    RETURNING conversation_id
)
UPDATE conversations_conversation SET updated_at = now()
WHERE id IN (SELECT conversation_id FROM finished)
RETURNING id
"""


def finish_rows_update(*, message_id: int, values: dict[str, Any]) -> bool:
    """Write a turn's outcome and touch its conversation, once; False if already finished."""
    params: dict[str, Any] = {**values, "message_id": message_id}
    with connection.cursor() as cursor:
        cursor.execute(FINISH_SQL, params)
        return cursor.fetchone() is not None
