"""Retrieval latency at 100,000 chunks: ``chunk_search`` p50/p99, and the HNSW path's recall@10
against an exact scan.

    python -m bench.retrieval_latency [--chunks 100000] [--queries 300] [--rebuild]

Chunks are synthesised in the bench database (``bench.knowledge_db``) from the real SciFact
chunks that ``bench.retrieval_eval`` ingested: chunk i copies the text of real chunk
i mod n and gets that chunk's embedding plus Gaussian noise (sigma 0.03 per dimension, about
0.6 in norm), normalised, so every real chunk has a dozen close neighbours, which is a hard
case for an approximate index. Ten collections hold them; the reader may read five (three for
everyone, two through a group), so the permission filter rejects half the candidates. Queries
are SciFact claims, embedded before timing; the timed call is
``chunk_search(user=..., query=..., k=8, embedding=...)``, the whole SQL path of a chat turn
(the query's embedding is timed apart). Results go to bench/results/retrieval_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.children import RESULTS
from bench.knowledge_db import django_setup_bench_database
from bench.retrieval_eval import BENCH_USERNAME, DEFAULT_DATA, read_jsonl

OWNER = "bench-latency-owner"
READER = "bench-latency-reader"
GROUP = "bench-latency-readers"
COLLECTIONS = 10
NOISE = 0.03
TARGET_P99_MS = 20.0
TARGET_RECALL = 0.95

SYNTH_SQL = """
INSERT INTO knowledge_chunk (document_id, collection_id, version, ordinal, text, token_count,
    page, section, embedding)
SELECT d.id, d.collection_id, 1, o.ordinal, src.text, src.token_count, NULL, src.section,
    l2_normalize(src.embedding + (
        SELECT array_agg((sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) * %(noise)s)
        FROM generate_series(1, %(dims)s) WHERE o.ordinal + d.id IS NOT NULL  -- per row, not once
    )::vector)
