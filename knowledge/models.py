"""Collections of documents, the documents, and their chunks (pgvector + full-text)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

# The full-text configuration of Chunk.search; the search SQL must use the same one.
SEARCH_CONFIG = "english"


class EmbeddingField(VectorField):
    """A vector column sized by ``EMBEDDING_DIMENSIONS``.

    The size stays out of migrations (``deconstruct``): it is a deployment setting. A new
    database gets the configured size; an existing one gets a changed size from
    ``manage.py reindex``, which also re-embeds every chunk.
    """

    def __init__(self, *args: object, dimensions: int | None = None, **kwargs: object) -> None:
        super().__init__(*args, dimensions=dimensions or settings.EMBEDDING_DIMENSIONS, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[object], dict[str, object]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("dimensions", None)
        return name, path, args, kwargs


class Collection(models.Model):
    """A set of documents that the same people may read."""

    class Visibility(models.TextChoices):
        OWNER = "owner", "Owner only"
        RESTRICTED = "restricted", "Named groups or departments"
        EVERYONE = "everyone", "Everyone"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections"
    )
    visibility = models.CharField(
        max_length=20, choices=Visibility.choices, default=Visibility.OWNER
    )
    groups = models.ManyToManyField(
        Group, blank=True, related_name="collections", help_text="Readers when restricted."
    )
    departments = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Departments (see the user's department) whose members read it when restricted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="collection_owner_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    """One uploaded file and the state of its ingestion (queued -> processing -> ready|failed)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    file = models.FileField(upload_to="documents/", max_length=300)
    filename = models.CharField(
        max_length=255, blank=True, help_text="The name it was uploaded as."
    )
    media_type = models.CharField(max_length=150, blank=True)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    error_code = models.CharField(max_length=50, blank=True)
    error_reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The version whose chunks are (or are being made) current; bumped by each ingestion run.
    version = models.PositiveIntegerField(default=0)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="uploaded_documents",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    ingested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "sha256"], name="document_collection_sha256_unique"
            )
        ]
        indexes = [models.Index(fields=["status", "status_changed_at"], name="document_stuck")]

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    """A passage of a document version: its text, where it was, its embedding."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # Denormalised from the document so the search filters permissions without a join.
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    page = models.PositiveIntegerField(null=True, blank=True)
    section = models.CharField(max_length=500, blank=True)
    embedding = EmbeddingField()
    search = models.GeneratedField(
        expression=SearchVector("section", weight="A", config=SEARCH_CONFIG)
        + SearchVector("text", weight="B", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document", "version", "ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "version", "ordinal"], name="chunk_document_version_ordinal"
            )
        ]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            # No pending list: a search would scan it whole until the next vacuum merged it,
            # which cost milliseconds at every query after a busy ingestion.
            GinIndex(fields=["search"], name="chunk_search_gin", fastupdate=False),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal} (v{self.version})"


class LexemeStat(models.Model):
    """How many chunks of a collection hold a full-text lexeme: the document frequencies of
    the BM25 ranking, and what the search uses to match a question by its rarest terms.

    Kept up to date in the transaction that writes or deletes chunks
    (``services.text_stats_apply``); the beat task ``knowledge.lexeme_stats_refresh`` recounts
    everything, repairing any drift and dropping lexemes no chunk holds any more.
    """

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="+")
    lexeme = models.TextField()
    chunks = models.IntegerField()

    class Meta:
        constraints = [
            # Lexeme first: the search looks a lexeme up across the readable collections.
            models.UniqueConstraint(
                fields=["lexeme", "collection"], name="lexemestat_lexeme_collection"
            )
        ]

    def __str__(self) -> str:
        return f"{self.lexeme}: {self.chunks}"


class CollectionTextStat(models.Model):
    """A collection's chunk count and total full-text length (distinct lexemes per chunk,
    summed): the BM25 ranking's corpus size and average chunk length. Kept with ``LexemeStat``."""

    collection = models.OneToOneField(
        Collection, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    chunks = models.BigIntegerField(default=0)
    lexemes = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.collection_id}: {self.chunks} chunks"
