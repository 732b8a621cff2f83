"""Full-text search over a user's own conversation titles and messages (PostgreSQL only).

The GIN indexes hold the search vectors' lexemes prefixed with the owner's id (see
``conversations.models.OWNED_SEARCH_FUNCTION``) and the query's lexemes get the same prefix, so
an index scan finds "this user's rows with these words" and reads only this user's postings.
The plain vector then checks the match exactly (phrases need positions, which the prefixed form
drops).

Ranking needs every candidate, and a common word matches a large part of a long history, so
search ranks the user's most recent matches only: at most ``SEARCH_MAX_CANDIDATES`` messages
(and as many titles), newest first by ``created_at``; ``approximate`` says when more matched.
Under the cap the result is the full ranking. The newest message matches are found in up to
three steps, one statement each (``message_candidates``):

1. the newest ``SEARCH_RECENT_WINDOW`` messages of the user (in the date range, if any), read
   through the ``(owner, created_at, id)`` index and checked one by one: a common word has all
   its candidates there;
2. otherwise the share of the window that matched tells how far back the rest should be: that
   time range is read message by message if short, else the word's postings are intersected
   with it (through the same btree index);
3. if that was still not enough, the older matches (to the cap). When the window had too few
   matches to guess a range from, step 3 runs at once, inside the statement of step 1.

Deleted conversations are excluded through a hashed set of the user's deleted conversations
(partial index ``conversation_owner_trash``); with filters on conversations, a hashed set of the
user's conversations that fail them. A narrow filter (``pinned=true``, a folder) reads the
messages of the matching conversations instead (one statement). Matches are ranked with
``ts_rank`` where they are found; only the page's rows get a ``ts_headline`` snippet (the costly
part), in a last statement.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
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
KIND_WINDOW_END, KIND_WINDOW_NEWEST = 2, 3  # the window statement's bookkeeping rows
KIND_OLDER = 4  # a message found by step 3 inside the window statement
# Step 2 reads this many times the span that the window's match rate says it needs (the rate
# is a sample): a third step is rarer, against a few more rows to rank.
RANGE_MARGIN = 1.5
# Beyond this many windows' worth of messages, step 2 would read about as much as step 3.
RANGE_MAX_WINDOWS = 40
# Up to this many windows, step 2 reads the range message by message rather than the word's
# postings (a common word has about 100,000 in a long history: 50 ms to read).
RANGE_WALK_WINDOWS = 4
RANGE_WALK_SPAN = 8  # windows: the most a walk reads (when the word is rarer further back)
CONVERSATION_FILTERS = ("pinned", "archived", "model", "folder_id")


@dataclass(frozen=True)
class SearchFilters:
    pinned: bool | None = None
    archived: bool | None = None
    folder_id: int | None = None
    model: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    @property
    def narrow(self) -> bool:
        """Few conversations match: reading their messages beats the word's postings."""
        return self.pinned is True or self.folder_id is not None

    @property
    def on_conversations(self) -> bool:
        return any(
            value is not None for value in (self.pinned, self.archived, self.folder_id, self.model)
        )


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


@dataclass(frozen=True)
class Candidate:
    kind: int
    id: int
    conversation_id: int
    rank: float
    created_at: datetime

    @property
    def order(self) -> tuple[float, int, int]:
        return (self.rank, self.kind, self.id)


# The query's words, and their owner-prefixed index form. Both are written out inline (not
# taken from a CTE) so PostgreSQL folds them to constants when planning: it then estimates
# from the index's statistics how many rows a word matches. A query without a positive word
# (only "-word") cannot use the index by itself: it then also requires the owner lexeme.
WORDS_SQL = "websearch_to_tsquery(%(config)s::regconfig, %(q)s)"
OWNED_SQL = (
    f"search_owned_query(CASE WHEN querytree({WORDS_SQL}) = 'T'"
    f" THEN {WORDS_SQL} && quote_literal(%(owner_lexeme)s)::tsquery ELSE {WORDS_SQL} END,"
    " %(owner_id)s)"
)
MESSAGE_KEEP = "m.status <> 'failed' AND m.role <> 'system'"
MESSAGE_OUT = (
    f"{KIND_MESSAGE}, m.id, m.conversation_id, ts_rank(m.search, {WORDS_SQL})::float8, m.created_at"
)
NEWEST_FIRST = "ORDER BY m.created_at DESC, m.id DESC LIMIT %(take)s"

