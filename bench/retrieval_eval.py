"""Retrieval quality on a BEIR-layout corpus, through the product's ingestion and ``chunk_search``.

    python -m bench.retrieval_eval --corpus F --queries F --qrels F [--run-out FILE]
        [--limit-queries N] [--reingest]

Every corpus entry becomes one small Markdown document (``# title`` + text) uploaded and
ingested with the product's services (``document_upload`` -> ``document_ingest``: extraction,
chunking, embedding, chunk replacement), in this process, into one collection of a bench user,
in a bench database kept between runs (``bench.knowledge_db``). Each query then goes through
``chunk_search`` in the three modes (hybrid, vector only, full text only); a document's score is
its best chunk's. Prints JSON with nDCG@10 and Recall@100 per mode and writes it to
bench/results/retrieval_eval.json; ``--run-out`` writes the hybrid ranking in TREC run format.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.children import RESULTS
from bench.embedding_cache import DEFAULT_DIR as DEFAULT_CACHE
from bench.embedding_cache import embedding_cache_install
from bench.knowledge_db import django_setup_bench_database

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
MODES = ("hybrid", "vector", "text")
CHUNKS_PER_QUERY = 150  # chunks asked for, so 100 distinct documents remain in most rankings
BENCH_USERNAME = "bench-retrieval"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in path.read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        qrels[query_id][doc_id] = int(score)
    return qrels


def corpus_key(corpus: Path) -> str:
    """What the ingested corpus depends on: the corpus bytes and the chunking/embedding code.

    Not ``knowledge/models.py``: migrations keep the ingested rows valid (and a changed key once
    cost a whole re-ingestion); a re-ingestion is cheap anyway with the embedding cache.
    """
    digest = hashlib.sha256(corpus.read_bytes())
    root = Path(__file__).resolve().parent.parent
    for name in ["knowledge/chunking.py", "llm/embeddings.py"]:
        path = root / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def corpus_ingest(
    corpus: Path,
    *,
    reingest: bool,
    shard: tuple[int, int] = (0, 1),
    first: frozenset[str] = frozenset(),
    ingest: bool = True,
) -> tuple[Any, Any, dict[str, Any]]:
    """The bench user and collection holding the corpus, ingested now unless cached.

    An interrupted ingestion resumes: a document already ingested is an upload of the same
    bytes (the same document) whose ingestion is skipped. ``shard`` (i, n) takes every n-th
    entry from the i-th, so n processes can share the work.
    """
    from django.contrib.auth import get_user_model

    from knowledge import services
    from knowledge.models import Collection, Document

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
    name = f"{corpus.parent.name}-{corpus_key(corpus)}"
    collection = Collection.objects.filter(owner=user, name=name).first()
    ready = Document.objects.filter(collection=collection, status="ready").count()
    entries = read_jsonl(corpus)
    # Judged documents first: an ingestion cut short still leaves a fair (smaller) corpus.
    entries.sort(key=lambda entry: entry["_id"] not in first)
    if collection is None and not ingest:
        # Never delete or ingest here: a changed key (chunking/model code) once wiped a corpus.
        raise SystemExit(f"--no-ingest: no ingested corpus named {name}")
    if collection is not None and (ready == len(entries) or not ingest) and not reingest:
        return user, collection, {"cached": True, "documents": ready, "corpus": len(entries)}
    if reingest or collection is None:
        Collection.objects.filter(owner=user).delete()
        collection = services.collection_create(owner=user, name=name)
    started = time.monotonic()
    outcomes: dict[str, int] = defaultdict(int)
    mine = entries[shard[0] :: shard[1]]
    for number, entry in enumerate(mine, 1):
        text = f"# {entry.get('title', '')}\n\n{entry['text']}\n".encode()
        document, _ = services.document_upload(
            uploader=user,
            collection=collection,
            chunks=[text],
            filename=f"{entry['_id']}.md",
            title=entry["_id"],
            enqueue=False,
        )
        outcomes[services.document_ingest(document_id=document.pk)] += 1
        if number % 100 == 0:
            rate = number / (time.monotonic() - started)
            print(f"ingested {number}/{len(mine)} ({rate:.2f} docs/s)", file=sys.stderr)
    seconds = time.monotonic() - started
    return user, collection, {"cached": False, "seconds": round(seconds, 1), **outcomes}


def document_ranking(hits: list[Any], limit: int = 100) -> list[tuple[str, float]]:
    """Documents in order of their best chunk (the hits are best first)."""
    seen: dict[str, float] = {}
    for hit in hits:
        if hit.document_title not in seen:
            seen[hit.document_title] = float(hit.score)
    return list(seen.items())[:limit]


def ndcg_at(ranking: list[str], relevant: dict[str, int], k: int = 10) -> float:
    gains = [relevant.get(doc, 0) for doc in ranking[:k]]
    dcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranking: list[str], relevant: dict[str, int], k: int = 100) -> float:
    found = sum(1 for doc in ranking[:k] if relevant.get(doc, 0) > 0)
    wanted = sum(1 for score in relevant.values() if score > 0)
    return found / wanted if wanted else 0.0


FUSION_GRID_K = (10, 20, 30, 60, 100)
FUSION_GRID_WEIGHT = (0.5, 0.7, 0.85, 1.0, 1.2)


def fused_ranking(branches: dict[str, list[Any]], *, rrf_k: int, text_weight: float) -> list[str]:
    """The hybrid document ranking the SQL fusion would give with these parameters, from the
    two branches' own rankings (the same candidates, fused the same way)."""
    scores: dict[int, float] = defaultdict(float)
    documents: dict[int, str] = {}
    for mode, weight in (("vector", 1.0), ("text", text_weight)):
        for rank, hit in enumerate(branches[mode], 1):
            scores[hit.chunk_id] += weight / (rrf_k + rank)
            documents[hit.chunk_id] = hit.document_title
    best = sorted(scores, key=lambda chunk: (-scores[chunk], chunk))[:CHUNKS_PER_QUERY]
    return list(dict.fromkeys(documents[chunk] for chunk in best))[:100]


