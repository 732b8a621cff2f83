"""Limits on uploads that other apps set (billing: the plan's file size and storage quota),
without the knowledge app knowing about them.

An app registers an ``UploadLimit`` when it is ready. ``document_upload`` streams an upload up
to the smallest ``max_bytes`` (``TooLarge`` past it, before storing the rest), then calls
every ``admit`` in the transaction that creates the document, so a check made under a lock
holds until the document is committed. Local ingestion (``manage.py ingest``, the demo seed)
skips them.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.conf import settings


class UploadLimit(Protocol):
    def max_bytes(self, *, uploader: Any) -> int | None:
        """The largest file ``uploader`` may upload, or None for no limit of this kind."""
        ...

    def admit(self, *, uploader: Any, size: int) -> None:
        """Raise a ``KnowledgeError`` when ``uploader`` may not store ``size`` more bytes.
        Runs inside the transaction that creates the document."""
        ...


registered: list[UploadLimit] = []


def upload_limit_register(limit: UploadLimit) -> None:
    """Add ``limit`` to every upload's checks (once, however often an app is made ready)."""
    if not any(type(known) is type(limit) for known in registered):
        registered.append(limit)


def upload_max_bytes(*, uploader: Any) -> int:
    """The size past which ``uploader``'s upload is refused: the setting, or a smaller limit."""
    limits = [settings.KNOWLEDGE_MAX_UPLOAD_BYTES]
    limits += [size for limit in registered if (size := limit.max_bytes(uploader=uploader))]
    return min(limits)


def upload_admit(*, uploader: Any, size: int) -> None:
    """Every registered check of storing ``size`` more bytes for ``uploader``."""
    for limit in registered:
        limit.admit(uploader=uploader, size=size)
