"""The answer cache: a complete answer to a standalone question, served again to askers who may
read exactly the same collections.

Two layers. The exact one is a Redis key (scope + normalised question) holding an entry id; the
semantic one is the nearest entry of the scope by cosine similarity of the question embeddings
(pgvector HNSW), at least ``ANSWER_CACHE_THRESHOLD``. Both end in PostgreSQL, which re-checks
the entry: same scope, not expired, and every cited document still ready at the version quoted
(``answer_cache_sql``). Redis only ever says where to look.

Scope makes a leak impossible rather than unlikely: it hashes the sorted ids of the collections
the asker can read, the model, the system prompt and ``ANSWER_CACHE_PROMPT_VERSION``, so an
answer is only served to a request that would have been given exactly the same sources. Only
the first question of a conversation is looked up and stored (later ones depend on what was
said before). An answer citing nothing is stored only when the asker could read no collection:
otherwise "no sources" might only mean this asker could not see them.

Invalidation: ``knowledge.signals.document_changed`` deletes the entries citing the document;
entries expire after ``ANSWER_CACHE_TTL_SECONDS`` (an hourly task deletes them); a request can
bypass the cache (``CacheMode``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from conversations import answer_cache_sql as sql
from conversations.models import Conversation, Message
from knowledge.selectors import query_embedding, readable_collection_ids, vector_literal

logger = logging.getLogger(__name__)

# "use": look up, and store a new answer; "refresh" (REST ``Cache-Control: no-cache``, websocket
# ``"cache": false``): do not look up, store the new answer in place of the old; "skip" (REST
# ``no-store``): neither.
CacheMode = Literal["use", "refresh", "skip"]
KEY_PREFIX = "answer-cache:"
MAX_QUESTION_CHARS = 2000  # what retrieval embeds too (grounding.MAX_QUERY_CHARS)
PURGE_BATCH = 5000
REDIS_TIMEOUT_S = 2  # a stuck Redis must not hold a turn: the lookup then treats it as a miss
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[\w']+")
# Words that flip or shift what a question asks while barely moving its embedding ("more" vs
# "less stable": cosine 0.999 with MiniLM, bench/cache_threshold.py). A paraphrase found by
# meaning that has one of them where the cached question has not is refused.
_POLARITY = """
    not no never none nor neither without cannot cant dont doesnt didnt isnt arent wasnt werent
    wont shouldnt couldnt wouldnt hasnt havent less more least most fewer greater higher lower
    increase decrease reduce raise positive positively negative negatively before after above
    below first last best worst earlier later older newer min max minimum maximum enable
    disable allow deny add remove open close start stop off induce suppress inhibit promote
    prevent activate enhance diminish accelerate slow fast faster slower improve worsen
    presence absence present absent dependent independent fail succeed success failure true
    false
"""
POLARITY_WORDS = frozenset(_POLARITY.split())
_EDGE_PUNCTUATION = " \t\n?!.,;:¿¡…\"'"


def cache_mode_of_header(cache_control: str) -> CacheMode:
    """The mode a REST request's ``Cache-Control`` header asks for (``no-store`` wins)."""
    directives = {part.split("=", 1)[0].strip().lower() for part in cache_control.split(",")}
    if "no-store" in directives:
        return "skip"
    return "refresh" if "no-cache" in directives else "use"


