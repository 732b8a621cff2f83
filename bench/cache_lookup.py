"""Answer-cache lookup latency at 100,000 entries, the question's embedding included.

    python -m bench.cache_lookup [--entries 100000] [--queries 300] [--rebuild]

Entries are synthesised in the knowledge bench database (``bench.knowledge_db``) from the
SciFact training claims (``../shared/data/scifact/queries.jsonl``), read as questions: 80% of
the claims are "cached", and entry i gets the embedding of cached claim i mod n plus Gaussian
noise (sigma 0.015 per dimension, cosine about 0.96 to its claim: above the default threshold,
so a cached claim is a hit), normalised, so every cached question has ~100 close entries, a
hard case for the index. Half the entries are in the scope measured ("main"), the other half
spread over 99 other scopes; a second, small scope ("small", 500 entries).

Timed, per question, exactly what a turn does (``answer_cache.answer_lookup``): the exact layer
(one Redis GET, a miss here), whether the scope holds entries (one indexed EXISTS), the
question's embedding (the int8 question model, ``llm.minilm_int8``), then the semantic lookup
(one statement with its own HNSW settings); "database" is the EXISTS and that statement. Half the
questions are cached claims (they hit), half held-out claims (they mostly miss). The embedding
is also timed with the packaged and the int8 model, each with one and with two intra-op threads,
in the same run. HNSW recall@1 against an exact scan is reported for the first 100 questions.
Entries are embedded by the question model, as the cache stores them. Results go to
bench/results/cache_lookup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from bench.children import RESULTS
from bench.knowledge_db import django_setup_bench_database
from bench.retrieval_eval import DEFAULT_DATA, read_jsonl
from bench.stats import distribution

NOISE = 0.015
OTHER_SCOPES = 99
SMALL_SCOPE_ENTRIES = 500
TARGET_P99_MS = 10.0
WARMUP_QUESTIONS = 300
MAIN, SMALL = "bench-main-scope", "bench-small-scope"

SOURCE_SQL = (
    "CREATE TEMP TABLE source_questions (n int PRIMARY KEY, question text, embedding vector)"
)

SYNTH_SQL = """
INSERT INTO conversations_cachedanswer (question, question_hash, scope, embedding, answer,
    citations, model, document_ids, document_versions, created_at, expires_at, hit_count)
SELECT src.question, md5(i::text) || md5(src.question), CASE
        WHEN i < %(small)s THEN %(small_scope)s
        WHEN i %% 2 = 0 THEN %(main_scope)s
        ELSE 'bench-other-' || (i %% %(others)s) END,
    l2_normalize(src.embedding + (
        SELECT array_agg((sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) * %(noise)s)
        FROM generate_series(1, %(dims)s) WHERE i IS NOT NULL  -- per row, not once
    )::vector),
    'A cached answer.', '[]'::jsonb, 'bench-model', '{}', '{}', now(),
    now() + interval '30 days', 0
FROM generate_series(0, %(entries)s - 1) AS g(i)
JOIN source_questions src ON src.n = i %% %(sources)s
"""

INDEX_SQL = (
    "CREATE INDEX cachedanswer_embedding_hnsw ON conversations_cachedanswer"
    " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_lookup")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--claims", type=Path, default=DEFAULT_DATA / "queries.jsonl")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS / "cache_lookup.json")
    return parser.parse_args(argv)


def claims_split(path: Path) -> tuple[list[str], list[str]]:
    if not path.exists():
        raise SystemExit(f"SciFact claims not found at {path} (see ../shared/data/README.md)")
    claims = [row["text"] for row in read_jsonl(path)]
    random.Random(7).shuffle(claims)
    cut = len(claims) * 4 // 5
    return claims[:cut], claims[cut:]


def dataset_ensure(entries: int, cached: list[str], *, rebuild: bool) -> None:
    from conversations.models import CachedAnswer

    if CachedAnswer.objects.count() == entries and not rebuild:
        return
    dataset_build(entries, cached)


def dataset_build(entries: int, cached: list[str]) -> None:
    from django.conf import settings
    from django.db import connection, transaction

    from knowledge.selectors import vector_literal
    from llm.embeddings import embedding_provider

    started = time.monotonic()
    provider = embedding_provider()
    vectors = [provider.embed_query(question) for question in cached]  # as the cache stores them
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE conversations_cachedanswer")
        cursor.execute("DROP INDEX IF EXISTS cachedanswer_embedding_hnsw")
        cursor.execute(SOURCE_SQL)
        with cursor.copy("COPY source_questions (n, question, embedding) FROM STDIN") as copy:
            for n, (text, vector) in enumerate(zip(cached, vectors, strict=True)):
                copy.write_row((n, text, vector_literal(vector)))
        params: dict[str, Any] = {
            "small": SMALL_SCOPE_ENTRIES,
            "small_scope": SMALL,
            "main_scope": MAIN,
            "others": OTHER_SCOPES,
            "noise": NOISE,
            "dims": settings.EMBEDDING_DIMENSIONS,
            "entries": entries,
            "sources": len(cached),
        }
        cursor.execute(SYNTH_SQL, params)
        print(f"inserted in {time.monotonic() - started:.0f} s; building HNSW", file=sys.stderr)
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute(INDEX_SQL)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE conversations_cachedanswer")
    print(f"dataset built in {time.monotonic() - started:.0f} s", file=sys.stderr)


def probe_for(question: str, scope: str) -> Any:
    from conversations.answer_cache import CacheProbe, question_normalise, sha256_hex

    digest = sha256_hex(question_normalise(question))
    return CacheProbe(question, digest, scope, "use", reads_nothing=True)


def timed_lookups(questions: list[tuple[str, bool]], scope: str) -> dict[str, Any]:
    """Each question through the exact layer, the embedding and the semantic statement."""
    from conversations.answer_cache import exact_lookup, scope_used, semantic_lookup

    parts: dict[str, list[float]] = {"redis": [], "embedding": [], "database": [], "total": []}
    hits = {True: 0, False: 0}
    for question, cached in questions:
        probe = probe_for(question, scope)
        t0 = time.perf_counter()
        exact_lookup(probe)  # a miss: the exact keys are not filled here
        t1 = time.perf_counter()
        scope_used(probe.scope)
        t2 = time.perf_counter()
        probe.embed()
        t3 = time.perf_counter()
        hit = semantic_lookup(probe)
        t4 = time.perf_counter()
        timings = (t1 - t0, t3 - t2, (t2 - t1) + (t4 - t3), t4 - t0)
        for name, value in zip(parts, timings, strict=True):
            parts[name].append(value * 1000)
        hits[cached] += hit is not None
    cached_count = sum(1 for _, cached in questions if cached)
    return {
        **{f"{name}_ms": distribution(values) for name, values in parts.items()},
        "hit_rate_cached_questions": round(hits[True] / max(cached_count, 1), 3),
        "hit_rate_new_questions": round(hits[False] / max(len(questions) - cached_count, 1), 3),
    }


def embedding_threads(questions: list[str]) -> dict[str, Any]:
    """One short question at a time: the packaged model and the int8 question model
    (``llm.minilm_int8``), each with one and with two onnxruntime intra-op threads."""
    from django.conf import settings

    from llm.minilm import MiniLMProvider

    report = {}
    for model, directory in (("packaged", None), ("int8", Path(settings.EMBEDDING_MODEL_DIR))):
        for threads in (1, 2):
            provider = MiniLMProvider(
                threads=threads, query_threads=threads, question_model_dir=directory
            )
            for question in questions[:10]:
                provider.embed_query(question)
            times = []
            for question in questions:
                started = time.perf_counter()
                provider.embed_query(question)
                times.append((time.perf_counter() - started) * 1000)
            report[f"{model}_threads_{threads}_ms"] = distribution(times)
    return report


def recall_at_1(questions: list[str], scope: str) -> float:
    """How often the HNSW lookup's nearest entry is the exact nearest servable entry."""
    from django.db import connection, transaction

    from conversations import answer_cache_sql as sql
    from conversations.answer_cache import nearest_row
    from knowledge.selectors import query_embedding, vector_literal

    same = 0
    for question in questions:
        embedding = vector_literal(query_embedding(question))
        params = {"embedding": embedding, "scope": scope, "ef_search": "40"}
        approximate = nearest_row(params)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(sql.LOOKUP_SQL, params)
            exact = cursor.fetchone()
        same += bool(approximate and exact and approximate[0] == exact[0])
    return round(same / len(questions), 3)


def lookup_plan(scope: str, question: str) -> list[str]:
    from django.db import connection

    from conversations import answer_cache_sql as sql
    from knowledge.selectors import query_embedding, vector_literal

    embedding = vector_literal(query_embedding(question))
    params = {"embedding": embedding, "scope": scope, "ef_search": "40"}
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql.LOOKUP_SQL, params)
        return [re.sub(r"'\[[^']*\]'", "'[...]'", row[0]) for row in cursor.fetchall()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    django_setup_bench_database()
    from django.conf import settings

    settings.ANSWER_CACHE_ENABLED = True
    cached, held_out = claims_split(args.claims)
    dataset_ensure(args.entries, cached, rebuild=args.rebuild)
    half = args.queries // 2
    rng = random.Random(11)
    questions = [(q, True) for q in rng.sample(cached, half)]
    questions += [(q, False) for q in rng.sample(held_out, min(half, len(held_out)))]
    rng.shuffle(questions)
    texts = [q for q, _ in questions]
    # Warm-up on other claims than the timed ones: connections, the model, and the index's and
    # table's pages in shared buffers, as on a server that has been answering for a while.
    asked = set(texts)
    warm = [(q, True) for q in cached if q not in asked][:WARMUP_QUESTIONS]
    timed_lookups(warm, MAIN)
    timed_lookups(warm[:100], SMALL)
    load_before = os.getloadavg()
    report: dict[str, Any] = {
        "entries": args.entries,
        "queries": len(questions),
        "threshold": settings.ANSWER_CACHE_THRESHOLD,
        "ef_search": settings.ANSWER_CACHE_EF_SEARCH,
        "main_scope": timed_lookups(questions, MAIN),
        "small_scope": timed_lookups(questions[:100], SMALL),
        "embedding_threads": embedding_threads(texts),
        "recall_at_1_main_scope": recall_at_1(texts[:100], MAIN),
        "plan_main_scope": lookup_plan(MAIN, texts[0]),
        "plan_small_scope": lookup_plan(SMALL, texts[0]),
        "target_p99_ms": TARGET_P99_MS,
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    report["met_target"] = report["main_scope"]["total_ms"]["p99"] <= TARGET_P99_MS
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
