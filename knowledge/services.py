"""Writes: collections, uploads, and ingestion (extract -> chunk -> embed -> replace chunks).

Ingestion is idempotent. A run holds a session advisory lock on its document, so a duplicate
task running at the same time steps aside, while the lock of a killed worker dies with its
database connection and a redelivered task takes over. Each run works on a new version and
swaps the document's chunks in one transaction, so readers see the old set or the new one,
and never two.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from knowledge import upload_limits
from knowledge.exceptions import Conflict, InvalidInput, TooLarge
from knowledge.models import Chunk, Collection, Document
from knowledge.signals import document_changed_send
from knowledge.text_stats import text_stats_apply

logger = logging.getLogger(__name__)

# The namespace of this app's advisory locks (the first key of the two-key form).
INGEST_LOCK_NAMESPACE = 0x6B6E
MAX_TITLE = 300
UPLOAD_DIR = "documents"


# --- Collections ------------------------------------------------------------------------------


@transaction.atomic
def collection_create(
    *,
    owner: Any,
    name: str,
    description: str = "",
    visibility: str = Collection.Visibility.OWNER,
    group_names: Sequence[str] = (),
    departments: Sequence[str] = (),
) -> Collection:
    """A new collection owned by ``owner``; ``Conflict`` when they already have one so named."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a collection needs a name of 1 to 200 characters")
    if visibility not in Collection.Visibility.values:
        raise InvalidInput(f"visibility must be one of {', '.join(Collection.Visibility.values)}")
    if Collection.objects.filter(owner=owner, name=name).exists():
        raise Conflict("you already have a collection with this name")
    collection = Collection.objects.create(
        owner=owner,
        name=name,
        description=description,
        visibility=visibility,
        departments=[d.strip() for d in departments if d.strip()],
    )
    if group_names:
        collection.groups.set(Group.objects.filter(name__in=group_names))
    return collection


# --- Uploads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    size: int
    sha256: str


def upload_store(*, chunks: Iterable[bytes], max_bytes: int) -> StoredUpload:
    """Copy an upload to a temporary file under MEDIA_ROOT, hashing it and stopping at the
    size limit (``TooLarge``) instead of writing the whole thing first."""
    temporary = Path(settings.MEDIA_ROOT) / UPLOAD_DIR / "incoming" / uuid.uuid4().hex
    temporary.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with temporary.open("wb") as out:
            for piece in chunks:
                size += len(piece)
                if size > max_bytes:
                    raise TooLarge(f"the file is larger than the limit of {max_bytes} bytes")
                digest.update(piece)
                out.write(piece)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return StoredUpload(temporary, size, digest.hexdigest())


def stored_name(*, collection_id: int, sha256: str) -> str:
    # Content-addressed: the same file in the same collection is one file on disk.
    return f"{UPLOAD_DIR}/{collection_id}/{sha256[:2]}/{sha256}"


def document_upload(
    *,
    uploader: Any,
    collection: Collection,
    chunks: Iterable[bytes],
    filename: str,
    title: str = "",
    enqueue: bool = True,
    limited: bool = True,
) -> tuple[Document, bool]:
    """Store an upload in ``collection`` and queue its ingestion; returns (document, created).

    The same bytes uploaded twice to one collection are one document: the second upload
    returns the first document and queues nothing. The caller checked that ``uploader`` may
    write to ``collection``. ``enqueue=False`` leaves ingestion to the caller (in-process).
    ``limited=False`` skips the registered upload limits (``knowledge.upload_limits``: plan
    file size and storage quota) for local ingestion; the setting's size limit always holds.
    """
    filename = Path(filename or "upload").name[:255]
    max_bytes = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if limited:
        max_bytes = upload_limits.upload_max_bytes(uploader=uploader)
    # An empty file is accepted: ingestion fails it with a reason, like any unreadable file.
    upload = upload_store(chunks=chunks, max_bytes=max_bytes)
    try:
        return document_create(
            uploader=uploader,
            collection=collection,
            upload=upload,
            filename=filename,
            title=title,
            enqueue=enqueue,
            limited=limited,
        )
    finally:
        upload.path.unlink(missing_ok=True)


