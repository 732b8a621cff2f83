"""Full-text search: ranking, isolation between users, filters, keyset pagination, snippets."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from chatbot.users.tests.factories import UserFactory
from conversations.exceptions import InvalidInput
from conversations.folders import conversation_move, folder_create
from conversations.models import Conversation, Message
from conversations.search import (
    SearchFilters,
    SearchStatements,
    conversation_search,
    snippet_html,
)

pytestmark = pytest.mark.django_db


def chat(owner: Any, title: str, *texts: str, **fields: Any) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=title, model="m1", **fields)
    for n, text in enumerate(texts):
        role = Message.Role.USER if n % 2 == 0 else Message.Role.ASSISTANT
        Message.objects.create(conversation=conversation, role=role, content=text)
    return conversation


@pytest.fixture
def alice() -> Any:
    return UserFactory.create(username="alice")


@pytest.fixture
def bob() -> Any:
    return UserFactory.create(username="bob")


def test_a_message_that_says_the_word_more_often_ranks_first(alice: Any) -> None:
    chat(alice, "a", "The invoice is late.")
    chat(alice, "b", "Invoice, invoice, invoice: three invoices and an invoice number.")
    page = conversation_search(user=alice, query="invoice")
    assert [hit.conversation_title for hit in page.items] == ["b", "a"]
    assert page.items[0].rank > page.items[1].rank


def test_a_title_match_is_found_and_marked_as_such(alice: Any) -> None:
    conversation = chat(alice, "Quarterly budget planning", "hello there")
    (hit,) = conversation_search(user=alice, query="budget").items
    assert hit.conversation_id == conversation.pk
    assert hit.message_id is None
    assert "<mark>budget</mark>" in hit.snippet_html


def test_another_users_text_never_appears_in_results_or_snippets(alice: Any, bob: Any) -> None:
    chat(bob, "secret pineapple plan", "pineapple merger with codename zebra")
    chat(alice, "fruit", "I like pineapple on pizza")
    page = conversation_search(user=alice, query="pineapple")
    assert len(page.items) == 1
    text = " ".join(hit.snippet_html + hit.conversation_title for hit in page.items)
    assert "zebra" not in text and "secret" not in text and "merger" not in text
    assert conversation_search(user=alice, query="zebra").items == []


def test_deleted_conversations_and_failed_answers_are_not_searched(alice: Any) -> None:
    chat(alice, "gone", "walrus facts", deleted_at=timezone.now())
    kept = chat(alice, "kept", "about walrus")
    Message.objects.create(
        conversation=kept, role="assistant", content="walrus error", status="failed"
    )
    page = conversation_search(user=alice, query="walrus")
    assert [hit.conversation_title for hit in page.items] == ["kept"]


def test_snippets_escape_html_so_only_the_highlight_is_markup(alice: Any) -> None:
    text = (
        'Use <script>alert(1)</script> kiwi & x<3 "q" <img src=x onerror=alert(1)> \ue000kiwi\ue001'
    )
    chat(alice, "x", text)
    (hit,) = conversation_search(user=alice, query="kiwi").items
    assert "<script" not in hit.snippet_html and "<img" not in hit.snippet_html
    assert "&amp;" in hit.snippet_html and "&lt;3" in hit.snippet_html
    assert "<mark>kiwi</mark>" in hit.snippet_html
    stripped = hit.snippet_html.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in stripped


def test_stray_markers_in_a_headline_never_become_tags() -> None:
    assert snippet_html("a \ue000<i>b\ue001 \ue000c") == "a <mark>&lt;i&gt;b</mark> c"


def test_filters_narrow_by_pinned_archived_folder_model_and_date(alice: Any) -> None:
    pinned = chat(alice, "p", "lemon one", pinned=True)
    archived = chat(alice, "a", "lemon two", archived=True)
    other_model = chat(alice, "m", "lemon three")
    Conversation.objects.filter(pk=other_model.pk).update(model="m2")
    filed = chat(alice, "f", "lemon four")
    folder = folder_create(user=alice, name="Work")
    conversation_move(conversation=filed, folder=folder)
    old = chat(alice, "o", "lemon five")
    Message.objects.filter(conversation=old).update(created_at=timezone.now() - timedelta(days=400))

    def titles(**filters: Any) -> set[str]:
        page = conversation_search(user=alice, query="lemon", filters=SearchFilters(**filters))
        return {hit.conversation_title for hit in page.items}

    assert titles(pinned=True) == {pinned.title}
    assert titles(archived=True) == {archived.title}
    assert titles(model="m2") == {"m"}
    assert titles(folder_id=folder.pk) == {"f"}
    today = timezone.now().date()
    assert "o" not in titles(date_from=today - timedelta(days=30))
    assert titles(date_to=today - timedelta(days=300)) == {"o"}
    assert titles(date_from=date(2000, 1, 1)) == {"p", "a", "m", "f", "o"}


def test_keyset_pages_cover_every_hit_once_in_rank_order(alice: Any) -> None:
    for n in range(7):
        chat(alice, f"c{n}", "mango " * (n + 1) + "end")
    seen: list[float] = []
    ids: list[int | None] = []
    cursor = None
    while True:
        page = conversation_search(user=alice, query="mango", cursor=cursor, limit=3)
        seen += [hit.rank for hit in page.items]
        ids += [hit.message_id for hit in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(ids) == 7 and len(set(ids)) == 7
    assert seen == sorted(seen, reverse=True)


def test_a_query_of_only_stop_words_finds_nothing_and_an_empty_one_is_refused(
    alice: Any,
) -> None:
    chat(alice, "t", "the and of")
    assert conversation_search(user=alice, query="the of").items == []
    with pytest.raises(InvalidInput):
        conversation_search(user=alice, query="   ")


def test_a_forged_cursor_is_a_clear_error(alice: Any) -> None:
    with pytest.raises(InvalidInput):
        conversation_search(user=alice, query="x", cursor="bm90IGEgY3Vyc29y")


def test_search_is_two_queries_whatever_the_page_size(
    alice: Any, django_assert_num_queries: Any
) -> None:
    for n in range(30):
        chat(alice, f"t{n}", f"papaya number {n}", "papaya answer")
    # The newest messages (all of them here) with the titles, then the page's snippets.
    with django_assert_num_queries(2):
        page = conversation_search(user=alice, query="papaya", limit=50)
    assert len(page.items) == 50


def test_the_search_endpoint_returns_hits_and_needs_a_login(alice: Any, bob: Any) -> None:
    chat(alice, "t", "quince jam")
    chat(bob, "t", "quince secret")
    client = Client()
    assert client.get("/api/v1/search?q=quince").status_code == 401
    client.force_login(alice)
    body = client.get("/api/v1/search?q=quince&archived=false").json()
    assert [item["snippet_html"] for item in body["items"]] == ["<mark>quince</mark> jam"]
    assert body["next_cursor"] is None and body["approximate"] is False
    assert client.get("/api/v1/search?q=" + "x" * 201).status_code == 400


def test_the_search_endpoint_makes_a_bounded_number_of_queries(
    alice: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(25):
        chat(alice, f"t{n}", "guava")
    client = Client()
    client.force_login(alice)
    with django_assert_max_num_queries(6):  # session, user, the search (at most four)
        response = client.get("/api/v1/search?q=guava&limit=25")
    assert len(response.json()["items"]) == 25


def test_a_word_finds_its_other_forms_through_stemming(alice: Any) -> None:
    chat(alice, "a", "The supplier invoiced us twice.")
    chat(alice, "b", "Nothing to see here.")
    page = conversation_search(user=alice, query="invoices")
    assert [hit.conversation_title for hit in page.items] == ["a"]
    assert "<mark>invoiced</mark>" in page.items[0].snippet_html


def test_a_quoted_phrase_needs_its_words_adjacent_and_in_order(alice: Any) -> None:
    chat(alice, "in order", "the quick brown fox jumps")
    chat(alice, "reversed", "a fox that is brown and quick")
    page = conversation_search(user=alice, query='"brown fox"')
    assert [hit.conversation_title for hit in page.items] == ["in order"]


def test_a_query_of_only_excluded_words_searches_only_the_users_own_messages(
    alice: Any, bob: Any
) -> None:
    chat(bob, "", "cherries from bob")
    chat(alice, "", "apples and pears", "bananas please")
    page = conversation_search(user=alice, query="-apples")
    snippets = [hit.snippet_html for hit in page.items if hit.message_id is not None]
    assert snippets == ["bananas please"]


def test_another_users_identical_words_are_indexed_apart(alice: Any, bob: Any) -> None:
    chat(alice, "", "kumquat")
    chat(bob, "", "kumquat")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT owner_id, search_owned(search, owner_id)::text FROM conversations_message"
            " WHERE search_owned(search, owner_id) @@ search_owned_query(%s::tsquery, %s)",
            ["kumquat", alice.pk],
        )
        rows = cursor.fetchall()
    assert rows == [(alice.pk, f"'{alice.pk}:kumquat' '{alice.pk}:owner {alice.pk}'")]


def test_the_index_form_of_a_query_prefixes_lexemes_and_loosens_phrases() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT search_owned_query($$'jump':* & ('it''s' <-> 'dog') | 'cat':A & !'cow'$$, 7)"
        )
        (text,) = cursor.fetchone()
    # The negation is left to the exact check on the plain vector; the phrase becomes AND.
    assert text == "'7:jump':* & '7:it''s' & '7:dog' | '7:cat':A"


@pytest.mark.parametrize(
    ("table", "predicate", "index"),
    [
        ("conversations_message m", "search_owned(m.search, m.owner_id)", "message_search_owned"),
        (
            "conversations_conversation c",
            "search_owned(c.title_search, c.owner_id)",
            "title_search_owned",
        ),
    ],
)
def test_the_search_statements_predicates_are_answered_by_the_owner_prefixed_indexes(
    alice: Any, table: str, predicate: str, index: str
) -> None:
    predicate += " @@ search_owned_query("
    statements = SearchStatements(alice.pk, "x", SearchFilters())
    sql = statements.window() + statements.range((timezone.now(), 0), None, 10, walk=False)[0]
    assert predicate in sql
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(  # the table and predicate are this test's own constants
            f"EXPLAIN SELECT 1 FROM {table}"  # noqa: S608
            f" WHERE {predicate}websearch_to_tsquery('english', 'invoice'), %s)",
            [alice.pk],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan
