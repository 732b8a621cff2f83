"""Full-text search over a user's own conversation titles and messages (PostgreSQL only).

One SQL statement per page. The GIN indexes hold the search vectors' lexemes prefixed with the
owner's id (see ``conversations.models.OWNED_SEARCH_FUNCTION``) and the query's lexemes get the
same prefix, so one index scan finds "this user's rows with these words" and reads only this
user's postings, whatever other users wrote. The plain vector then checks the match exactly
(phrases need positions, which the prefixed form drops). Matches are ranked with ``ts_rank``; only
the rows of the page get a ``ts_headline`` snippet (the costly part). Ranking needs every
match, so a very common word is ranked among its first ``SEARCH_MAX_CANDIDATES`` matches only
(``approximate`` then says so).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from conversations.exceptions import InvalidInput
from conversations.models import OWNER_LEXEME, SEARCH_CONFIG
from conversations.selectors import Page, decode_cursor, encode_cursor, page_limit

MAX_QUERY_CHARS = 200
MARK_START, MARK_END = "\ue000", "\ue001"  # private-use characters, stripped from the text first
MARKED = re.compile(f"{MARK_START}([^{MARK_START}{MARK_END}]*){MARK_END}")
KIND_TITLE, KIND_MESSAGE = 1, 0


@dataclass(frozen=True)
class SearchFilters:
    pinned: bool | None = None
    archived: bool | None = None
    folder_id: int | None = None
    model: str | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    conversation_title: str
    message_id: int | None  # None: the title matched
    role: str
    snippet_html: str  # HTML-escaped text; only the <mark> tags are markup
    rank: float
    created_at: datetime


@dataclass(frozen=True)
class SearchPage(Page[SearchHit]):
    approximate: bool = False


# The query's words, and their owner-prefixed index form. Both are written out inline (not
# taken from a CTE) so PostgreSQL folds them to constants when planning: it then estimates
# from the index's statistics how many rows a word matches and scans the GIN index, instead
# of reading every message of the user and testing each one. A query without a positive word
# (only "-word") cannot use the index by itself: it then also requires the owner lexeme.
WORDS_SQL = "websearch_to_tsquery(%(config)s::regconfig, %(q)s)"
OWNED_SQL = (
    f"search_owned_query(CASE WHEN querytree({WORDS_SQL}) = 'T'"
    f" THEN {WORDS_SQL} && quote_literal(%(owner_lexeme)s)::tsquery ELSE {WORDS_SQL} END,"
    " %(owner_id)s)"
)

SEARCH_SQL = """
WITH owned AS (
    SELECT {words} AS words WHERE numnode({words}) > 0
), candidates AS (
    (SELECT m.id, m.conversation_id, ts_rank(m.search, owned.words) AS rank, 0 AS kind
     FROM conversations_message m
     JOIN conversations_conversation c ON c.id = m.conversation_id, owned
     WHERE numnode({words}) > 0  -- only stop words: no scan at all
       AND search_owned(m.search, m.owner_id) @@ {owned} AND m.search @@ {words}
       AND m.owner_id = %(owner_id)s AND m.status <> 'failed' AND m.role <> 'system'
       AND c.owner_id = %(owner_id)s AND c.deleted_at IS NULL {conversation_filters}
       {message_filters}
     LIMIT %(max_candidates)s)
    UNION ALL
    (SELECT c.id, c.id, ts_rank(c.title_search, owned.words) * 2, 1
     FROM conversations_conversation c, owned
     WHERE numnode({words}) > 0 AND search_owned(c.title_search, c.owner_id) @@ {owned}
       AND c.title_search @@ {words} AND c.owner_id = %(owner_id)s AND c.deleted_at IS NULL
       {conversation_filters}
       {title_filters}
     LIMIT %(max_candidates)s)
), page AS (
    SELECT id, conversation_id, rank, kind, (SELECT count(*) FROM candidates) AS matched
    FROM candidates
    WHERE {keyset}
    ORDER BY rank DESC, kind DESC, id DESC
    LIMIT %(limit)s
)
SELECT page.id, page.conversation_id, c.title, page.kind, m.role,
    ts_headline(%(config)s::regconfig,
        replace(replace(CASE page.kind WHEN 1 THEN c.title ELSE m.content END,
            %(mark_start)s, ''), %(mark_end)s, ''),
        owned.words, %(headline_options)s),
    page.rank::float8, coalesce(m.created_at, c.created_at), page.matched