def question_normalise(text: str) -> str:
    """Case, width and spacing folded; punctuation at the ends dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", folded).strip(_EDGE_PUNCTUATION)


def question_words(text: str) -> set[str]:
    return {word.replace("'", "") for word in _WORD.findall(question_normalise(text))}


def questions_conflict(asked: str, cached: str) -> bool:
    """Whether two questions close in meaning may still want different answers: they differ
    in a number or in a word of ``POLARITY_WORDS``."""
    differ = question_words(asked) ^ question_words(cached)
    return any(polar(word) or any(c.isdigit() for c in word) for word in differ)


def polar(word: str) -> bool:
    """``word``, or its stem under a common English inflection, is in ``POLARITY_WORDS``."""
    forms = {word, word[:-1], word[:-2], word[:-3], word[:-1] + "e", word[:-3] + "e"}
    return not POLARITY_WORDS.isdisjoint(form for form in forms if len(form) > 1)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def scope_of(*, collection_ids: Sequence[int], model: str, system_prompt: str) -> str:
    """The permission and prompt scope an answer belongs to (a hash). The embedding model (and
    its question variant) is in it too: vectors of two models cannot be compared."""
    parts = [
        sorted(collection_ids),
        model,
        system_prompt,
        settings.ANSWER_CACHE_PROMPT_VERSION,
        settings.EMBEDDING_MODEL,
        settings.EMBEDDING_QUESTION_INT8,
    ]
    return sha256_hex(json.dumps(parts, separators=(",", ":")))


def exact_key(scope: str, question_hash: str) -> str:
    return f"{KEY_PREFIX}{scope}:{question_hash}"


@functools.cache
def redis_client(url: str) -> redis.Redis:
    """One pooled client per process (thread-safe): a new one per lookup would cost a
    connection each time, on the path to the first token."""
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S)


def exact_store() -> redis.Redis:
    return redis_client(settings.REDIS_URL)


@dataclass
class CacheProbe:
    """What a turn knows about its question for the cache: to look it up and to store it."""

    question: str
    question_hash: str
    scope: str
    mode: CacheMode
    reads_nothing: bool  # the asker can read no collection
    embedding: list[float] | None = None

    def embed(self) -> list[float]:
        if self.embedding is None:
            self.embedding = query_embedding(self.question)
        return self.embedding

    def embedding_if_possible(self) -> list[float] | None:
        """The embedding, or None when the embedding provider failed (a remote one may)."""
        try:
            return self.embed()
        except Exception:
            logger.exception("answer cache: embedding the question failed")
            return None


@dataclass(frozen=True)
class CacheHit:
    entry_id: int
    question: str  # the question the answer was written for
    answer: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    similarity: float = 1.0
    exact: bool = False
    notice: str = ""  # shown before the answer (a fallback while providers are down)


def cache_probe(
    *,
    user: Any,
    conversation: Conversation,
    question: Message,
    mode: CacheMode = "use",
    first: bool | None = None,
) -> CacheProbe | None:
    """The cache's view of a turn, or None when the cache has no part in it (off, skipped, or
    not the first question of the conversation). ``first``: whether ``question`` opens its
    conversation, when the caller knows (the begin statement says); None asks the database."""
    if not settings.ANSWER_CACHE_ENABLED or mode == "skip":
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    standalone = (
        question_is_standalone(question) if first is None else first and not conversation.summary
    )
    if not standalone:
        return None
    from conversations.context import system_prompt

    collection_ids = readable_collection_ids(user=user)
    text = question.content[:MAX_QUESTION_CHARS]
    scope = scope_of(
        collection_ids=collection_ids,
        model=conversation.model,
        system_prompt=system_prompt(conversation),
    )
    return CacheProbe(
        question=text,
        question_hash=sha256_hex(question_normalise(text)),
        scope=scope,
        mode=mode,
        reads_nothing=not collection_ids,
    )


def question_is_standalone(question: Message) -> bool:
    """The first message of its conversation: nothing said before can change its meaning."""
    if question.conversation.summary:
        return False
    earlier = Message.objects.filter(conversation_id=question.conversation_id, id__lt=question.pk)
    return not earlier.exists()


def cache_consult(
    *,
    user: Any,
    conversation: Conversation,
    question: Message,
    mode: CacheMode,
    first: bool | None = None,
) -> tuple[CacheProbe | None, CacheHit | None]:
    """The turn's probe and, when there is one, its cached answer. A failure is a miss (the
    cache is an aid: the model can still answer); the probe is then dropped, so nothing is
    stored either. Except a database error inside a transaction (a turn's begin): the lookup
    has no savepoint of its own, so the transaction is lost and the error goes up (the begin
    fails whole and writes nothing)."""
    try:
        probe = cache_probe(
            user=user, conversation=conversation, question=question, mode=mode, first=first
        )
        return probe, (answer_lookup(probe=probe) if probe is not None else None)
    except DatabaseError:
        if connection.in_atomic_block:
            raise
        logger.exception("answer cache: lookup failed; answering without it")
        return None, None
    except Exception:
        logger.exception("answer cache: lookup failed; answering without it")
        return None, None


def answer_lookup(*, probe: CacheProbe, threshold: float | None = None) -> CacheHit | None:
    """The cached answer for ``probe``'s question: the exact layer, then the nearest entry of
    the scope at least ``threshold`` similar (default ``ANSWER_CACHE_THRESHOLD``).

    Embeds the question (into ``probe``) only when the exact layer misses and the scope holds
    entries: a scope seen for the first time (a user with a private collection of their own)
    costs no embedding on the way to the first token.
    """
    if probe.mode != "use":
        return None
    hit = exact_lookup(probe)
    if hit is not None or not scope_used(probe.scope):
        return hit
    return semantic_lookup(probe, threshold=threshold)


# Scopes seen holding entries: when, and how many (up to EXACT_SCOPE_ENTRIES). A scope that held
# entries a minute ago almost always still does, so its lookups skip the counting round trip. A
# stale answer only costs one embedding and a lookup that finds nothing, or an exact comparison
# of a scope grown past the bound; an empty scope is always asked again.
SCOPE_USED_TTL_S = 60.0
SCOPES_REMEMBERED = 10_000
EXACT_SCOPE_ENTRIES = 500  # below this many a scope's entries are all compared (bench/README.md)
_scopes_used: dict[str, tuple[float, int]] = {}


def scope_size(scope: str) -> int:
    """The scope's entries, counted up to ``EXACT_SCOPE_ENTRIES``."""
    now = time.monotonic()
    seen = _scopes_used.get(scope)
    if seen is not None and now - seen[0] < SCOPE_USED_TTL_S:
        return seen[1]
    with connection.cursor() as cursor:
        cursor.execute(sql.SCOPE_SIZE_SQL, {"scope": scope, "limit": EXACT_SCOPE_ENTRIES})
        size = int(cursor.fetchone()[0])
    if size:
        if len(_scopes_used) >= SCOPES_REMEMBERED:
            _scopes_used.clear()
        _scopes_used[scope] = (now, size)
    else:
        _scopes_used.pop(scope, None)
    return size


def scope_used(scope: str) -> bool:
    return scope_size(scope) > 0


def exact_lookup(probe: CacheProbe) -> CacheHit | None:
    try:
        raw = exact_store().get(exact_key(probe.scope, probe.question_hash))
    except redis.RedisError:
        logger.warning("answer cache: Redis unavailable; exact layer skipped", exc_info=True)
        return None
    if raw is None:
        return None
    params: dict[str, Any] = {
        "entry_id": int(raw),
        "scope": probe.scope,
        "question_hash": probe.question_hash,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.EXACT_SQL, params)
        row = cursor.fetchone()
    return hit_of(row, exact=True) if row else None


def semantic_lookup(probe: CacheProbe, *, threshold: float | None = None) -> CacheHit | None:
    bound = settings.ANSWER_CACHE_THRESHOLD if threshold is None else threshold
    params = {
        "embedding": vector_literal(probe.embed()),
        "scope": probe.scope,
        "ef_search": str(settings.ANSWER_CACHE_EF_SEARCH),
    }
    row = nearest_row(params, exact=scope_size(probe.scope) < EXACT_SCOPE_ENTRIES)
    if row is None or 1.0 - float(row[-1]) < bound:
        return None
    hit = hit_of(row, exact=False)
    return None if questions_conflict(probe.question, hit.question) else hit


def nearest_row(params: dict[str, Any], *, exact: bool = False) -> tuple[Any, ...] | None:
    """One statement, one round trip: through the HNSW index (with its own settings), or, for a
    small scope, ``exact``ly."""
    with connection.cursor() as cursor:
        cursor.execute(sql.EXACT_LOOKUP_SQL if exact else sql.LOOKUP_SQL, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row


def hit_of(row: Sequence[Any], *, exact: bool) -> CacheHit:
    entry_id, question, answer, citations, model, distance = row
    if isinstance(citations, str):
        citations = json.loads(citations)
    similarity = 1.0 - float(distance)
    return CacheHit(entry_id, question, answer, citations or [], model, similarity, exact)


def hit_record(*, entry_id: int) -> None:
    """Count a hit (after the turn, in its own short statement: a popular entry's row lock must
    not be held by a turn's begin transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.HIT_COUNT_SQL, {"entry_id": entry_id})


@dataclass(frozen=True)
class AnswerToStore:
    answer: str
    citations: list[dict[str, Any]]
    model: str
    versions: dict[int, int]  # document id -> version the sources quoted


def answer_storable(probe: CacheProbe, answer: AnswerToStore) -> bool:
    if probe.mode == "skip" or not answer.answer.strip():
        return False
    # No citation while the asker could read documents: maybe only because of who asked.
    return bool(answer.citations) or probe.reads_nothing


def answer_store(*, probe: CacheProbe, answer: AnswerToStore) -> int | None:
    """Keep a complete answer for the probe's scope; its entry id (None: not storable)."""
    if not answer_storable(probe, answer):
        return None
    embedding = probe.embedding_if_possible()  # after the turn when the lookup did not need it
    if embedding is None:
        return None
    document_ids = sorted({int(c["document_id"]) for c in answer.citations})
    params: dict[str, Any] = {
        "question": probe.question,
        "question_hash": probe.question_hash,
        "scope": probe.scope,
        "embedding": vector_literal(embedding),
        "answer": answer.answer,
        "citations": json.dumps(answer.citations),
        "model": answer.model,
        "document_ids": document_ids,
        "document_versions": [answer.versions.get(d, 0) for d in document_ids],
        "ttl": settings.ANSWER_CACHE_TTL_SECONDS,
    }
    with connection.cursor() as cursor:
        if probe.mode == "refresh":
            cursor.execute(sql.REPLACE_SQL, params)
        cursor.execute(sql.INSERT_SQL, params)
        entry_id = int(cursor.fetchone()[0])
    exact_remember(probe, entry_id)
    return entry_id


def exact_remember(probe: CacheProbe, entry_id: int) -> None:
    key = exact_key(probe.scope, probe.question_hash)
    try:
        exact_store().set(key, entry_id, ex=settings.ANSWER_CACHE_TTL_SECONDS)
    except redis.RedisError:  # the semantic layer still finds it
        logger.warning("answer cache: Redis unavailable; exact key not written", exc_info=True)


def answers_forget_document(*, document_id: int) -> int:
    """Delete the entries citing ``document_id``; how many. (Their exact keys now point at
    nothing, which the lookup treats as a miss.)"""
    with connection.cursor() as cursor:
        cursor.execute(sql.CITING_DELETE_SQL, {"document_id": document_id})
        return int(cursor.rowcount)


def document_changed_receiver(*, document_id: int, **kwargs: Any) -> None:
    """``knowledge.signals.document_changed``: a cited document's answers are stale."""
    try:
        answers_forget_document(document_id=document_id)
    except Exception:  # the version check at lookup still refuses them
        logger.exception("answer cache: forgetting document %s failed", document_id)


def embeddings_replaced_receiver(*, dimensions: int, **kwargs: Any) -> None:
    """``knowledge.signals.embeddings_replaced``: questions embedded by the old model cannot be
    compared with new ones. Every entry goes (and the column takes the new size if it changed);
    the HNSW index is rebuilt empty."""
    size = int(dimensions)  # an integer in the DDL: type modifiers cannot be parameters
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE conversations_cachedanswer")
        cursor.execute(sql.COLUMN_DIMENSIONS_SQL)
        if int(cursor.fetchone()[0]) != size:
            cursor.execute(
                f"ALTER TABLE conversations_cachedanswer ALTER COLUMN embedding TYPE vector({size})"
            )


def answers_purge_expired() -> int:
    """Delete expired entries in batches; how many."""
    total = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql.EXPIRED_DELETE_SQL, {"batch": PURGE_BATCH})
            deleted = int(cursor.rowcount)
        total += deleted
        if deleted < PURGE_BATCH:
            return total
