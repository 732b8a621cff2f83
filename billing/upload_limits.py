"""The plan's upload limits on the knowledge base: the largest file, and the storage quota
(the bytes of every document the user uploaded, this one included). 0 means no limit.

Registered with ``knowledge.upload_limits`` in ``BillingConfig.ready``. The quota check runs
in the transaction that creates the document, under a per-user advisory lock held until it
commits, so two uploads at once cannot both pass on the same free space.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Sum

from billing.plan_cache import plan_for_user_cached
from billing.selectors import plan_for_user
from knowledge.exceptions import StorageQuotaExceeded, TooLarge

# The first key of this lock's two-key advisory lock (the second is the user id).
STORAGE_LOCK_NAMESPACE = 0x6271  # "bq"


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


class PlanUploadLimit:
    """``knowledge.upload_limits.UploadLimit`` from the uploader's plan."""

    def max_bytes(self, *, uploader: Any) -> int | None:
        return plan_for_user_cached(user_id=uploader.pk).max_upload_bytes or None

    def admit(self, *, uploader: Any, size: int) -> None:
        plan = plan_for_user(user_id=uploader.pk)
        if plan.max_upload_bytes and size > plan.max_upload_bytes:
            limit = megabytes(plan.max_upload_bytes)
            raise TooLarge(f"the file is larger than your plan's limit of {limit}")
        if not plan.storage_bytes:
            return
        stored = storage_used_locked(user_id=uploader.pk)
        if stored + size > plan.storage_bytes:
            raise StorageQuotaExceeded(
                f"this file ({megabytes(size)}) would pass your plan's storage of"
                f" {megabytes(plan.storage_bytes)} ({megabytes(stored)} used)"
            )


def storage_used_locked(*, user_id: int) -> int:
    """Bytes of the user's uploaded documents, after taking the user's storage lock (held to
    the end of the transaction)."""
    from knowledge.models import Document

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [STORAGE_LOCK_NAMESPACE, user_id])
    used = Document.objects.filter(uploader_id=user_id).aggregate(total=Sum("size"))["total"]
    return int(used or 0)