def fusion_grid(
    branch_hits: list[tuple[dict[str, int], dict[str, list[Any]]]],
) -> list[dict[str, float]]:
    """nDCG@10 over the queries for each (RRF k, full-text weight) of the grid."""
    rows = []
    for rrf_k in FUSION_GRID_K:
        for weight in FUSION_GRID_WEIGHT:
            values = [
                ndcg_at(fused_ranking(branches, rrf_k=rrf_k, text_weight=weight), relevant)
                for relevant, branches in branch_hits
            ]
            rows.append({"rrf_k": rrf_k, "text_weight": weight,
                         "ndcg@10": round(sum(values) / len(values), 4)})  # fmt: skip
    return rows


def evaluate(
    user: Any,
    collection: Any,
    queries: list[dict[str, Any]],
    qrels: dict[str, dict[str, int]],
    *,
    grid: bool = False,
) -> tuple[dict[str, Any], dict[str, list[tuple[str, float]]]]:
    from knowledge.selectors import chunk_search, query_embedding

    scores: dict[str, dict[str, list[float]]] = {
        mode: {"ndcg@10": [], "recall@100": []} for mode in MODES
    }
    hybrid_runs: dict[str, list[tuple[str, float]]] = {}
    branch_hits: list[tuple[dict[str, int], dict[str, list[Any]]]] = []
    for query in queries:
        relevant = qrels[query["_id"]]
        embedding = query_embedding(query["text"])  # once for the modes that use it
        branches: dict[str, list[Any]] = {}
        branch_hits.append((relevant, branches))
        for mode in MODES:
            hits = chunk_search(
                user=user,
                query=query["text"],
                k=CHUNKS_PER_QUERY,
                collection_ids=[collection.pk],
                mode=mode,  # type: ignore[arg-type]
                embedding=embedding,
            )
            branches[mode] = hits
            ranking = document_ranking(hits)
            docs = [doc for doc, _ in ranking]
            scores[mode]["ndcg@10"].append(ndcg_at(docs, relevant))
            scores[mode]["recall@100"].append(recall_at(docs, relevant))
            if mode == "hybrid":
                hybrid_runs[query["_id"]] = ranking
    report: dict[str, Any] = {
        mode: {name: round(sum(values) / len(values), 4) for name, values in metrics.items()}
        for mode, metrics in scores.items()
    }
    if grid:
        report["fusion_grid"] = fusion_grid(branch_hits)
    return report, hybrid_runs