TITLES_SQL = f"""
(SELECT {KIND_TITLE}, c.id, c.id, (ts_rank(c.title_search, {WORDS_SQL}) * 2)::float8, c.created_at
 FROM conversations_conversation c
 WHERE numnode({WORDS_SQL}) > 0 AND search_owned(c.title_search, c.owner_id) @@ {OWNED_SQL}
   AND c.title_search @@ {WORDS_SQL} AND c.owner_id = %(owner_id)s AND c.deleted_at IS NULL
   {{conversation_filters}} {{title_dates}}
 ORDER BY c.created_at DESC, c.id DESC LIMIT %(take)s)
"""  # noqa: S608  (constant fragments; values are bound parameters)

# Step 1 (with the titles): the window's matches (read newest first, stopping at the cap), where
# the window ends (its oldest row) and its newest time, from the index alone. Fewer rows than
# the window: it held all the user's messages in range. Too few matches for step 2 to be worth
# it (fewer than ``direct_below``): step 3 runs here too (KIND_OLDER rows, all the matches).
WINDOW_SQL = f"""
WITH edge AS (
    SELECT m.id, m.created_at FROM conversations_message m
    WHERE m.owner_id = %(owner_id)s {{message_dates}}
    ORDER BY m.created_at DESC, m.id DESC LIMIT %(window)s
), hits AS (
    SELECT {MESSAGE_OUT}
    FROM (SELECT m.id, m.conversation_id, m.search, m.created_at, m.status, m.role
          FROM conversations_message m
          WHERE m.owner_id = %(owner_id)s {{message_dates}}
          ORDER BY m.created_at DESC, m.id DESC LIMIT %(window)s) m
    WHERE numnode({WORDS_SQL}) > 0 AND m.search @@ {WORDS_SQL} AND {MESSAGE_KEEP} {{scope}}
    {NEWEST_FIRST}
)
SELECT * FROM hits
UNION ALL
(SELECT {KIND_WINDOW_END}, e.id, (SELECT count(*) FROM edge), 0, e.created_at
 FROM edge e ORDER BY e.created_at, e.id LIMIT 1)
UNION ALL
(SELECT {KIND_WINDOW_NEWEST}, 0, 0, 0, max(e.created_at) FROM edge e HAVING count(*) > 0)
UNION ALL
(SELECT {KIND_OLDER}, m.id, m.conversation_id, ts_rank(m.search, {WORDS_SQL})::float8,
    m.created_at
 FROM conversations_message m
 WHERE (SELECT count(*) FROM hits) < %(direct_below)s AND (SELECT count(*) FROM edge) = %(window)s
   AND {{older}}
 {NEWEST_FIRST})
UNION ALL
{TITLES_SQL}
"""  # noqa: S608  (constant fragments; values are bound parameters)

# Steps 2 and 3: older than the window (or than step 2's range); see ``SearchStatements.range``.
RANGE_SQL = f"""
SELECT {MESSAGE_OUT}
FROM conversations_message m
WHERE {{conditions}}
{NEWEST_FIRST}
"""  # noqa: S608  (constant fragments; values are bound parameters)

# A narrow filter: the matching conversations' messages, checked one by one.
NARROW_SQL = f"""
WITH convs AS MATERIALIZED (
    SELECT c.id FROM conversations_conversation c
    WHERE c.owner_id = %(owner_id)s AND c.deleted_at IS NULL {{conversation_filters}}
)
(SELECT {MESSAGE_OUT}
 FROM convs JOIN conversations_message m ON m.conversation_id = convs.id
 WHERE numnode({WORDS_SQL}) > 0 AND m.search @@ {WORDS_SQL} AND m.owner_id = %(owner_id)s
   AND {MESSAGE_KEEP} {{message_dates}}
 {NEWEST_FIRST})
UNION ALL
{TITLES_SQL}
"""  # noqa: S608  (constant fragments; values are bound parameters)

