"""Search ranks the newest matches only: the same results as a full ranking under the cap, the
newest matches when capped (whichever of the three steps finds them), and never a deleted
conversation's, a filtered-out or another user's message."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from chatbot.users.tests.factories import UserFactory
from conversations.folders import conversation_move, folder_create
from conversations.models import Conversation, Message
from conversations.search import SearchFilters, SearchPage, conversation_search, range_windows

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def alice() -> Any:
    return UserFactory.create(username="alice")


@pytest.fixture
def bob() -> Any:
    return UserFactory.create(username="bob")


@pytest.fixture
def small(settings: Any) -> Any:
    """A cap of 5 candidates and a window of 10 messages: every step runs on a few rows."""
    settings.SEARCH_MAX_CANDIDATES = 5
    settings.SEARCH_RECENT_WINDOW = 10
    return settings


def conversation(owner: Any, title: str = "", **fields: Any) -> Conversation:
    return Conversation.objects.create(owner=owner, title=title, model="m1", **fields)


def message(conv: Conversation, text: str, at: datetime, **fields: Any) -> Message:
    row = Message.objects.create(conversation=conv, content=text, **({"role": "user"} | fields))
    Message.objects.filter(pk=row.pk).update(created_at=at)
    return row


def history(owner: Any, texts: list[str], *, step: timedelta, newest: datetime = NOW) -> list[int]:
    """One message per text, one conversation each; the last text is the newest."""
    ids = []
    for n, text in enumerate(texts):
        conv = conversation(owner, f"c{n}")
        ids.append(message(conv, text, newest - step * (len(texts) - 1 - n)).pk)
    return ids


def all_pages(user: Any, query: str, **filters: Any) -> tuple[list[tuple[int, int | None]], bool]:
    """Every hit of every page as (conversation, message), and whether any page was approximate."""
    hits: list[tuple[int, int | None]] = []
    approximate, cursor = False, None
    while True:
        page: SearchPage = conversation_search(
            user=user, query=query, filters=SearchFilters(**filters), cursor=cursor, limit=3
        )
        hits += [(hit.conversation_id, hit.message_id) for hit in page.items]
        approximate |= page.approximate
        cursor = page.next_cursor
        if cursor is None:
            return hits, approximate


def full_ranking(user: Any, query: str) -> list[tuple[int, int | None]]:
    """Every match of the user's live conversations ranked at once, as before the cap."""
    sql = """
        SELECT kind, id, conversation_id FROM (
            SELECT 0 AS kind, m.id, m.conversation_id,
                ts_rank(m.search, websearch_to_tsquery('english', %(q)s)) AS rank
            FROM conversations_message m JOIN conversations_conversation c
                ON c.id = m.conversation_id
            WHERE m.owner_id = %(u)s AND c.deleted_at IS NULL AND m.status <> 'failed'
                AND m.search @@ websearch_to_tsquery('english', %(q)s)
            UNION ALL
            SELECT 1, c.id, c.id,
                ts_rank(c.title_search, websearch_to_tsquery('english', %(q)s)) * 2
            FROM conversations_conversation c
            WHERE c.owner_id = %(u)s AND c.deleted_at IS NULL
                AND c.title_search @@ websearch_to_tsquery('english', %(q)s)
        ) x ORDER BY rank DESC, kind DESC, id DESC
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"q": query, "u": user.pk})
        return [(conv, None if kind == 1 else row_id) for kind, row_id, conv in cursor.fetchall()]


def message_ids(hits: list[tuple[int, int | None]]) -> set[int]:
    return {message_id for _, message_id in hits if message_id is not None}


def test_under_the_cap_results_are_those_of_a_full_ranking(alice: Any, small: Any) -> None:
    small.SEARCH_MAX_CANDIDATES = 50
    # 5 matches in the newest 10 messages, 20 older ones spread over a year, with varied ranks.
    texts = [f"{'otter ' * (n % 4 + 1)}and more" if n % 3 == 0 else "nothing" for n in range(60)]
    history(alice, texts, step=timedelta(days=6))
    conversation(alice, "otter title")
    hits, approximate = all_pages(alice, "otter")
    assert hits == full_ranking(alice, "otter")
    assert len(message_ids(hits)) == 20 and not approximate


def test_a_word_missing_from_the_window_is_found_in_older_messages(
    alice: Any, small: Any, django_assert_num_queries: Any
) -> None:
    ids = history(alice, ["heron old"] + ["plain text"] * 30, step=timedelta(hours=1))
    with django_assert_num_queries(2):  # the window (and there all older matches), the page
        conversation_search(user=alice, query="heron")
    hits, approximate = all_pages(alice, "heron")
    assert message_ids(hits) == {ids[0]} and not approximate


def test_a_common_word_ranks_the_newest_matches_when_capped(alice: Any, small: Any) -> None:
    # Stronger matches among the oldest rows: a full ranking would put those first.
    texts = ["lynx " * 5 + "x"] * 10 + ["lynx y"] * 20
    ids = history(alice, texts, step=timedelta(minutes=5))
    page = conversation_search(user=alice, query="lynx", limit=20)
    assert page.approximate
    assert {hit.message_id for hit in page.items} == set(ids[-5:])


def test_a_medium_word_gets_its_newest_matches_from_the_bounded_range(
    alice: Any, small: Any, django_assert_num_queries: Any
) -> None:
    # One match in four: 2-3 in the window, the rest of the cap from the range before it.
    texts = ["ibis z" if n % 4 == 0 else "filler" for n in range(80)]
    ids = history(alice, texts, step=timedelta(minutes=1))
    matches = [i for i, text in zip(ids, texts, strict=True) if text.startswith("ibis")]
    with django_assert_num_queries(3):  # window, range, page
        conversation_search(user=alice, query="ibis")
    hits, approximate = all_pages(alice, "ibis")
    assert approximate
    assert message_ids(hits) == set(matches[-5:])


def test_a_common_word_short_of_a_few_matches_walks_on_without_reading_all_its_postings(
    alice: Any, small: Any, django_assert_num_queries: Any
) -> None:
    # Half the window matches (5 of 10); the sixth match is an hour older than the window,
    # far beyond the estimate of a tenth of a window (many messages share one time).
    window = history(alice, ["gnu", "x"] * 5, step=timedelta(minutes=1))
    older = history(alice, ["gnu"] * 3, step=timedelta(0), newest=NOW - timedelta(hours=1))
    with django_assert_num_queries(3):  # window, the walk, the page: no step 3
        page = conversation_search(user=alice, query="gnu", limit=20)
    assert page.approximate
    found = {hit.message_id for hit in page.items}
    assert found >= set(window[0::2]) and len(found & set(older)) == 0  # the newest 5 only


def test_when_the_range_guess_is_short_the_older_matches_still_come_newest_first(
    alice: Any, small: Any, django_assert_num_queries: Any
) -> None:
    # A dense recent window (one match) and matches far older than the guessed range.
    recent = history(alice, ["crane"] + ["dense"] * 9, step=timedelta(minutes=1))
    old = history(alice, ["crane"] * 8, step=timedelta(days=10), newest=NOW - timedelta(days=100))
    with django_assert_num_queries(4):  # window, range (empty), older matches, page
        conversation_search(user=alice, query="crane")
    hits, approximate = all_pages(alice, "crane")
    assert approximate  # 9 matches, 5 ranked
    assert message_ids(hits) == {recent[0], *old[-4:]}


def test_titles_are_capped_newest_first_too(alice: Any, small: Any) -> None:
    convs = [conversation(alice, "gecko notes") for _ in range(8)]
    page = conversation_search(user=alice, query="gecko", limit=20)
    assert page.approximate
    assert {hit.conversation_id for hit in page.items} == {c.pk for c in convs[-5:]}


def test_deleted_conversations_never_appear_on_any_path(alice: Any, small: Any) -> None:
    small.SEARCH_MAX_CANDIDATES = 50
    gone = conversation(alice, "puffin gone", deleted_at=NOW, pinned=True)
    for n in range(12):  # the newest messages of all: they fill the window
        message(gone, "puffin", NOW - timedelta(seconds=n))
    kept = history(alice, ["puffin kept"] * 3 + ["x"] * 20, step=timedelta(days=1))
    Conversation.objects.filter(messages__id__in=kept).update(pinned=True)
    for filters in ({}, {"pinned": True}, {"archived": False}, {"model": "m1"}):
        hits, _ = all_pages(alice, "puffin", **filters)
        assert {conv for conv, _ in hits}.isdisjoint({gone.pk})
        assert message_ids(hits) == set(kept[:3])


def test_failed_and_system_messages_are_not_searched_in_the_window(alice: Any, small: Any) -> None:
    conv = conversation(alice)
    kept = message(conv, "walrus ok", NOW - timedelta(minutes=3))
    message(conv, "walrus failed", NOW - timedelta(minutes=2), status="failed", role="assistant")
    message(conv, "walrus system", NOW - timedelta(minutes=1), role="system")
    hits, _ = all_pages(alice, "walrus")
    assert message_ids(hits) == {kept.pk}


def test_filters_select_the_right_conversations_on_every_path(alice: Any, small: Any) -> None:
    small.SEARCH_MAX_CANDIDATES = 50
    folder = folder_create(user=alice, name="Work")
    expect: dict[str, set[int]] = {"pinned": set(), "archived": set(), "m2": set(), "folder": set()}
    for n in range(40):
        conv = conversation(alice, pinned=n % 5 == 0, archived=n % 7 == 0)
        if n % 3 == 0:
            Conversation.objects.filter(pk=conv.pk).update(model="m2")
        if n % 4 == 0:
            conversation_move(conversation=conv, folder=folder)
        row = message(conv, "mole" if n % 2 == 0 else "vole", NOW - timedelta(days=n))
        if n % 2 == 0:
            for name, test in [
                ("pinned", n % 5 == 0),
                ("archived", n % 7 == 0),
                ("m2", n % 3 == 0),
                ("folder", n % 4 == 0),
            ]:
                if test:
                    expect[name].add(row.pk)
    assert message_ids(all_pages(alice, "mole", pinned=True)[0]) == expect["pinned"]
    assert message_ids(all_pages(alice, "mole", archived=True)[0]) == expect["archived"]
    assert message_ids(all_pages(alice, "mole", model="m2")[0]) == expect["m2"]
    assert message_ids(all_pages(alice, "mole", folder_id=folder.pk)[0]) == expect["folder"]
    both = expect["m2"] - expect["archived"]
    assert message_ids(all_pages(alice, "mole", model="m2", archived=False)[0]) == both


def test_a_date_range_chooses_the_newest_matches_inside_it(alice: Any, small: Any) -> None:
    # 30 matches a day apart ending today; the range holds days 10..24 ago, newest 5 chosen.
    ids = history(alice, ["tern"] * 30, step=timedelta(days=1))
    today = timezone.localdate()
    hits, approximate = all_pages(
        alice,
        "tern",
        date_from=today - timedelta(days=24),
        date_to=today - timedelta(days=10),
        archived=False,
    )
    assert approximate
    newest_in_range = ids[-11 : -11 - 5 : -1]  # 10..14 days ago
    assert message_ids(hits) == set(newest_in_range)
    far, _ = all_pages(alice, "tern", date_to=date(2000, 1, 1))
    assert far == []


def test_another_users_messages_never_appear_or_fill_the_window(
    alice: Any, bob: Any, small: Any
) -> None:
    mine = history(alice, ["koala"] * 3, step=timedelta(days=30))
    history(bob, ["koala secret"] * 20, step=timedelta(seconds=1))  # newer than all of alice's
    for filters in ({}, {"pinned": False}, {"model": "m1"}):
        hits, approximate = all_pages(alice, "koala", **filters)
        assert message_ids(hits) == set(mine) and not approximate


def test_the_range_follows_the_match_rate() -> None:
    assert range_windows(matched=0, needed=5) is None
    assert range_windows(matched=5, needed=5) == 1.5
    assert range_windows(matched=1, needed=500) is None  # step 3 reads about as much


def test_the_api_says_approximate_when_capped_and_documents_it(alice: Any, small: Any) -> None:
    history(alice, ["yak"] * 8, step=timedelta(minutes=1))
    client = Client()
    client.force_login(alice)
    assert client.get("/api/v1/search?q=yak").json()["approximate"] is True
    assert client.get("/api/v1/search?q=yak&date_to=2000-01-01").json()["approximate"] is False
    schema = client.get("/api/v1/openapi.json").json()
    approximate = schema["components"]["schemas"]["SearchPageOut"]["properties"]["approximate"]
    assert "newest" in approximate["description"]