def document_create(
    *,
    uploader: Any,
    collection: Collection,
    upload: StoredUpload,
    filename: str,
    title: str,
    enqueue: bool,
    limited: bool = True,
) -> tuple[Document, bool]:
    existing = Document.objects.filter(collection=collection, sha256=upload.sha256).first()
    if existing is not None:
        return existing, False
    name = stored_name(collection_id=collection.pk, sha256=upload.sha256)
    final = Path(settings.MEDIA_ROOT) / name
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        with transaction.atomic():
            if limited:  # under the checks' locks until the document is committed
                upload_limits.upload_admit(uploader=uploader, size=upload.size)
            upload.path.replace(final)
            document = Document.objects.create(
                collection=collection,
                title=(title.strip() or filename)[:MAX_TITLE],
                file=name,
                filename=filename,
                size=upload.size,
                sha256=upload.sha256,
                uploader=uploader,
            )
            if enqueue:
                transaction.on_commit(lambda: ingest_enqueue(document_id=document.pk))
    except IntegrityError:  # the same file uploaded at the same moment: one document
        return Document.objects.get(collection=collection, sha256=upload.sha256), False
    return document, True


def ingest_enqueue(*, document_id: int) -> None:
    from knowledge.tasks import document_ingest_task

    document_ingest_task.apply_async(args=(document_id,), queue=settings.KNOWLEDGE_INGEST_QUEUE)


