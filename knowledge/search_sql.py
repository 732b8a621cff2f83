"""Hybrid retrieval as one SQL statement: HNSW cosine + full-text rank, fused by reciprocal rank.

Both branches filter by the user's readable collections inside their own ``WHERE``, so a
permission filter can never be applied after the top k were chosen (which would return fewer
than k rows, or leak ranks). The vector branch walks the HNSW index with
``hnsw.iterative_scan = relaxed_order`` (set by the statement itself, ``SETTINGS_SQL``): when
the filter rejects candidates, the scan goes on until it has enough.

The full-text branch ranks with ``ts_rank`` against any of the query's terms (the
``websearch_to_tsquery`` ANDs become ORs, so a question phrased in full still finds passages),
but matches rows by the query's rarest terms only: the lexemes whose chunk counts
(``knowledge_lexemestat``, from ``ts_stat``, refreshed by a beat task) add up to at most
``text_match_budget`` chunks, always the rarest one, and at most ``text_scan_limit`` rows are
ranked. Matching every term of a whole question ranked a large share of the corpus (p50 155 ms
at 100,000 chunks); a lexeme missing from the counts is new, so counted as rare. ``ts_rank_cd``
(cover density) was measured too: it rewards query terms standing close together, which an OR
of a whole question's terms rarely has, and it scored worse on the SciFact training queries
(bench/README.md).
"""

from __future__ import annotations

# Who may read a collection; the ORM twin is ``selectors.readable_collections``.
READABLE_SQL = """
readable AS MATERIALIZED (
    SELECT c.id FROM knowledge_collection c, users_user me
    WHERE me.id = %(user_id)s
      AND (c.owner_id = me.id
        OR c.visibility = 'everyone'
        OR (c.visibility = 'restricted' AND (
            (me.department <> '' AND me.department = ANY(c.departments))
            OR EXISTS (
                SELECT 1 FROM knowledge_collection_groups cg
                JOIN users_user_groups ug ON ug.group_id = cg.group_id
                WHERE cg.collection_id = c.id AND ug.user_id = me.id))))
      AND (%(collection_ids)s::bigint[] IS NULL OR c.id = ANY(%(collection_ids)s::bigint[]))
)"""

# Only the current version of ready documents is searchable.
LIVE_FROM = "knowledge_chunk ch JOIN knowledge_document d ON d.id = ch.document_id"
LIVE_WHERE = """ch.collection_id IN (SELECT id FROM readable)
          AND d.status = 'ready' AND ch.version = d.version"""

# A term's frequency f in a chunk, read from ``ts_rank`` of that one term with every weight 1
# (``presence``): (1 + 1/4 + ... + 1/f^2) / (pi^2 / 6), that is 0.608, 0.760, 0.827, 0.866,
# 0.890 for f = 1..5 (PostgreSQL's calc_rank_or); 0 when absent. BM25 saturates long before 5.
TERM_FREQUENCY = """(CASE WHEN presence < 0.68 THEN 1 WHEN presence < 0.79 THEN 2
    WHEN presence < 0.845 THEN 3 WHEN presence < 0.877 THEN 4 ELSE 5 END)::float8"""

# The HNSW settings, for this statement's transaction only (``is_local``), so that a search
# is one statement in autocommit: no BEGIN, SET and COMMIT round trips. The vector branch's
# condition on ``applied`` is a one-time filter the executor checks before it first pulls a
# row from the index scan (pgvector reads both settings then): keep the condition.
SETTINGS_SQL = """
search_settings AS MATERIALIZED (
    SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true) IS NOT NULL
        AND set_config('hnsw.ef_search', %(ef_search)s, true) IS NOT NULL AS applied
)"""