FROM page
JOIN conversations_conversation c ON c.id = page.conversation_id
LEFT JOIN conversations_message m ON page.kind = 0 AND m.id = page.id, owned
ORDER BY page.rank DESC, page.kind DESC, page.id DESC
"""

HEADLINE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12"


def snippet_html(raw: str) -> str:
    """Escape everything, then turn only our own markers into <mark> tags."""
    escaped = MARKED.sub(r"<mark>\1</mark>", html.escape(raw))
    return escaped.replace(MARK_START, "").replace(MARK_END, "")


def filter_sql(filters: SearchFilters, params: dict[str, Any]) -> tuple[str, str, str]:
    """SQL conditions (conversation, message, title) for the filters; values go in ``params``."""
    conv: list[str] = []
    for name in ("pinned", "archived", "model"):
        value = getattr(filters, name)
        if value is not None:
            conv.append(f"c.{name} = %({name})s")
            params[name] = value
    if filters.folder_id is not None:
        conv.append("c.folder_id = %(folder_id)s")
        params["folder_id"] = filters.folder_id
    message, title = date_sql(filters, params)
    return "".join(f" AND {c}" for c in conv), message, title


def date_sql(filters: SearchFilters, params: dict[str, Any]) -> tuple[str, str]:
    message, title = "", ""
    if filters.date_from is not None:
        params["date_from"] = day_start(filters.date_from)
        message += " AND m.created_at >= %(date_from)s"
        title += " AND c.created_at >= %(date_from)s"
    if filters.date_to is not None:  # inclusive: the whole last day
        params["date_to"] = day_start(filters.date_to) + timedelta(days=1)
        message += " AND m.created_at < %(date_to)s"
        title += " AND c.created_at < %(date_to)s"
    return message, title


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def keyset_sql(cursor: str | None, params: dict[str, Any]) -> str:
    if not cursor:
        return "TRUE"
    rank_raw, kind_raw, id_raw = decode_cursor(cursor, 3)
    try:
        params["c_rank"], params["c_kind"], params["c_id"] = (
            float(rank_raw),
            int(kind_raw),
            int(id_raw),
        )
    except ValueError:
        raise InvalidInput("invalid cursor") from None
    # rank is float4; comparing as float8 is exact for a value that came from a float4.
    return "(rank::float8, kind, id) < (%(c_rank)s::float8, %(c_kind)s, %(c_id)s)"


def query_validate(query: str) -> str:
    query = query.strip()
    if not query:
        raise InvalidInput("q is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"q is longer than {MAX_QUERY_CHARS} characters")
    return query


def conversation_search(
    *,
    user: Any,
    query: str,
    filters: SearchFilters | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> SearchPage:
    """The user's titles and messages matching ``query`` (web-search syntax), best first.

    Keyset pagination on (rank, kind, id); one query. Deleted conversations, failed answers and
    system messages are never searched.
    """
    limit = page_limit(limit)
    sql, params = search_statement(
        user_id=int(user.pk), query=query, filters=filters, cursor=cursor, limit=limit
    )
    with connection.cursor() as db_cursor:
        db_cursor.execute(sql, params)
        rows = db_cursor.fetchall()
    return search_page(rows, limit)


def search_statement(
    *, user_id: int, query: str, filters: SearchFilters | None, cursor: str | None, limit: int
) -> tuple[str, dict[str, Any]]:
    """The SQL of one search page (``limit`` hits plus one to tell whether more follow)."""
    params: dict[str, Any] = {
        "config": SEARCH_CONFIG,
        "q": query_validate(query),
        "owner_lexeme": f"{OWNER_LEXEME}{user_id}",
        # Also on the conversation join: the planner then reads only this user's conversations.
        "owner_id": user_id,
        "max_candidates": settings.SEARCH_MAX_CANDIDATES,
        "limit": limit + 1,
        "mark_start": MARK_START,
        "mark_end": MARK_END,
        "headline_options": HEADLINE_OPTIONS,
    }
    conv_sql, message_sql, title_sql = filter_sql(filters or SearchFilters(), params)
    sql = SEARCH_SQL.format(
        conversation_filters=conv_sql,
        message_filters=message_sql,
        title_filters=title_sql,
        keyset=keyset_sql(cursor, params),
        words=WORDS_SQL,
        owned=OWNED_SQL,
    )
    return sql, params


def search_page(rows: list[tuple[Any, ...]], limit: int) -> SearchPage:
    hits = [
        SearchHit(
            conversation_id=conversation_id,
            conversation_title=title,
            message_id=None if kind == KIND_TITLE else row_id,
            role=role or "",
            snippet_html=snippet_html(headline or ""),
            rank=rank,
            created_at=created_at,
        )
        for row_id, conversation_id, title, kind, role, headline, rank, created_at, _ in rows
    ]
    more = len(hits) > limit
    hits = hits[:limit]
    next_cursor = None
    if more:
        last_kind = KIND_TITLE if hits[-1].message_id is None else KIND_MESSAGE
        last_id = hits[-1].message_id or hits[-1].conversation_id
        next_cursor = encode_cursor(repr(hits[-1].rank), last_kind, last_id)
    matched = rows[0][-1] if rows else 0
    # Either branch of the candidates may have stopped at its cap.
    return SearchPage(hits, next_cursor, approximate=matched >= settings.SEARCH_MAX_CANDIDATES)
