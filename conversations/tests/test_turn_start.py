"""turn_start's transaction as production runs it (no test transaction around it).

No savepoint around the begin statement: a replayed key or a running answer rolls the whole
transaction back and is answered afterwards. The retrieval check is a column of the begin
statement, not a statement of its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import UsageRecord
from conversations import answer_cache, answer_cache_sql
from conversations.answer_cache import cache_consult, scope_of, sha256_hex
from conversations.context import system_prompt
from conversations.exceptions import NotFound, TurnInProgress
from conversations.generation import TurnPlan, turn_start
from conversations.models import CachedAnswer, Message
from conversations.services import Turn, TurnOutcome, conversation_create, turn_finish
from knowledge import services as knowledge
from knowledge.models import Collection
from knowledge.selectors import query_embedding, readable_collection_ids, searchable_exists
from knowledge.tests.conftest import ingest, upload

pytestmark = pytest.mark.django_db(transaction=True)

POLICY = b"# Cafeteria\n\nThe cafeteria opens at eight in the morning.\n"


@pytest.fixture(autouse=True)
def offline(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OPENAI_BASE_URL = settings.OPENAI_API_KEY = ""
    settings.CHAT_MODELS = []
    settings.LOCAL_LLM = False


def start(
    user: Any, conversation_id: int, key: str = "k", content: str = "When?"
) -> tuple[Turn, TurnPlan | None]:
    return turn_start(
        user=user, conversation_id=conversation_id, content=content, idempotency_key=key
    )


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [" ".join(query["sql"].split()) for query in captured.captured_queries]


def test_a_new_turn_begins_without_a_savepoint_or_a_separate_retrieval_check(alice):
    conversation = conversation_create(owner=alice, title="t")
    with CaptureQueriesContext(connection) as captured:
        turn, plan = start(alice, conversation.pk)
    sql = statements(captured)
    assert turn.created and plan is not None
    assert not [s for s in sql if "SAVEPOINT" in s.upper()], sql
    assert not [s for s in sql if s.startswith("WITH readable")], sql  # searchable_exists
    # (Before the transaction, the plan's lookup: the rate limit's plan cache is cold here.)
    transaction = sql[sql.index("BEGIN") :]
    assert transaction[1].startswith("WITH conv AS") and transaction[-1] == "COMMIT"
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_a_double_submit_gives_the_same_turn_and_reserves_once(alice):
    conversation = conversation_create(owner=alice, title="t")
    first, plan = start(alice, conversation.pk)
    again, replay_plan = start(alice, conversation.pk)
    assert plan is not None and replay_plan is None and not again.created
    assert again.user_message.pk == first.user_message.pk
    assert again.assistant_message.pk == first.assistant_message.pk
    assert Message.objects.filter(conversation=conversation).count() == 2
    assert UsageRecord.objects.filter(message_id=first.assistant_message.pk).count() == 1
    assert UsageRecord.objects.filter(user=alice).count() == 1


def test_a_second_running_turn_is_refused_and_leaves_nothing_behind(alice):
    conversation = conversation_create(owner=alice, title="t")
    first, _ = start(alice, conversation.pk, key="a")
    with pytest.raises(TurnInProgress):
        start(alice, conversation.pk, key="b")
    assert Message.objects.filter(conversation=conversation).count() == 2
    assert UsageRecord.objects.filter(user=alice).count() == 1
    # The rolled-back transaction left the connection usable: once the first turn ends, the
    # next one starts.
    turn_finish(
        message_id=first.assistant_message.pk, outcome=TurnOutcome(status="complete", content="x")
    )
    third, plan = start(alice, conversation.pk, key="b")
    assert third.created and plan is not None
    assert Message.objects.filter(conversation=conversation).count() == 4


def test_someone_elses_conversation_is_not_found_even_with_its_key(alice, mallory):
    conversation = conversation_create(owner=alice, title="t")
    start(alice, conversation.pk, key="k")
    for key in ["k", "other"]:  # alice's key (a replay for her) and a new one
        with pytest.raises(NotFound):
            start(mallory, conversation.pk, key=key)
    assert Message.objects.filter(conversation=conversation).count() == 2
    assert not UsageRecord.objects.filter(user=mallory).exists()


def test_the_begin_statement_tells_whether_the_user_reads_a_ready_document(alice, mallory):
    def searchable(user: Any) -> bool | None:
        conversation = conversation_create(owner=user, title="t")
        turn, _ = start(user, conversation.pk, key="s")
        assert turn.searchable == searchable_exists(user=user)  # the same permission logic
        return turn.searchable

    assert (searchable(alice), searchable(mallory)) == (False, False)
    queued = knowledge.collection_create(owner=alice, name="Queued")
    upload(queued, POLICY, "queued.md")  # not ingested: not ready
    assert searchable(alice) is False
    private = knowledge.collection_create(owner=alice, name="Office")
    ingest(private, POLICY, "cafeteria.md")
    assert (searchable(alice), searchable(mallory)) == (True, False)
    shared = knowledge.collection_create(
        owner=alice, name="All", visibility=Collection.Visibility.EVERYONE
    )
    ingest(shared, POLICY, "shared.md")
    assert searchable(mallory) is True


def test_a_turn_that_knows_its_user_reads_documents_is_grounded(alice):
    ingest(knowledge.collection_create(owner=alice, name="Office"), POLICY, "cafeteria.md")
    conversation = conversation_create(owner=alice, title="t")
    with CaptureQueriesContext(connection) as captured:
        turn, plan = start(alice, conversation.pk, content="When does the cafeteria open?")
    assert turn.searchable is True and plan is not None
    assert plan.citations and plan.citations[0]["title"] == "Cafeteria"
    assert not [s for s in statements(captured) if s.startswith("WITH readable")]


def test_the_begin_statement_says_whether_the_question_opens_the_conversation(alice, settings):
    """The answer cache's standalone check is the begin statement's column, not a query."""
    settings.ANSWER_CACHE_ENABLED = True
    conversation = conversation_create(owner=alice, title="t")
    with CaptureQueriesContext(connection) as captured:
        opening, plan = start(alice, conversation.pk, key="a")
    assert opening.first is True and plan is not None and plan.cache is not None
    earlier = f'"conversations_message"."conversation_id" = {conversation.pk}'
    assert not [s for s in statements(captured) if earlier in s and "LIMIT 1" in s]
    Message.objects.filter(pk=opening.assistant_message.pk).update(
        status=Message.Status.COMPLETE, content="At eight."
    )
    follow_up, plan = start(alice, conversation.pk, key="b", content="And on Sundays?")
    assert follow_up.first is False and plan is not None and plan.cache is None


# --- The answer cache's lookup inside the begin ---------------------------------------------


def cache_entry_in_scope_of(user: Any, conversation: Any) -> CachedAnswer:
    """An entry the user's first question will be compared with (another question)."""
    scope = scope_of(
        collection_ids=readable_collection_ids(user=user),
        model=conversation.model,
        system_prompt=system_prompt(conversation),
    )
    return CachedAnswer.objects.create(
        question="Where is the library?",
        question_hash=sha256_hex("where is the library"),
        scope=scope,
        embedding=query_embedding("Where is the library?"),
        answer="On the second floor.",
        model=conversation.model,
        expires_at=timezone.now() + timedelta(hours=1),
    )