def run_write(path: Path, runs: dict[str, list[tuple[str, float]]]) -> None:
    """TREC run lines. Fused scores tie often (1 / (k + rank) of one branch), and trec_eval
    orders ties by its own rule, so each score is lowered by rank x 1e-9 to keep our order."""
    lines = [
        f"{query_id} Q0 {doc_id} {rank} {score - rank * 1e-9:.9f} chatbot-hybrid"
        for query_id, ranking in runs.items()
        for rank, (doc_id, score) in enumerate(ranking, 1)
    ]
    path.write_text("\n".join(lines) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_DATA / "corpus.jsonl")
    parser.add_argument("--queries", type=Path, default=DEFAULT_DATA / "queries.jsonl")
    parser.add_argument("--qrels", type=Path, default=DEFAULT_DATA / "qrels" / "train.tsv")
    parser.add_argument("--run-out", type=Path, help="Write the hybrid run (TREC format) here.")
    parser.add_argument("--limit-queries", type=int, default=0, help="Only the first N queries.")
    parser.add_argument("--reingest", action="store_true", help="Ignore the cached corpus.")
    parser.add_argument(
        "--ingest-shard", help="i/n: only ingest every n-th entry from i, then stop."
    )
    parser.add_argument(
        "--no-ingest", action="store_true", help="Evaluate on what is ingested already."
    )
    parser.add_argument(
        "--embed-cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="Directory of the embedding cache (bench/embedding_cache.py).",
    )
    parser.add_argument(
        "--fusion-grid",
        action="store_true",
        help="Also score the hybrid fusion over a grid of RRF k and full-text weights.",
    )
    parser.add_argument("--no-embed-cache", action="store_true", help="Embed everything anew.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.corpus.exists():
        print(f"skipped: {args.corpus} is absent", file=sys.stderr)
        return 0
    django_setup_bench_database()
    cache = None if args.no_embed_cache else embedding_cache_install(args.embed_cache)
    qrels = read_qrels(args.qrels)
    judged = frozenset(doc for docs in qrels.values() for doc in docs)
    if args.ingest_shard:
        index, count = (int(part) for part in args.ingest_shard.split("/"))
        print(corpus_ingest(args.corpus, reingest=False, shard=(index, count), first=judged)[2])
        return 0
    user, collection, ingestion = corpus_ingest(
        args.corpus, reingest=args.reingest, first=judged, ingest=not args.no_ingest
    )
    from knowledge.text_stats import lexeme_stats_refresh

    lexeme_stats_refresh()  # what the beat task keeps up to date in production
    queries = [q for q in read_jsonl(args.queries) if q["_id"] in qrels]
    if args.limit_queries:
        queries = queries[: args.limit_queries]
    started = time.monotonic()
    report, runs = evaluate(user, collection, queries, qrels, grid=args.fusion_grid)
    result = {
        "corpus": str(args.corpus),
        "qrels": str(args.qrels),
        "queries": len(queries),
        "ingestion": ingestion,
        "embedding_cache": {"hits": cache.hits, "misses": cache.misses} if cache else None,
        "search_seconds": round(time.monotonic() - started, 1),
        **report,
    }
    if args.run_out:
        run_write(args.run_out, runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "retrieval_eval.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
