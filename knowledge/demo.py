"""The demo collection: the product's own documentation, readable by everyone, ingested now."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from knowledge import services
from knowledge.models import Collection

DEMO_COLLECTION = "Product documentation"


def demo_collection_seed(*, owner_username: str) -> dict[str, int]:
    """Ingest README.md and docs/*.md into the demo collection (again: nothing new to do)."""
    owner = get_user_model().objects.get(username=owner_username)
    collection = services.collection_ensure(
        owner=owner, name=DEMO_COLLECTION, visibility=Collection.Visibility.EVERYONE
    )
    base = settings.BASE_DIR
    paths = [base / "README.md", *sorted((base / "docs").glob("*.md"))]
    return services.documents_ingest_paths(
        uploader=owner, collection=collection, paths=[p for p in paths if p.is_file()]
    )