@pytest.mark.parametrize("exact", [True, False])
def test_the_cache_lookup_is_one_statement_of_the_begin_without_a_savepoint(
    alice, settings, monkeypatch, exact
):
    settings.ANSWER_CACHE_ENABLED = True
    monkeypatch.setattr(answer_cache, "_scopes_used", {})
    if not exact:  # a scope of more entries than are compared exactly: through the HNSW index
        monkeypatch.setattr(answer_cache, "EXACT_SCOPE_ENTRIES", 1)
    conversation = conversation_create(owner=alice, title="t")
    cache_entry_in_scope_of(alice, conversation)
    with CaptureQueriesContext(connection) as captured:
        turn, plan = start(alice, conversation.pk, content="When does the cafeteria open?")
    sql = statements(captured)
    assert turn.created and plan is not None and plan.cached is None  # another question: a miss
    transaction = sql[sql.index("BEGIN") :]
    lookups = [s for s in transaction if "cachedanswer" in s and "<=>" in s]
    assert len(lookups) == 1, transaction
    assert ("scoped AS MATERIALIZED" in lookups[0]) is exact
    assert ("search_settings" in lookups[0]) is not exact
    assert not [s for s in sql if "SAVEPOINT" in s.upper()], sql
    assert plan.cache is not None and plan.cache.embedding is not None  # retrieval reuses it