# The page: titles, roles and snippets of the chosen rows only.
PAGE_SQL = f"""
SELECT p.ord, c.title, m.role,
    ts_headline(%(config)s::regconfig,
        replace(replace(CASE p.kind WHEN {KIND_TITLE} THEN c.title ELSE m.content END,
            %(mark_start)s, ''), %(mark_end)s, ''),
        {WORDS_SQL}, %(headline_options)s)
FROM unnest(%(kinds)s::int[], %(ids)s::bigint[], %(conversation_ids)s::bigint[])
    WITH ORDINALITY AS p(kind, id, conversation_id, ord)
JOIN conversations_conversation c ON c.id = p.conversation_id AND c.owner_id = %(owner_id)s
LEFT JOIN conversations_message m
    ON p.kind = {KIND_MESSAGE} AND m.id = p.id AND m.owner_id = %(owner_id)s
WHERE p.kind = {KIND_TITLE} OR m.id IS NOT NULL
ORDER BY p.ord
"""  # noqa: S608  (constant fragments; values are bound parameters)

# A message's conversation is always its owner's, so "not one of the user's conversations that
# are deleted or fail the filters" is "a live one that passes them". NOT IN keeps it a hashed
# set built once (IN would become a join: one conversation lookup per candidate).
FILTERED_OUT_SQL = (
    " AND m.conversation_id NOT IN (SELECT c.id FROM conversations_conversation c"
    " WHERE c.owner_id = %(owner_id)s AND (c.deleted_at IS NULL{filters}) IS NOT TRUE)"
)
HEADLINE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12"


