"""Re-embed every chunk, after a change of embedding model or of ``EMBEDDING_DIMENSIONS``.

A changed size cannot be cast: the column is altered to the new size with zero vectors as
placeholders (the HNSW index is dropped first and rebuilt at the end, which is also faster
than updating it row by row), then every chunk gets its new embedding in batches. Until it
finishes, vector search is meaningless; full-text search keeps working.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction

from knowledge.models import Chunk

INDEX_SQL = (
    "CREATE INDEX chunk_embedding_hnsw ON knowledge_chunk"
    " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
)


def embedding_column_dimensions() -> int:
    """The size of the embedding column in the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT atttypmod FROM pg_attribute"
            " WHERE attrelid = 'knowledge_chunk'::regclass AND attname = 'embedding'"
        )
        return int(cursor.fetchone()[0])


@transaction.atomic
def embedding_column_resize(*, dimensions: int) -> None:
    """Drop the HNSW index and give the column the new size (placeholder zero vectors)."""
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
        size = int(dimensions)  # an integer in the DDL: type modifiers cannot be parameters
        cursor.execute(
            f"ALTER TABLE knowledge_chunk ALTER COLUMN embedding TYPE vector({size})"
            f" USING array_fill(0, ARRAY[{size}])::vector({size})"
        )


def chunks_reembed(*, report: Callable[[int, int], None] | None = None) -> int:
    """Resize the column when the setting changed, then re-embed every chunk; returns how many."""
    from knowledge.signals import embeddings_replaced
    from llm.embeddings import embedding_provider

    provider = embedding_provider()
    dimensions = int(settings.EMBEDDING_DIMENSIONS)
    if embedding_column_dimensions() != dimensions:
        embedding_column_resize(dimensions=dimensions)
    embeddings_replaced.send(sender="knowledge.Chunk", dimensions=dimensions)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
    ids = list(Chunk.objects.order_by("pk").values_list("pk", flat=True))
    batch_size = settings.EMBEDDING_BATCH_SIZE
    for start in range(0, len(ids), batch_size):
        batch = list(Chunk.objects.filter(pk__in=ids[start : start + batch_size]).only("text"))
        for chunk, vector in zip(batch, provider.embed([c.text for c in batch]), strict=True):
            chunk.embedding = vector
        Chunk.objects.bulk_update(batch, ["embedding"])
        if report:
            report(min(start + batch_size, len(ids)), len(ids))
    with connection.cursor() as cursor:
        # Inside an outer transaction, deferred foreign-key checks must run before an index build.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(INDEX_SQL)
    return len(ids)