def test_both_lookups_find_the_nearest_servable_entry(alice, settings, monkeypatch):
    settings.ANSWER_CACHE_ENABLED = True
    conversation = conversation_create(owner=alice, title="t")
    entry = cache_entry_in_scope_of(alice, conversation)
    probe = answer_cache.CacheProbe(
        "Where can I find the library?", "h", entry.scope, "use", reads_nothing=True
    )
    for bound in (1_000_000, 1):  # exact, then through the HNSW index
        monkeypatch.setattr(answer_cache, "_scopes_used", {})
        monkeypatch.setattr(answer_cache, "EXACT_SCOPE_ENTRIES", bound)
        hit = answer_cache.semantic_lookup(probe, threshold=0.8)
        assert hit is not None and hit.entry_id == entry.pk and hit.similarity > 0.8


def test_a_failing_lookup_statement_fails_the_begin_whole(alice, settings, monkeypatch):
    settings.ANSWER_CACHE_ENABLED = True
    conversation = conversation_create(owner=alice, title="t")
    cache_entry_in_scope_of(alice, conversation)
    monkeypatch.setattr(answer_cache_sql, "LOOKUP_SQL", "SELECT 1 / 0")
    monkeypatch.setattr(answer_cache_sql, "EXACT_LOOKUP_SQL", "SELECT 1 / 0")
    with pytest.raises(DatabaseError):
        start(alice, conversation.pk, key="a")
    assert not Message.objects.filter(conversation=conversation).exists()
    assert not UsageRecord.objects.filter(user=alice).exists()
    # Outside a transaction the same failure is a miss: nothing else is lost.
    question = Message(conversation=conversation, role="user", content="When?")
    question.save()
    assert cache_consult(user=alice, conversation=conversation, question=question, mode="use") == (
        None,
        None,
    )
    monkeypatch.undo()
    question.delete()
    turn, plan = start(alice, conversation.pk, key="a")  # the connection is usable again
    assert turn.created and plan is not None


def test_a_scope_seen_holding_entries_skips_its_exists_for_a_while(alice, monkeypatch):
    conversation = conversation_create(owner=alice, title="t")
    entry = cache_entry_in_scope_of(alice, conversation)
    monkeypatch.setattr(answer_cache, "_scopes_used", {})

    def asked(scope: str) -> tuple[bool, int]:
        with CaptureQueriesContext(connection) as captured:
            used = answer_cache.scope_used(scope)
        return used, len(captured.captured_queries)

    assert asked(entry.scope) == (True, 1)
    assert answer_cache.scope_size(entry.scope) == 1  # how many, too (exact or HNSW lookup)
    assert asked(entry.scope) == (True, 0)  # remembered
    assert asked("an-empty-scope") == (False, 1)
    assert asked("an-empty-scope") == (False, 1)  # an empty scope is asked every time
    monkeypatch.setattr(answer_cache, "SCOPE_USED_TTL_S", 0.0)
    assert asked(entry.scope) == (True, 1)  # forgotten after the TTL