FROM knowledge_document d
CROSS JOIN generate_series(0, %(per_document)s - 1) AS o(ordinal)
JOIN LATERAL (
    SELECT text, token_count, section, embedding FROM source_chunks
    WHERE n = (d.id * %(per_document)s + o.ordinal) %% %(sources)s
) src ON true
WHERE d.collection_id = ANY(%(collections)s)
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def dataset_ensure(chunks: int, *, rebuild: bool) -> Any:
    """The reader, with ``chunks`` synthetic chunks in place (built when missing)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from knowledge.models import Chunk, Collection

    users = get_user_model().objects
    owner, _ = users.get_or_create(username=OWNER)
    reader, _ = users.get_or_create(username=READER)
    reader.groups.add(Group.objects.get_or_create(name=GROUP)[0])
    existing = Chunk.objects.filter(collection__owner=owner).count()
    if existing == chunks and not rebuild:
        return reader
    Collection.objects.filter(owner=owner).delete()
    dataset_build(owner, chunks)
    return reader


def dataset_build(owner: Any, chunks: int) -> None:
    from django.conf import settings
    from django.db import connection

    from knowledge.models import Chunk, Document
    from knowledge.reindex import INDEX_SQL

    sources = Chunk.objects.filter(collection__owner__username=BENCH_USERNAME).count()
    if not sources:
        raise SystemExit("run bench.retrieval_eval first: it ingests the chunks copied here")
    per_document = 100
    collections = collections_create(owner)
    documents = [
        Document(
            collection=collections[n % COLLECTIONS],
            title=f"synthetic {n}",
            file=f"synthetic/{n}",
            filename=f"synthetic-{n}.txt",
            sha256=f"{n:064x}",
            status="ready",
            version=1,
            chunk_count=per_document,
        )
        for n in range(chunks // per_document)
    ]
    Document.objects.bulk_create(documents, batch_size=1000)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
        cursor.execute(
            "CREATE TEMP TABLE source_chunks AS SELECT row_number() OVER (ORDER BY ch.id) - 1 AS n,"
            " ch.text, ch.token_count, ch.section, ch.embedding FROM knowledge_chunk ch"
            " JOIN knowledge_collection c ON c.id = ch.collection_id"
            " JOIN users_user u ON u.id = c.owner_id WHERE u.username = %s",
            [BENCH_USERNAME],
        )
        cursor.execute("CREATE INDEX ON source_chunks (n)")
        params: dict[str, Any] = {
            "noise": NOISE,
            "dims": settings.EMBEDDING_DIMENSIONS,
            "per_document": per_document,
            "sources": sources,
            "collections": [c.pk for c in collections],
        }
        cursor.execute(SYNTH_SQL, params)
        print(f"inserted in {time.monotonic() - started:.0f} s; building HNSW", file=sys.stderr)
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(INDEX_SQL)
        cursor.execute("ANALYZE knowledge_chunk")
    print(f"dataset built in {time.monotonic() - started:.0f} s", file=sys.stderr)


def collections_create(owner: Any) -> list[Any]:
    from knowledge import services

    visibilities = ["everyone"] * 3 + ["restricted"] * 2 + ["owner"] * 5
    return [
        services.collection_create(
            owner=owner,
            name=f"latency-{n}",
            visibility=visibility,
            group_names=[GROUP] if visibility == "restricted" else [],
        )
        for n, visibility in enumerate(visibilities)
    ]


def timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def chunk_search_in_transaction(*, user: Any, query: str, k: int, embedding: Any) -> list[Any]:
    """The path before the search became one statement: BEGIN, the settings, the same
    statement, COMMIT (four round trips). Timed beside ``chunk_search`` for the ratio."""
    from django.db import connection, transaction

    from knowledge import search_sql
    from knowledge.selectors import search_params

    params = search_params(
        user=user, query=query, k=k, collection_ids=None, mode="hybrid", embedding=embedding
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('hnsw.ef_search', %s, true)",
            [params["ef_search"]],
        )
        cursor.execute(search_sql.SEARCH_SQL, params)
        return list(cursor.fetchall())


def measure(reader: Any, queries: list[str]) -> dict[str, Any]:
    from knowledge.selectors import chunk_search, chunk_search_exact_ids, query_embedding

    embed_ms, embeddings = [], []
    for text in queries:
        ms, vector = timed(lambda t=text: query_embedding(t))
        embed_ms.append(ms)
        embeddings.append(vector)
    for text, vector in list(zip(queries, embeddings, strict=True))[:20]:  # warm the caches
        chunk_search(user=reader, query=text, k=8, embedding=vector)
    latencies: dict[str, list[float]] = {
        "hybrid": [], "vector": [], "text": [], "hybrid_in_transaction": []
    }  # fmt: skip
    recalls = []
    for text, vector in zip(queries, embeddings, strict=True):
        ms, _ = timed(
            lambda t=text, v=vector: chunk_search_in_transaction(
                user=reader, query=t, k=8, embedding=v
            )
        )
        latencies["hybrid_in_transaction"].append(ms)
        for mode in ("hybrid", "vector", "text"):
            ms, _ = timed(
                lambda m=mode, t=text, v=vector: chunk_search(
                    user=reader, query=t, k=8, embedding=v, mode=m
                )
            )
            latencies[mode].append(ms)
        nearest = chunk_search(user=reader, query=text, k=10, embedding=vector, mode="vector")
        approximate = [hit.chunk_id for hit in nearest]
        exact = chunk_search_exact_ids(user=reader, embedding=vector, k=10)
        recalls.append(len(set(approximate) & set(exact)) / max(1, len(exact)))
    report: dict[str, Any] = {
        f"{mode}_ms": {
            "p50": round(statistics.median(values), 2),
            "p99": round(percentile(values, 0.99), 2),
        }
        for mode, values in latencies.items()
    }
    report["query_embedding_ms"] = {"p50": round(statistics.median(embed_ms), 2)}
    report["hnsw_recall_at_10"] = round(statistics.mean(recalls), 4)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--query-file", type=Path, default=DEFAULT_DATA / "queries.jsonl")
    args = parser.parse_args(argv)
    if not args.query_file.exists():
        print(f"skipped: {args.query_file} is absent", file=sys.stderr)
        return 0
    django_setup_bench_database()
    reader = dataset_ensure(args.chunks, rebuild=args.rebuild)
    from knowledge.text_stats import lexeme_stats_refresh

    lexeme_stats_refresh()  # what the beat task keeps up to date in production
    queries = [q["text"] for q in read_jsonl(args.query_file)][: args.queries]
    from django.conf import settings

    from knowledge.models import Chunk

    result = {
        "load_average_before": [round(value, 2) for value in os.getloadavg()],
        "text_match_budget": settings.KNOWLEDGE_TEXT_MATCH_BUDGET,
        "chunks_total": Chunk.objects.count(),
        "synthetic_chunks": args.chunks,
        "queries": len(queries),
        **measure(reader, queries),
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }
    result["targets"] = {
        "hybrid_p99_ms<=": TARGET_P99_MS,
        "recall>=": TARGET_RECALL,
        "met": result["hybrid_ms"]["p99"] <= TARGET_P99_MS
        and result["hnsw_recall_at_10"] >= TARGET_RECALL,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "retrieval_latency.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
