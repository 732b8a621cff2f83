from django.db import connection


def knn_ids(cursor, query: str) -> list[int]:
    cursor.execute("SELECT id FROM vec_probe ORDER BY embedding <=> %s::vector LIMIT 2", [query])
    return [row[0] for row in cursor.fetchall()]


def test_vector_extension_is_installed_by_migrations(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    assert row is not None
    assert tuple(int(p) for p in row[0].split(".")[:2]) >= (0, 8)


def test_hnsw_index_answers_a_nearest_neighbour_query(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE vec_probe (id int PRIMARY KEY, embedding vector(3))")
        cursor.execute(
            "INSERT INTO vec_probe VALUES (1, '[1,0,0]'), (2, '[0.9,0.1,0]'), (3, '[0,1,0]'),"
            " (4, '[0,0,1]'), (5, '[-1,0,0]')"
        )
        cursor.execute("CREATE INDEX ON vec_probe USING hnsw (embedding vector_cosine_ops)")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            "EXPLAIN SELECT id FROM vec_probe ORDER BY embedding <=> '[1,0,0]'::vector LIMIT 2"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        ids = knn_ids(cursor, "[1,0.05,0]")
    assert "vec_probe_embedding_idx" in plan
    assert ids == [1, 2]
