"""Celery tasks: thin shells that take ids and call a service."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from knowledge import services, text_stats
from knowledge.progress import progress_publish

RETRY_BACKOFF_SECONDS = 10


@shared_task(
    bind=True,
    name="knowledge.document_ingest",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.KNOWLEDGE_TASK_TIME_LIMIT - 30,
    time_limit=settings.KNOWLEDGE_TASK_TIME_LIMIT,
    max_retries=settings.KNOWLEDGE_MAX_ATTEMPTS,
)
def document_ingest_task(self: Any, document_id: int) -> str:
    """Ingest one document; transient errors retry with backoff, the last one fails it."""
    try:
        return services.document_ingest(document_id=document_id, progress=progress_publish)
    except SoftTimeLimitExceeded:
        reason = "Reading this document took longer than the time limit."
        services.document_fail(document_id=document_id, code="timeout", reason=reason)
        return "failed"
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            reason = f"Ingestion kept failing ({type(exc).__name__}); try again later."
            services.document_fail(document_id=document_id, code="internal", reason=reason)
            raise
        countdown = RETRY_BACKOFF_SECONDS * 2**self.request.retries
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="knowledge.documents_requeue_stuck")
def documents_requeue_stuck_task() -> int:
    return len(services.documents_requeue_stuck())


@shared_task(name="knowledge.lexeme_stats_refresh")
def lexeme_stats_refresh_task() -> int:
    return text_stats.lexeme_stats_refresh()
