"""Retrieval and access: a user only ever reads the collections they are allowed."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from chatbot.users.tests.factories import UserFactory
from knowledge import search_sql, selectors, services, text_stats
from knowledge.exceptions import NotFound
from knowledge.models import Collection, Document, LexemeStat
from knowledge.tests.conftest import ingest

pytestmark = pytest.mark.django_db

CANARY = "zebracanary7781"
SECRET = (
    f"The launch code name is {CANARY}. Project Heron ships in March; only the board knows "
    "the budget of the Heron programme."
).encode()
PUBLIC = b"The cafeteria opens at eight. Lunch is served from noon until two in the afternoon."


def canary_found(user, query: str = f"What is {CANARY}?") -> bool:
    hits = selectors.chunk_search(user=user, query=query, k=20)
    return any(CANARY in hit.text for hit in hits)


def test_a_private_canary_is_found_by_its_owner_and_by_nobody_else(
    owner, stranger, colleague, group_member
):
    private = services.collection_create(owner=owner, name="Board")
    ingest(private, SECRET)
    ingest(services.collection_create(owner=stranger, name="Mine"), PUBLIC)
    assert canary_found(owner)
    for user in [stranger, colleague, group_member, UserFactory.create(is_staff=True)]:
        for query in [CANARY, f"What is {CANARY}?", "Project Heron budget launch code name"]:
            assert not canary_found(user, query), (user.username, query)


def test_a_restricted_collection_is_read_by_its_groups_and_departments_only(
    owner, stranger, colleague, group_member
):
    restricted = services.collection_create(
        owner=owner,
        name="Research",
        visibility=Collection.Visibility.RESTRICTED,
        group_names=["readers"],
        departments=["research"],
    )
    ingest(restricted, SECRET)
    assert canary_found(colleague)  # same department
    assert canary_found(group_member)  # in the group
    assert not canary_found(stranger)


def test_a_collection_for_everyone_is_read_by_everyone(owner, stranger):
    shared = services.collection_create(
        owner=owner, name="Handbook", visibility=Collection.Visibility.EVERYONE
    )
    ingest(shared, SECRET)
    assert canary_found(stranger)


def test_search_finds_by_meaning_and_by_words_and_says_where(owner):
    collection = services.collection_create(owner=owner, name="Mixed")
    ingest(collection, SECRET, "board.md")
    ingest(collection, PUBLIC, "cafeteria.md")
    best = selectors.chunk_search(user=owner, query="When can I eat lunch?", k=2)[0]
    assert "cafeteria" in best.text
    # The title read from the file (its name without the extension: it has no heading).
    assert (best.document_title, best.collection_name) == ("cafeteria", "Mixed")
    assert best.vector_rank == 1
    by_word = selectors.chunk_search(user=owner, query=CANARY, k=1, mode="text")
    assert CANARY in by_word[0].text and by_word[0].text_rank == 1


def test_only_ready_documents_are_searched(owner):
    collection = services.collection_create(owner=owner, name="Drafts")
    document = ingest(collection, SECRET)
    Document.objects.filter(pk=document.pk).update(status=Document.Status.PROCESSING)
    assert not canary_found(owner)


def test_search_can_be_limited_to_some_collections(owner):
    first = services.collection_create(owner=owner, name="First")
    second = services.collection_create(owner=owner, name="Second")
    ingest(first, SECRET)
    hits = selectors.chunk_search(user=owner, query=CANARY, collection_ids=[second.pk])
    assert hits == []


def test_the_vector_branch_walks_the_hnsw_index(owner):
    collection = services.collection_create(owner=owner, name="Plans")
    ingest(collection, SECRET)
    params = selectors.search_params(
        user=owner, query="launch", k=8, collection_ids=None, mode="hybrid"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # A tiny table is cheaper to sort than to walk by index: price sorting out so the test
        # shows the plan the query gets on a large table (bench/retrieval_latency.py).
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + search_sql.SEARCH_SQL, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using chunk_embedding_hnsw" in plan
    # The statement's own settings gate the index scan (applied before its first row).
    branch = plan.index("Subquery Scan on vector_hits")
    scan = plan.index("Index Scan using chunk_embedding_hnsw")
    assert "One-Time Filter: (InitPlan" in plan[branch:scan]


@pytest.mark.django_db(transaction=True)  # autocommit, as in production
def test_the_search_sets_its_hnsw_settings_for_itself_only(owner, collection, settings):
    settings.KNOWLEDGE_HNSW_EF_SEARCH = 123
    ingest(collection, SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        before = cursor.fetchone()
    params = selectors.search_params(
        user=owner, query="launch", k=8, collection_ids=None, mode="vector"
    )
    sql = search_sql.SEARCH_SQL.replace(
        "SELECT ch.id, ch.document_id", "SELECT current_setting('hnsw.ef_search'), ch.document_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.fetchone()[0] == "123"
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone() == before


def test_someone_elses_private_collection_is_not_found(owner, stranger, collection):
    with pytest.raises(NotFound):
        selectors.collection_get_for_user(user=stranger, collection_id=collection.pk)
    assert selectors.collection_get_for_user(user=owner, collection_id=collection.pk) == collection


def test_listing_collections_takes_one_query(owner, django_assert_num_queries):
    for n in range(5):
        services.collection_create(owner=owner, name=f"c{n}")
    with django_assert_num_queries(1):  # the groups check is a subquery
        assert len(selectors.collection_list_for_user(user=owner)) == 5


def test_searchable_exists_only_when_the_user_may_read_a_ready_document(
    owner, stranger, colleague, group_member
):
    assert not selectors.searchable_exists(user=owner)  # nothing ingested yet
    restricted = services.collection_create(
        owner=owner,
        name="Research",
        visibility=Collection.Visibility.RESTRICTED,
        group_names=["readers"],
        departments=["research"],
    )
    ingest(restricted, SECRET)
    assert selectors.searchable_exists(user=owner)
    assert selectors.searchable_exists(user=colleague)
    assert selectors.searchable_exists(user=group_member)
    assert not selectors.searchable_exists(user=stranger)
    Document.objects.filter(collection=restricted).update(status=Document.Status.FAILED)
    assert not selectors.searchable_exists(user=owner)


RARE_AND_COMMON = b"The heron report covers the budget of the wetland survey."
COMMON_ONLY = [
    f"Note {n}: the budget for item {n} was approved by finance.".encode() for n in range(4)
]


def test_lexeme_stats_count_the_chunks_holding_each_word(owner, collection):
    ingest(collection, RARE_AND_COMMON, "heron.txt")
    for n, text in enumerate(COMMON_ONLY):
        ingest(collection, text, f"note{n}.txt")
    text_stats.lexeme_stats_refresh()
    counts = dict(LexemeStat.objects.values_list("lexeme", "chunks"))
    assert counts["budget"] == 5 and counts["heron"] == 1


def test_full_text_matches_by_the_rarest_terms_within_the_budget(owner, collection, settings):
    ingest(collection, RARE_AND_COMMON, "heron.txt")
    for n, text in enumerate(COMMON_ONLY):
        ingest(collection, text, f"note{n}.txt")
    text_stats.lexeme_stats_refresh()
    settings.KNOWLEDGE_TEXT_MATCH_BUDGET = 2  # "heron" (1 chunk) fits, "budget" (5) does not
    hits = selectors.chunk_search(user=owner, query="heron budget", k=10, mode="text")
    assert [hit.document_title for hit in hits] == ["heron"]
    settings.KNOWLEDGE_TEXT_MATCH_BUDGET = 100  # every term fits: any-term matching
    hits = selectors.chunk_search(user=owner, query="heron budget", k=10, mode="text")
    assert hits[0].document_title == "heron"  # both terms rank above one
    assert len(hits) == 5


def test_a_question_of_common_words_only_still_matches_up_to_twice_the_budget(
    owner, collection, settings
):
    for n, text in enumerate(COMMON_ONLY):
        ingest(collection, text, f"note{n}.txt")
    text_stats.lexeme_stats_refresh()
    settings.KNOWLEDGE_TEXT_MATCH_BUDGET = 1
    hits = selectors.chunk_search(user=owner, query="approved budget", k=10, mode="text")
    assert len(hits) == 2  # its rarest term (4 chunks) is kept, but at most 2 rows are ranked


def test_the_canary_stays_private_when_word_counts_are_known(owner, stranger, settings):
    ingest(services.collection_create(owner=owner, name="Board"), SECRET)
    ingest(services.collection_create(owner=stranger, name="Mine"), PUBLIC)
    text_stats.lexeme_stats_refresh()
    settings.KNOWLEDGE_TEXT_MATCH_BUDGET = 1
    assert canary_found(owner, CANARY)
    assert not canary_found(stranger, CANARY)
    assert not canary_found(stranger, "Project Heron budget launch code name")
