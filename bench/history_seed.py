"""Seed the history benchmark's own database: users, conversations and messages by COPY.

Rows are generated in Python from fixed pools of synthetic text (a Zipf-distributed vocabulary
of made-up words, so term frequencies are known) and streamed with ``COPY`` on two connections.
The secondary indexes are dropped before loading and rebuilt afterwards, then VACUUM ANALYZE.
Foreign-key triggers are skipped during the load (``session_replication_role = replica``): the
generator writes consistent ids itself.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

SEED_VERSION = "4"
VOCABULARY = 3000
SYLLABLES = ["ka", "lo", "mi", "ru", "ve", "zo", "ta", "ni", "pe", "su", "do", "gri", "bal", "tor"]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-haiku"]
START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scale:
    users: int
    conversations: int
    messages: int


def vocabulary() -> list[str]:
    rng = random.Random(7)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def term_at_rank(rank: int) -> str:
    """The word of the given frequency rank (0 is the most frequent)."""
    return vocabulary()[rank]


def text_pool(rng: random.Random, size: int, words_min: int, words_max: int) -> list[str]:
    words = vocabulary()
    weights = [1 / (rank + 1) for rank in range(len(words))]
    return [
        " ".join(rng.choices(words, weights, k=rng.randint(words_min, words_max)))
        for _ in range(size)
    ]


class Generator:
    """COPY lines for one user's conversations and messages; ids are fixed by position."""

    def __init__(self, scale: Scale, user_ids: list[int]) -> None:
        rng = random.Random(11)
        self.scale = scale
        self.user_ids = user_ids
        self.questions = text_pool(rng, 4000, 8, 16)
        self.answers = text_pool(rng, 4000, 30, 60)
        self.titles = text_pool(rng, 2000, 2, 5)

    def user_rows(self, index: int) -> tuple[str, str]:
        rng = random.Random(index)
        owner = self.user_ids[index]
        per_user, per_conv = self.scale.conversations, self.scale.messages
        conv_lines, msg_lines = [], []
        # Sorted: ids grow with time, as they do when rows are inserted as they happen.
        starts = sorted(rng.randint(0, 60 * 24 * 700) for _ in range(per_user))
        for c in range(per_user):
            conv_id = index * per_user + c + 1
            created = START + timedelta(minutes=starts[c])
            updated = created + timedelta(minutes=rng.randint(1, 600))
            stamp, touched = created.isoformat(), updated.isoformat()
            model = MODELS[c % len(MODELS)]
            pinned = "t" if c % 97 == 0 else "f"
            archived = "t" if c % 13 == 0 else "f"
            title = rng.choice(self.titles)
            conv_lines.append(
                f"{conv_id}\t{owner}\t{title}\t{model}\t{pinned}\t{archived}\t\t\\N\t{stamp}\t{touched}\n"
            )
            base = (conv_id - 1) * per_conv
            for m in range(per_conv):
                msg_id = base + m + 1
                if m % 2 == 0:
                    role, text, reply = "user", rng.choice(self.questions), "\\N"
                else:
                    role, text, reply = "assistant", rng.choice(self.answers), str(msg_id - 1)
                msg_lines.append(
                    f"{msg_id}\t{conv_id}\t{owner}\t{role}\t{text}\t{reply}\t{model}\t{stamp}\n"
                )
        return "".join(conv_lines), "".join(msg_lines)


CONV_COPY = (
    "COPY conversations_conversation (id, owner_id, title, model, pinned, archived, summary,"
    " summary_through_id, created_at, updated_at) FROM STDIN"
)
MSG_COPY = (
    "COPY conversations_message (id, conversation_id, owner_id, role, content, reply_to_id,"
    " model, created_at) FROM STDIN"
)


def secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " WHERE t.relname IN ('conversations_conversation', 'conversations_message')"
        " AND NOT x.indisunique AND NOT x.indisprimary"
    ).fetchall()
    return [(name, definition) for name, definition in rows]


def copy_worker(url: str, gen: Generator, todo: queue.Queue[int], deadline: float) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        while time.monotonic() < deadline:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            conv_data, msg_data = gen.user_rows(index)
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(CONV_COPY) as copy:
                    copy.write(conv_data)
                with cur.copy(MSG_COPY) as copy:
                    copy.write(msg_data)
                cur.execute("INSERT INTO bench_loaded (user_index) VALUES (%s)", (index,))


def load(url: str, scale: Scale, user_ids: list[int], budget_s: float) -> int:
    """Load users' rows (the measured user first) until done or out of time; users loaded."""
    gen = Generator(scale, user_ids)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_loaded (user_index int PRIMARY KEY)")
        done = {row[0] for row in conn.execute("SELECT user_index FROM bench_loaded")}
    todo: queue.Queue[int] = queue.Queue()
    for index in range(scale.users):
        if index not in done:
            todo.put(index)
    deadline = time.monotonic() + budget_s
    workers = [
        threading.Thread(target=copy_worker, args=(url, gen, todo, deadline)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM bench_loaded").fetchone()
    return int(row[0]) if row else 0


def finish(url: str, indexes: list[tuple[str, str]]) -> None:
    """Rebuild the dropped indexes, fix sequences and defaults, and VACUUM ANALYZE."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        for _, definition in indexes:
            conn.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
        for table in ("conversations_conversation", "conversations_message"):
            reset = (
                "SELECT setval(pg_get_serial_sequence({name}, 'id'), (SELECT max(id) FROM {table}))"
            )
            conn.execute(
                sql.SQL(reset).format(name=sql.Literal(table), table=sql.Identifier(table))
            )
        conn.execute("VACUUM (ANALYZE) conversations_conversation")
        conn.execute("VACUUM (ANALYZE) conversations_message")


def indexes_drop(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        # Columns COPY does not list take these defaults (the Django models have them in Python).
        for column, value in [
            ("status", "'complete'"),
            ("idempotency_key", "''"),
            ("provider", "''"),
            ("prompt_tokens", "0"),
            ("completion_tokens", "0"),
            ("citations", "'[]'::jsonb"),
            ("error_code", "''"),
            ("error_detail", "''"),
        ]:
            conn.execute(f"ALTER TABLE conversations_message ALTER {column} SET DEFAULT {value}")
    return indexes
