"""The answer cache's statements (see ``answer_cache``). Raw SQL: each is one round trip on the
path to a first token, and the semantic lookup needs the pgvector operator and per-statement
HNSW settings, which the ORM cannot express in one statement.

An entry is servable when it is in the asker's scope, not expired, and every document it cites
still exists, is ``ready`` and is at the version the answer quoted (``CITED_CURRENT``).
"""

from __future__ import annotations

from knowledge.search_sql import SETTINGS_SQL

CITED_CURRENT = """NOT EXISTS (
        SELECT 1 FROM unnest(e.document_ids, e.document_versions) AS cited(id, version)
        LEFT JOIN knowledge_document d ON d.id = cited.id
        WHERE d.id IS NULL OR d.status <> 'ready' OR d.version <> cited.version
    )"""

HIT_COLUMNS = "e.id, e.question, e.answer, e.citations, e.model"

# The nearest servable entry; the caller compares its distance with the threshold (a distance
# bound inside the WHERE would make a miss scan the whole index). One statement that sets its
# own HNSW settings (keep scanning past entries of other scopes), local to its transaction, as
# retrieval's search does (``knowledge.search_sql.SETTINGS_SQL``): in autocommit no BEGIN and
# COMMIT, inside a turn's begin no savepoint.
LOOKUP_SQL = f"""
WITH {SETTINGS_SQL}
SELECT {HIT_COLUMNS}, nearest.distance FROM (
    SELECT e.id, e.embedding <=> %(embedding)s::vector AS distance
    FROM conversations_cachedanswer e
    WHERE e.scope = %(scope)s AND e.expires_at > now() AND {CITED_CURRENT}
        AND (SELECT applied FROM search_settings)
    ORDER BY e.embedding <=> %(embedding)s::vector
    LIMIT 1
) nearest JOIN conversations_cachedanswer e ON e.id = nearest.id
"""  # noqa: S608

# The same for a scope of few entries, exactly: the scope's rows through its own index, every
# one compared. The HNSW index is shared by all scopes, and walking it for one that holds a tiny
# share of the entries gives up before reaching some of them (bench/README.md).
EXACT_LOOKUP_SQL = f"""
WITH scoped AS MATERIALIZED (
    SELECT e.id, e.embedding <=> %(embedding)s::vector AS distance
    FROM conversations_cachedanswer e
    WHERE e.scope = %(scope)s AND e.expires_at > now() AND {CITED_CURRENT}
)
SELECT {HIT_COLUMNS}, nearest.distance FROM (
    SELECT id, distance FROM scoped ORDER BY distance, id LIMIT 1
) nearest JOIN conversations_cachedanswer e ON e.id = nearest.id
"""  # noqa: S608

# The exact layer's candidate (its id came from Redis), checked like any other entry.
EXACT_SQL = f"""
SELECT {HIT_COLUMNS}, 0.0 FROM conversations_cachedanswer e
WHERE e.id = %(entry_id)s AND e.scope = %(scope)s AND e.question_hash = %(question_hash)s
  AND e.expires_at > now() AND {CITED_CURRENT}
"""  # noqa: S608

# How many entries the scope holds, counted up to %(limit)s (the exact index's prefix): none
# needs no embedding, few are compared exactly.
SCOPE_SIZE_SQL = """
SELECT count(*) FROM (
    SELECT 1 FROM conversations_cachedanswer WHERE scope = %(scope)s LIMIT %(limit)s
) AS held
"""

INSERT_SQL = """
INSERT INTO conversations_cachedanswer (question, question_hash, scope, embedding, answer,
    citations, model, document_ids, document_versions, created_at, expires_at, hit_count)
VALUES (%(question)s, %(question_hash)s, %(scope)s, %(embedding)s::vector, %(answer)s,
    %(citations)s::jsonb, %(model)s, %(document_ids)s::bigint[], %(document_versions)s::int[],
    now(), now() + make_interval(secs => %(ttl)s), 0)
RETURNING id
"""

# A refreshed answer replaces the older ones to the same question in the same scope.
REPLACE_SQL = """
DELETE FROM conversations_cachedanswer WHERE scope = %(scope)s AND question_hash = %(question_hash)s
"""

HIT_COUNT_SQL = """
UPDATE conversations_cachedanswer SET hit_count = hit_count + 1, last_hit_at = now()
WHERE id = %(entry_id)s
"""

CITING_DELETE_SQL = """
DELETE FROM conversations_cachedanswer WHERE document_ids @> ARRAY[%(document_id)s]::bigint[]
"""

COLUMN_DIMENSIONS_SQL = """
SELECT atttypmod FROM pg_attribute
WHERE attrelid = 'conversations_cachedanswer'::regclass AND attname = 'embedding'
"""

EXPIRED_DELETE_SQL = """
DELETE FROM conversations_cachedanswer WHERE id IN (
    SELECT id FROM conversations_cachedanswer WHERE expires_at <= now() LIMIT %(batch)s
)
"""
