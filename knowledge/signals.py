"""Events other apps may follow. Sent only after the change has committed.

``document_changed(document_id=...)``: a document's content is about to change or has gone
(queued again, a new ingestion run, deleted). Anything derived from its old text, such as
a cached answer citing it, is stale.

``embeddings_replaced(dimensions=...)``: every chunk was embedded again (``manage.py reindex``),
maybe by another model or at another size: vectors kept elsewhere are stale.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

document_changed = Signal()
embeddings_replaced = Signal()


def document_changed_send(*, document_id: int) -> None:
    """Announce, once the current transaction commits, that ``document_id`` changed."""
    transaction.on_commit(
        lambda: document_changed.send(sender="knowledge.Document", document_id=document_id)
    )