# Only the constant fragments above are interpolated; every value is a query parameter.
SEARCH_SQL = f"""
WITH {SETTINGS_SQL},
{READABLE_SQL},
vector_hits AS (
    SELECT id, row_number() OVER (ORDER BY distance, id) AS rank FROM (
        SELECT ch.id, ch.embedding <=> %(embedding)s::vector AS distance
        FROM {LIVE_FROM}
        WHERE {LIVE_WHERE} AND (SELECT applied FROM search_settings)
        ORDER BY ch.embedding <=> %(embedding)s::vector
        LIMIT %(vector_candidates)s
    ) nearest
),
terms AS (
    SELECT t.lexeme, coalesce(sum(s.chunks), 0) AS chunks
    FROM unnest(tsvector_to_array(to_tsvector(%(config)s::regconfig, %(query)s))) AS t(lexeme)
    LEFT JOIN knowledge_lexemestat s
        ON s.lexeme = t.lexeme AND s.collection_id IN (SELECT id FROM readable)
    GROUP BY t.lexeme
),
corpus AS MATERIALIZED (
    SELECT greatest(sum(chunks), 1)::float8 AS n,
        greatest(sum(lexemes), 1)::float8 / greatest(sum(chunks), 1) AS average_length
    FROM knowledge_collectiontextstat WHERE collection_id IN (SELECT id FROM readable)
),
weighted AS MATERIALIZED (
    SELECT quote_literal(lexeme)::tsquery AS q,
        ln(1 + (corpus.n - least(chunks, corpus.n) + 0.5) / (least(chunks, corpus.n) + 0.5)) AS idf
    FROM terms, corpus
),
selective AS (
    SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS q FROM (
        SELECT lexeme, sum(chunks) OVER (ORDER BY chunks, lexeme) AS cumulative,
            row_number() OVER (ORDER BY chunks, lexeme) AS rarity
        FROM terms
    ) ranked
    WHERE cumulative <= %(text_match_budget)s OR rarity = 1
),
scanned AS MATERIALIZED (
    -- setweight: one decompressed copy per row (the stored vector is TOAST-compressed, and
    -- each per-term ts_rank below would decompress it again); weights are all 1 there anyway.
    SELECT ch.id, setweight(ch.search, 'D') AS search, length(ch.search) AS length
    FROM selective, {LIVE_FROM}
    WHERE ch.search @@ selective.q AND {LIVE_WHERE}
    LIMIT %(text_scan_limit)s
),
text_hits AS (
    SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
        SELECT id, sum(idf * tf * (%(bm25_k1)s + 1) / (tf + %(bm25_k1)s * (
            1 - %(bm25_b)s + %(bm25_b)s * length / corpus.average_length))) AS score
        FROM (
            SELECT id, length, idf, {TERM_FREQUENCY} AS tf FROM (
                SELECT scanned.id, scanned.length, weighted.idf,
                    ts_rank('{{1,1,1,1}}', scanned.search, weighted.q) AS presence
                FROM scanned, weighted
            ) pairs
            WHERE presence > 0.5
        ) matches, corpus
        GROUP BY id
        ORDER BY score DESC, id
        LIMIT %(text_candidates)s
    ) matched
),
fused AS (
    SELECT id, sum(weight / (%(rrf_k)s + rank)) AS score,
        min(vector_rank) AS vector_rank, min(text_rank) AS text_rank
    FROM (
        SELECT id, rank, 1.0 AS weight, rank AS vector_rank, NULL::bigint AS text_rank
        FROM vector_hits
        UNION ALL
        SELECT id, rank, %(text_weight)s, NULL::bigint, rank FROM text_hits
    ) ranks
    GROUP BY id
    ORDER BY score DESC, id
    LIMIT %(k)s
)
SELECT ch.id, ch.document_id, d.title, ch.collection_id, c.name, ch.page, ch.section, ch.text,
    fused.score, fused.vector_rank, fused.text_rank, ch.version
FROM fused
JOIN knowledge_chunk ch ON ch.id = fused.id
JOIN knowledge_document d ON d.id = ch.document_id
JOIN knowledge_collection c ON c.id = ch.collection_id
ORDER BY fused.score DESC, ch.id
"""  # noqa: S608

# Exact nearest neighbours (no index), for measuring the recall of the HNSW path.
EXACT_VECTOR_SQL = f"""
WITH {READABLE_SQL}
SELECT ch.id FROM {LIVE_FROM}
WHERE {LIVE_WHERE}
ORDER BY ch.embedding <=> %(embedding)s::vector
LIMIT %(k)s
"""  # noqa: S608

# Raw SQL: it runs in every chat turn's begin step, where the ORM's compilation of the
# permission subqueries cost several times the query itself (~6 ms against ~1 ms).
# Whether ``readable`` holds a ready document; also a column of the chat turn's begin statement
# (``conversations.turn_sql.BEGIN_SQL``), which saves the begin step this round trip.
SEARCHABLE_EXISTS = """EXISTS (
    SELECT 1 FROM knowledge_document d
    WHERE d.collection_id IN (SELECT id FROM readable) AND d.status = 'ready'
)"""
SEARCHABLE_SQL = f"""
WITH {READABLE_SQL}
SELECT {SEARCHABLE_EXISTS}"""

# The sorted ids of the collections a user may read (the answer cache's permission scope).
READABLE_IDS_SQL = f"""
WITH {READABLE_SQL}
SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM readable
"""  # noqa: S608