def snippet_html(raw: str) -> str:
    """Escape everything, then turn only our own markers into <mark> tags."""
    escaped = MARKED.sub(r"<mark>\1</mark>", html.escape(raw))
    return escaped.replace(MARK_START, "").replace(MARK_END, "")


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def query_validate(query: str) -> str:
    query = query.strip()
    if not query:
        raise InvalidInput("q is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"q is longer than {MAX_QUERY_CHARS} characters")
    return query


def cursor_decode(cursor: str | None) -> tuple[float, int, int] | None:
    if not cursor:
        return None
    rank_raw, kind_raw, id_raw = decode_cursor(cursor, 3)
    try:
        return float(rank_raw), int(kind_raw), int(id_raw)
    except ValueError:
        raise InvalidInput("invalid cursor") from None


@dataclass
class SearchStatements:
    """The SQL and parameters of one search; ``params`` holds the filters' values."""

    user_id: int
    query: str
    filters: SearchFilters
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params.update(
            config=SEARCH_CONFIG,
            q=query_validate(self.query),
            owner_lexeme=f"{OWNER_LEXEME}{self.user_id}",
            owner_id=self.user_id,
            take=settings.SEARCH_MAX_CANDIDATES + 1,  # one more tells that the cap was reached
            window=settings.SEARCH_RECENT_WINDOW,
        )
        self.params["direct_below"] = direct_below(self.params["take"])
        message_dates, title_dates = "", ""
        for name in CONVERSATION_FILTERS:
            value = getattr(self.filters, name)
            if value is not None:
                self.params[name] = value
        if self.filters.date_from is not None:
            self.params["date_from"] = day_start(self.filters.date_from)
            message_dates += " AND m.created_at >= %(date_from)s"
            title_dates += " AND c.created_at >= %(date_from)s"
        if self.filters.date_to is not None:  # inclusive: the whole last day
            self.params["date_to"] = day_start(self.filters.date_to) + timedelta(days=1)
            message_dates += " AND m.created_at < %(date_to)s"
            title_dates += " AND c.created_at < %(date_to)s"
        self.fragments = {
            "conversation_filters": self.conversation_sql(),
            "message_dates": message_dates,
            "title_dates": title_dates,
            "scope": self.scope_sql(),
        }

    def conversation_sql(self) -> str:
        return "".join(
            f" AND c.{name} = %({name})s"
            for name in CONVERSATION_FILTERS
            if getattr(self.filters, name) is not None
        )

    def scope_sql(self) -> str:
        """The message's conversation is the user's, live, and passes the filters."""
        if not self.filters.on_conversations:
            return (
                " AND m.conversation_id NOT IN (SELECT d.id FROM conversations_conversation d"
                " WHERE d.owner_id = %(owner_id)s AND d.deleted_at IS NOT NULL)"
            )
        return FILTERED_OUT_SQL.format(filters=self.conversation_sql())

    def window(self) -> str:
        return WINDOW_SQL.format(**self.fragments, older=self.conditions(older=True))

    def narrow(self) -> str:
        return NARROW_SQL.format(**self.fragments)

    def range(
        self, before: tuple[datetime, int], since: datetime | None, take: int, *, walk: bool
    ) -> tuple[str, dict[str, Any]]:
        """The matches older than ``before`` (and since ``since``), newest first.

        Step 2 with a short range (``walk``): the ``(owner, created_at, id)`` index in order,
        each message checked; a common word's postings would cost more to read than the range.
        Step 2 otherwise: the word's postings, which the planner can intersect with the range
        on that index. Step 3 (no ``since``): see ``older``.
        """
        params = self.params | {"before_at": before[0], "before_id": before[1], "take": take}
        conditions = self.conditions(older=since is None, walk=walk)
        column = "m.created_at" if since is not None else self.time_column(older=True)
        conditions += f" AND ({column}, m.id) < (%(before_at)s, %(before_id)s)"
        if since is not None:
            params["since"] = since
            conditions += " AND m.created_at >= %(since)s"
        return RANGE_SQL.format(conditions=conditions), params

    def time_column(self, *, older: bool) -> str:
        """Step 3 reads a word that is rare there (the earlier steps found too few), so its
        postings alone are the way in: without a date filter the owner and time conditions are
        written so that they cannot be index conditions (the planner would otherwise intersect
        a few hundred postings with the user's whole history)."""
        if older and not self.fragments["message_dates"]:
            return "(m.created_at + interval '0 seconds')"  # the same value, not indexable
        return "m.created_at"

    def conditions(self, *, older: bool, walk: bool = False) -> str:
        column = self.time_column(older=older)
        owner = "(m.owner_id + 0)" if column != "m.created_at" else "m.owner_id"
        postings = "" if walk else f" AND search_owned(m.search, m.owner_id) @@ {OWNED_SQL}"
        return (
            f"numnode({WORDS_SQL}) > 0{postings} AND m.search @@ {WORDS_SQL}"
            f" AND {owner} = %(owner_id)s AND {MESSAGE_KEEP}{self.fragments['scope']}"
            + self.fragments["message_dates"].replace("m.created_at", column)
        )

    def page(self, rows: list[Candidate]) -> tuple[str, dict[str, Any]]:
        return PAGE_SQL, self.params | {
            "kinds": [row.kind for row in rows],
            "ids": [row.id for row in rows],
            "conversation_ids": [row.conversation_id for row in rows],
            "mark_start": MARK_START,
            "mark_end": MARK_END,
            "headline_options": HEADLINE_OPTIONS,
        }


def fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as db_cursor:
        db_cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = db_cursor.fetchall()
        return rows


def candidates_read(rows: list[tuple[Any, ...]]) -> list[Candidate]:
    return [Candidate(*row) for row in rows if row[0] in (KIND_MESSAGE, KIND_TITLE)]


def message_candidates(statements: SearchStatements) -> tuple[list[Candidate], list[Candidate]]:
    """The newest message matches (up to the cap plus one) and the title matches (likewise)."""
    if statements.filters.narrow:
        found = candidates_read(fetch(statements.narrow(), statements.params))
        return [c for c in found if c.kind == KIND_MESSAGE], [
            c for c in found if c.kind == KIND_TITLE
        ]
    rows = fetch(statements.window(), statements.params)
    found = candidates_read(rows)
    messages = [c for c in found if c.kind == KIND_MESSAGE]
    titles = [c for c in found if c.kind == KIND_TITLE]
    take, window = statements.params["take"], statements.params["window"]
    end = next((row for row in rows if row[0] == KIND_WINDOW_END), None)
    newest = next((row[4] for row in rows if row[0] == KIND_WINDOW_NEWEST), None)
    if end is None or newest is None or end[2] < window or len(messages) >= take:
        return messages, titles  # the window held every message in range, or enough matches
    if len(messages) < statements.params["direct_below"]:  # step 3 ran in the same statement
        older = [Candidate(KIND_MESSAGE, *row[1:]) for row in rows if row[0] == KIND_OLDER]
        return older, titles  # all the newest matches, the window's among them
    before: tuple[datetime, int] = (end[4], end[1])
    needed = take - len(messages)
    windows = range_windows(matched=len(messages), needed=needed)
    if windows is not None and newest > end[4]:  # step 2: where the match rate points to
        walk = windows <= RANGE_WALK_WINDOWS
        # A walk stops at its LIMIT: its range may be wider than the estimate, which can be
        # short (a small remainder, and many messages share a time when they were imported).
        since = end[4] - (newest - end[4]) * (RANGE_WALK_SPAN if walk else windows)
        sql, params = statements.range(before, since, needed, walk=walk)
        messages += candidates_read(fetch(sql, params))
        if len(messages) >= take:
            return messages, titles
        before = (since, 0)  # (created_at, id) < (since, 0): strictly before ``since``
    sql, params = statements.range(before, None, take - len(messages), walk=False)  # step 3
    messages += candidates_read(fetch(sql, params))
    return messages, titles


def direct_below(take: int) -> int:
    """The fewest window matches with which step 2 is worth running (fewer: step 3 directly)."""
    return next(m for m in range(1, take + 1) if range_windows(matched=m, needed=take - m))


def range_windows(*, matched: int, needed: int) -> float | None:
    """How many windows' worth of older messages step 2 reads; None: skip it, go to step 3."""
    if matched == 0:
        return None  # no rate to go by
    windows = needed / matched * RANGE_MARGIN
    return windows if windows <= RANGE_MAX_WINDOWS else None


def conversation_search(
    *,
    user: Any,
    query: str,
    filters: SearchFilters | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> SearchPage:
    """The user's titles and messages matching ``query`` (web-search syntax), best first.

    Keyset pagination on (rank, kind, id). Deleted conversations, failed answers and system
    messages are never searched. Two to four statements (see the module's docstring).
    """
    limit = page_limit(limit)
    after = cursor_decode(cursor)
    statements = SearchStatements(int(user.pk), query, filters or SearchFilters())
    messages, titles = message_candidates(statements)
    cap = settings.SEARCH_MAX_CANDIDATES
    approximate = len(messages) > cap or len(titles) > cap
    ranked = sorted(messages[:cap] + titles[:cap], key=lambda c: c.order, reverse=True)
    if after is not None:
        ranked = [c for c in ranked if c.order < after]
    chosen = ranked[:limit]
    hits = page_hits(statements, chosen)
    next_cursor = None
    if len(ranked) > limit and hits:
        last = chosen[-1]
        next_cursor = encode_cursor(repr(last.rank), last.kind, last.id)
    return SearchPage(hits, next_cursor, approximate=approximate)


def page_hits(statements: SearchStatements, chosen: list[Candidate]) -> list[SearchHit]:
    if not chosen:
        return []
    sql, params = statements.page(chosen)
    hits = []
    for ord_, title, role, headline in fetch(sql, params):
        row = chosen[ord_ - 1]
        hits.append(
            SearchHit(
                conversation_id=row.conversation_id,
                conversation_title=title,
                message_id=None if row.kind == KIND_TITLE else row.id,
                role=role or "",
                snippet_html=snippet_html(headline or ""),
                rank=row.rank,
                created_at=row.created_at,
            )
        )
    return hits
