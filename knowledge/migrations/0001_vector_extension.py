from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector first: chunk embeddings and the semantic cache need the `vector` type."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [VectorExtension()]
