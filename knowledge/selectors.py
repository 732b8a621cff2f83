"""Reads. Collections and documents a client names are loaded through functions that check
the user; retrieval filters by the same permissions inside its SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet

from knowledge import search_sql
from knowledge.exceptions import NotFound
from knowledge.models import SEARCH_CONFIG, Collection, Document

SearchMode = Literal["hybrid", "vector", "text"]
# Fusion: score = 1 / (RRF_K + vector rank) + TEXT_WEIGHT / (RRF_K + full-text rank).
# Chosen on the SciFact training queries only (bench.retrieval_eval --fusion-grid, k in 10..100,
# weight in 0.5..1.2): k 10, weight 1 gave hybrid nDCG@10 0.728 against 0.722 for the usual
# k 60; every weight below 1 was worse (bench/README.md).
RRF_K = 10
TEXT_WEIGHT = 1.0
# BM25's usual parameters (Robertson; Lucene's defaults), not tuned here.
BM25_K1 = 1.2
BM25_B = 0.75
# How many candidates each branch hands to the fusion, at least (more when k is larger).
MIN_CANDIDATES = 40


def readable_collections(*, user: Any) -> QuerySet[Collection]:
    """Collections ``user`` may read; the SQL twin is ``search_sql.READABLE_SQL``."""
    if not getattr(user, "is_authenticated", False):
        return Collection.objects.none()
    restricted = Q(groups__in=user.groups.all())
    if user.department:
        restricted |= Q(departments__contains=[user.department])
    allowed = (
        Q(owner_id=user.pk)
        | Q(visibility=Collection.Visibility.EVERYONE)
        | (Q(visibility=Collection.Visibility.RESTRICTED) & restricted)
    )
    return Collection.objects.filter(pk__in=Collection.objects.filter(allowed).values("pk"))


def collection_list_for_user(*, user: Any) -> list[Collection]:
    """Every collection the user may read, by name (one query)."""
    return list(readable_collections(user=user).select_related("owner"))


def collection_get_for_user(*, user: Any, collection_id: int) -> Collection:
    """A collection the user may read, or ``NotFound`` (also for one that exists but is not
    theirs to read: its existence is not revealed)."""
    try:
        return readable_collections(user=user).get(pk=collection_id)
    except Collection.DoesNotExist:
        raise NotFound("collection not found") from None


def collection_get_for_writer(*, user: Any, collection_id: int) -> Collection:
    """A collection the user may add documents to: their own (staff: any they can read)."""
    collection = collection_get_for_user(user=user, collection_id=collection_id)
    if collection.owner_id != user.pk and not user.is_staff:
        raise NotFound("collection not found")
    return collection


def document_get_for_user(*, user: Any, document_id: int) -> Document:
    """A document in a collection the user may read, or ``NotFound``."""
    readable = readable_collections(user=user)
    try:
        return Document.objects.select_related("collection").get(
            pk=document_id, collection__in=readable
        )
    except Document.DoesNotExist:
        raise NotFound("document not found") from None


def document_get_for_writer(*, user: Any, document_id: int) -> Document:
    """A document the user may delete: in their own collection, or they uploaded it, or staff."""
    document = document_get_for_user(user=user, document_id=document_id)
    mine = document.collection.owner_id == user.pk or document.uploader_id == user.pk
    if not (mine or user.is_staff):
        raise NotFound("document not found")
    return document


def readable_collection_ids(*, user: Any) -> list[int]:
    """The ids of the collections ``user`` may read, in ascending order (one query)."""
    if not getattr(user, "is_authenticated", False):
        return []
    with connection.cursor() as cursor:
        cursor.execute(search_sql.READABLE_IDS_SQL, {"user_id": user.pk, "collection_ids": None})
        row = cursor.fetchone()
    return list(row[0]) if row else []


def searchable_exists(*, user: Any) -> bool:
    """Whether the user may read any ready document (else a search can skip the embedding)."""
    if not getattr(user, "is_authenticated", False):
        return False
    with connection.cursor() as cursor:
        cursor.execute(search_sql.SEARCHABLE_SQL, {"user_id": user.pk, "collection_ids": None})
        row = cursor.fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: int
    document_id: int
    document_title: str
    collection_id: int
    collection_name: str
    page: int | None
    section: str
    text: str
    score: float
    vector_rank: int | None
    text_rank: int | None
    document_version: int = 0  # the version the chunk belongs to (the document's current)


def vector_literal(embedding: Sequence[float]) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in embedding) + "]"


def query_embedding(query: str) -> list[float]:
    from llm.embeddings import embedding_provider

    return embedding_provider().embed_query(query)


def search_params(
    *,
    user: Any,
    query: str,
    k: int,
    collection_ids: Sequence[int] | None,
    mode: SearchMode,
    embedding: Sequence[float] | None = None,
) -> dict[str, Any]:
    candidates = max(MIN_CANDIDATES, k)
    if mode == "text":
        embedding = [0.0] * settings.EMBEDDING_DIMENSIONS  # unused: the branch asks for 0 rows
    elif embedding is None:
        embedding = query_embedding(query)
    return {
        "user_id": user.pk,
        "collection_ids": list(collection_ids) if collection_ids is not None else None,
        "embedding": vector_literal(embedding),
        "vector_candidates": candidates if mode != "text" else 0,
        "text_candidates": candidates if mode != "vector" else 0,
        "config": SEARCH_CONFIG,
        "query": query,
        "bm25_k1": BM25_K1,
        "bm25_b": BM25_B,
        "text_weight": TEXT_WEIGHT,
        "text_match_budget": settings.KNOWLEDGE_TEXT_MATCH_BUDGET,
        "text_scan_limit": settings.KNOWLEDGE_TEXT_MATCH_BUDGET * 2,
        "rrf_k": RRF_K,
        "ef_search": str(max(settings.KNOWLEDGE_HNSW_EF_SEARCH, candidates)),
        "k": k,
    }


def chunk_search(
    *,
    user: Any,
    query: str,
    k: int = 8,
    collection_ids: Sequence[int] | None = None,
    mode: SearchMode = "hybrid",
    embedding: Sequence[float] | None = None,
) -> list[ChunkHit]:
    """The ``k`` chunks best matching ``query`` that ``user`` may read, best first.

    ``mode`` "vector" or "text" runs one branch alone (for evaluation); "hybrid" fuses both.
    ``embedding``: the query's embedding when the caller has it already (benchmarks).
    """
    if not query.strip() or k <= 0 or not getattr(user, "is_authenticated", False):
        return []
    params = search_params(
        user=user,
        query=query,
        k=k,
        collection_ids=collection_ids,
        mode=mode,
        embedding=embedding,
    )
    # One statement, one round trip: it sets its own HNSW settings (search_sql.SETTINGS_SQL).
    with connection.cursor() as cursor:
        cursor.execute(search_sql.SEARCH_SQL, params)
        rows = cursor.fetchall()
    return [ChunkHit(*row) for row in rows]


def chunk_search_exact_ids(*, user: Any, embedding: Sequence[float], k: int) -> list[int]:
    """The ids of the ``k`` nearest readable chunks by an exact scan (the recall baseline)."""
    params = {"user_id": user.pk, "collection_ids": None, "k": k}
    params["embedding"] = vector_literal(embedding)
    with transaction.atomic(), connection.cursor() as cursor:
        # The exact answer: no index, every row compared.
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(search_sql.EXACT_VECTOR_SQL, params)
        return [row[0] for row in cursor.fetchall()]
