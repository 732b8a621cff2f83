"""Per-collection lexeme counts and chunk lengths (BM25 statistics), filled from the chunks;
the full-text GIN index without a pending list."""

import django.contrib.postgres.indexes
import django.db.models.deletion
from django.db import migrations, models

FILL_SQL = """
INSERT INTO knowledge_lexemestat (collection_id, lexeme, chunks)
SELECT ch.collection_id, lexeme, count(*)
FROM knowledge_chunk ch, unnest(tsvector_to_array(ch.search)) AS lexeme
GROUP BY ch.collection_id, lexeme;
INSERT INTO knowledge_collectiontextstat (collection_id, chunks, lexemes)
SELECT collection_id, count(*), coalesce(sum(length(search)), 0)
FROM knowledge_chunk GROUP BY collection_id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0003_lexeme_stat"),
    ]

    operations = [
        migrations.DeleteModel(name="LexemeStat"),
        migrations.CreateModel(
            name="LexemeStat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("lexeme", models.TextField()),
                ("chunks", models.IntegerField()),
                (
                    "collection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="knowledge.collection",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("lexeme", "collection"), name="lexemestat_lexeme_collection"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="CollectionTextStat",
            fields=[
                (
                    "collection",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="knowledge.collection",
                    ),
                ),
                ("chunks", models.BigIntegerField(default=0)),
                ("lexemes", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RemoveIndex(model_name="chunk", name="chunk_search_gin"),
        migrations.AddIndex(
            model_name="chunk",
            index=django.contrib.postgres.indexes.GinIndex(
                fastupdate=False, fields=["search"], name="chunk_search_gin"
            ),
        ),
        migrations.RunSQL(FILL_SQL, migrations.RunSQL.noop),
    ]
