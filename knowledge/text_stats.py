"""The full-text statistics of the BM25 ranking, per collection: how many chunks hold each
lexeme (``LexemeStat``) and the collection's chunk count and total length
(``CollectionTextStat``).

They change in the transaction that writes or deletes chunks, so the search never ranks by
counts that miss a committed document. Upserts take lexemes in sorted order, so two ingestions
into one collection wait for each other instead of deadlocking. ``lexeme_stats_refresh``
recounts everything (the beat task): it repairs any drift and drops lexemes gone to zero.
"""

from __future__ import annotations

from django.db import connection, transaction

# ``sign`` is +1 when chunks arrive, -1 before they are deleted. ``version`` NULL: all versions.
APPLY_SQL = """
WITH changed AS MATERIALIZED (
    SELECT search FROM knowledge_chunk
    WHERE document_id = %(document_id)s
      AND (%(version)s::integer IS NULL OR version = %(version)s::integer)
),
lexemes AS (
    INSERT INTO knowledge_lexemestat (collection_id, lexeme, chunks)
    SELECT %(collection_id)s, lexeme, %(sign)s * count(*)
    FROM changed, unnest(tsvector_to_array(changed.search)) AS lexeme
    GROUP BY lexeme
    ORDER BY lexeme
    ON CONFLICT (lexeme, collection_id)
    DO UPDATE SET chunks = knowledge_lexemestat.chunks + EXCLUDED.chunks
)
INSERT INTO knowledge_collectiontextstat (collection_id, chunks, lexemes)
SELECT %(collection_id)s, %(sign)s * count(*), %(sign)s * coalesce(sum(length(search)), 0)
FROM changed
ON CONFLICT (collection_id) DO UPDATE SET
    chunks = knowledge_collectiontextstat.chunks + EXCLUDED.chunks,
    lexemes = knowledge_collectiontextstat.lexemes + EXCLUDED.lexemes
"""

REFRESH_SQL = [
    # Ingestions wait (their upserts) until the recount commits; readers are not blocked.
    "LOCK TABLE knowledge_lexemestat, knowledge_collectiontextstat IN SHARE ROW EXCLUSIVE MODE",
    "DELETE FROM knowledge_lexemestat",
    "DELETE FROM knowledge_collectiontextstat",
    """INSERT INTO knowledge_lexemestat (collection_id, lexeme, chunks)
    SELECT ch.collection_id, lexeme, count(*)
    FROM knowledge_chunk ch, unnest(tsvector_to_array(ch.search)) AS lexeme
    GROUP BY ch.collection_id, lexeme""",
    """INSERT INTO knowledge_collectiontextstat (collection_id, chunks, lexemes)
    SELECT collection_id, count(*), coalesce(sum(length(search)), 0)
    FROM knowledge_chunk GROUP BY collection_id""",
]


def text_stats_apply(
    *, collection_id: int, document_id: int, version: int | None, sign: int
) -> None:
    """Add (``sign`` 1) or remove (-1) the counts of a document's chunks (of ``version``, or
    all of them). Call it in the transaction that inserts them, or before deleting them."""
    params = {
        "collection_id": collection_id,
        "document_id": document_id,
        "version": version,
        "sign": sign,
    }
    with connection.cursor() as cursor:
        cursor.execute(APPLY_SQL, params)


@transaction.atomic
def lexeme_stats_refresh() -> int:
    """Recount the statistics of every collection from its chunks; returns the lexeme rows."""
    with connection.cursor() as cursor:
        for statement in REFRESH_SQL:
            cursor.execute(statement)
        cursor.execute("SELECT count(*) FROM knowledge_lexemestat")
        row = cursor.fetchone()
    return int(row[0]) if row else 0