@transaction.atomic
def document_reingest(*, document: Document) -> None:
    """Queue ``document`` for ingestion again, from scratch (attempts reset)."""
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.QUEUED,
        attempts=0,
        error_code="",
        error_reason="",
        status_changed_at=timezone.now(),
    )
    transaction.on_commit(lambda: ingest_enqueue(document_id=document.pk))
    document_changed_send(document_id=document.pk)


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Delete ``document``, its chunks and, after commit, its stored file."""
    path = Path(document.file.path) if document.file else None
    text_stats_apply(
        collection_id=document.collection_id, document_id=document.pk, version=None, sign=-1
    )
    document_id = document.pk
    Chunk.objects.filter(document_id=document.pk).delete()
    document.delete()
    document_changed_send(document_id=document_id)
    if path is not None:
        transaction.on_commit(lambda: path.unlink(missing_ok=True))


def documents_requeue_stuck(*, older_than: timedelta | None = None) -> list[int]:
    """Queue again documents left ``queued`` or ``processing`` for longer than the bound
    (a lost message, a worker that died): returns their ids."""
    bound = older_than or timedelta(seconds=settings.KNOWLEDGE_STUCK_SECONDS)
    now = timezone.now()
    stuck = Document.objects.filter(
        status__in=[Document.Status.QUEUED, Document.Status.PROCESSING],
        status_changed_at__lt=now - bound,
    )
    with transaction.atomic():
        ids = list(stuck.select_for_update(skip_locked=True).values_list("pk", flat=True))
        Document.objects.filter(pk__in=ids).update(status_changed_at=now)
        for document_id in ids:
            transaction.on_commit(lambda d=document_id: ingest_enqueue(document_id=d))  # type: ignore[misc]
    return ids


# --- Ingestion --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """What an ingestion run reports as it goes (see ``knowledge.progress``)."""

    document_id: int
    uploader_id: int | None
    stage: str  # extracting | embedding | ready | failed
    done: int = 0
    total: int = 0
    error: str = ""


ProgressCallback = Callable[[Progress], None]


@contextlib.contextmanager
def ingest_lock(document_id: int) -> Iterator[bool]:
    """A session advisory lock on the document: held by at most one run; released when the
    run ends or when its database connection dies with a killed worker."""
    key = (INGEST_LOCK_NAMESPACE, document_id % 2**31)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


@transaction.atomic
def document_claim(*, document_id: int) -> Document | None:
    """Start a run: a new version, one more attempt. None when there is nothing to do (gone,
    ready, failed) or the attempts are spent (then the document fails)."""
    document = Document.objects.select_for_update().filter(pk=document_id).first()
    active = {Document.Status.QUEUED, Document.Status.PROCESSING}
    if document is None or document.status not in active:
        return None
    if document.attempts >= settings.KNOWLEDGE_MAX_ATTEMPTS:
        reason = f"Ingestion was tried {document.attempts} times without success; giving up."
        document_fail(document_id=document_id, code="attempts_exhausted", reason=reason)
        return None
    document.attempts += 1
    document.version += 1
    if document.version > 1:  # a new version of a document that had one
        document_changed_send(document_id=document_id)
    document.status = Document.Status.PROCESSING
    document.status_changed_at = timezone.now()
    document.progress_done = document.progress_total = 0
    document.save(
        update_fields=[
            "attempts",
            "version",
            "status",
            "status_changed_at",
            "progress_done",
            "progress_total",
            "updated_at",
        ]
    )
    return document


def document_fail(*, document_id: int, code: str, reason: str) -> None:
    """Mark a document failed for good with a reason a person understands."""
    Document.objects.filter(pk=document_id).exclude(status=Document.Status.READY).update(
        status=Document.Status.FAILED,
        error_code=code,
        error_reason=reason,
        status_changed_at=timezone.now(),
        updated_at=timezone.now(),
    )


@dataclass(frozen=True)
class Embedded:
    drafts: list[Any]
    embeddings: list[list[float]]
    page_count: int | None
    media_type: str
    title: str


def document_ingest(*, document_id: int, progress: ProgressCallback | None = None) -> str:
    """Turn a queued document into its chunks; the body of the Celery task.

    Returns what happened: ``ready``, ``failed``, ``busy`` (another run holds the document)
    or ``skipped`` (nothing to do). A document the extractor rejects ends ``failed`` with the
    extractor's reason; other errors propagate for the task to retry.
    """
    report = progress or (lambda event: None)
    with ingest_lock(document_id) as acquired:
        if not acquired:
            return "busy"
        document = document_claim(document_id=document_id)
        if document is None:
            return "skipped"
        return document_process(document=document, report=report)


def document_process(*, document: Document, report: ProgressCallback) -> str:
    from knowledge.extraction import ExtractionError

    uploader_id = document.uploader_id
    try:
        embedded = document_embed(document=document, report=report)
    except ExtractionError as exc:
        document_fail(document_id=document.pk, code=exc.code, reason=exc.reason)
        report(Progress(document.pk, uploader_id, "failed", error=exc.reason))
        return "failed"
    if not chunks_replace(document=document, embedded=embedded):
        return "skipped"
    total = len(embedded.drafts)
    report(Progress(document.pk, uploader_id, "ready", total, total))
    return "ready"


def document_embed(*, document: Document, report: ProgressCallback) -> Embedded:
    from knowledge.chunking import chunks_make
    from knowledge.extraction import ExtractionError, document_extract
    from llm.embeddings import embedding_provider

    report(Progress(document.pk, document.uploader_id, "extracting"))
    extracted = document_extract(path=Path(document.file.path), name=document.filename)
    provider = embedding_provider()
    drafts = chunks_make(extracted=extracted, count_tokens=provider.count_tokens)
    if not drafts:
        raise ExtractionError("no_text", "The document contains no text that could be read.")
    embeddings = embed_batches(document=document, texts=[d.text for d in drafts], report=report)
    return Embedded(drafts, embeddings, extracted.page_count, extracted.media_type, extracted.title)


def embed_batches(*, document: Document, texts: list[str], report: ProgressCallback) -> list[Any]:
    from llm.embeddings import embedding_provider

    provider, embeddings = embedding_provider(), []
    total = len(texts)
    for batch in itertools.batched(texts, settings.EMBEDDING_BATCH_SIZE):
        embeddings.extend(provider.embed(list(batch)))
        progress_record(document=document, done=len(embeddings), total=total)
        report(Progress(document.pk, document.uploader_id, "embedding", len(embeddings), total))
        if settings.KNOWLEDGE_INGEST_PAUSE_SECONDS:
            time.sleep(settings.KNOWLEDGE_INGEST_PAUSE_SECONDS)
    return embeddings


def progress_record(*, document: Document, done: int, total: int) -> None:
    Document.objects.filter(pk=document.pk, version=document.version).update(
        progress_done=done, progress_total=total
    )


@transaction.atomic
def chunks_replace(*, document: Document, embedded: Embedded) -> bool:
    """Swap in this run's chunks and mark the document ready, in one transaction. False when
    the run was superseded (a newer run, a deletion) and nothing was written."""
    current = Document.objects.select_for_update().filter(pk=document.pk).first()
    if current is None or current.version != document.version:
        return False
    if current.status != Document.Status.PROCESSING:
        return False
    stats = {"collection_id": current.collection_id, "document_id": document.pk}
    text_stats_apply(**stats, version=None, sign=-1)
    Chunk.objects.filter(document_id=document.pk).delete()  # every older version's chunks
    Chunk.objects.bulk_create(chunk_rows(document=document, embedded=embedded), batch_size=500)
    text_stats_apply(**stats, version=document.version, sign=1)
    document_ready(document=current, embedded=embedded)
    return True


def chunk_rows(*, document: Document, embedded: Embedded) -> list[Chunk]:
    return [
        Chunk(
            document_id=document.pk,
            collection_id=document.collection_id,
            version=document.version,
            ordinal=draft.ordinal,
            text=draft.text,
            token_count=draft.token_count,
            page=draft.page,
            section=(draft.section or "")[:500],
            embedding=embedding,
        )
        for draft, embedding in zip(embedded.drafts, embedded.embeddings, strict=True)
    ]


def document_ready(*, document: Document, embedded: Embedded) -> None:
    now = timezone.now()
    document.status = Document.Status.READY
    document.chunk_count = document.progress_done = document.progress_total = len(embedded.drafts)
    document.page_count = embedded.page_count
    document.media_type = embedded.media_type
    if embedded.title and document.title == document.filename:
        document.title = embedded.title[:MAX_TITLE]
    document.error_code = document.error_reason = ""
    document.status_changed_at = document.ingested_at = now
    document.save()


# --- Local files (manage.py ingest, the demo seed) ------------------------------------------


def file_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as source:
        while piece := source.read(size):
            yield piece


def files_under(paths: Sequence[Path]) -> list[Path]:
    """The files named, and the files inside the directories named (recursively, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidInput(f"{path}: no such file or directory")
    return found


def collection_ensure(*, owner: Any, name: str, visibility: str) -> Collection:
    """The owner's collection named ``name``, created when missing."""
    existing = Collection.objects.filter(owner=owner, name=name).first()
    return existing or collection_create(owner=owner, name=name, visibility=visibility)


def document_upload_path(
    *, uploader: Any, collection: Collection, path: Path, enqueue: bool = True
) -> Document:
    """Upload a local file (as ``document_upload``); a duplicate returns the existing document."""
    document, _ = document_upload(
        uploader=uploader,
        collection=collection,
        chunks=file_chunks(path),
        filename=path.name,
        enqueue=enqueue,
        limited=False,  # the operator's own files (manage.py ingest, the demo seed)
    )
    return document


def documents_ingest_paths(
    *, uploader: Any, collection: Collection, paths: Sequence[Path]
) -> dict[str, int]:
    """Upload and ingest local files in this process; counts of outcomes (ready, failed...)."""
    outcomes: dict[str, int] = {}
    for path in paths:
        document = document_upload_path(
            uploader=uploader, collection=collection, path=path, enqueue=False
        )
        outcome = document_ingest(document_id=document.pk)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
