"""Ingestion progress to the uploader's open pages, over the Channels layer (best effort)."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from knowledge.services import Progress

logger = logging.getLogger(__name__)


def progress_group(user_id: int) -> str:
    """The Channels group of one user's document events."""
    return f"documents.user.{user_id}"


def progress_event(progress: Progress) -> dict[str, Any]:
    """The ``document.progress`` frame (see docs/protocol.md)."""
    event: dict[str, Any] = {
        "type": "document.progress",
        "document_id": progress.document_id,
        "stage": progress.stage,
        "done": progress.done,
        "total": progress.total,
    }
    if progress.error:
        event["error"] = progress.error
    return event


def progress_publish(progress: Progress) -> None:
    """Send ``progress`` to its uploader; a lost event only delays a progress bar."""
    if progress.uploader_id is None:
        return
    message = {**progress_event(progress), "type": "document.progress.event"}
    try:
        async_to_sync(get_channel_layer().group_send)(progress_group(progress.uploader_id), message)
    except Exception:
        logger.warning("progress of document %s not sent", progress.document_id, exc_info=True)
