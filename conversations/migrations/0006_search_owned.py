# Search indexes per owner: the GIN indexes move from the plain search vectors to their
# owner-prefixed form (see conversations.models.OWNED_SEARCH_FUNCTION), so a word's posting list
# holds one user's rows. The stored vectors are unchanged: no table rewrite, only the two index
# builds. IF [NOT] EXISTS lets a large database build the index beforehand (e.g. CONCURRENTLY,
# with more maintenance_work_mem) and then migrate.
import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.conf import settings
from django.db import migrations, models

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION search_owned(doc tsvector, owner bigint) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT array_to_tsvector(ARRAY(SELECT owner::text || ':' || lexeme FROM unnest(doc))) $$;
-- The index form of a query: its index-searchable part (querytree drops negations) with
-- phrase operators loosened to AND (the prefixed vectors have no positions) and each lexeme
-- prefixed. A tsquery's text quotes each lexeme ('it''s'); the phrase operators replaced are
-- those followed by an even number of quotes (outside any lexeme), and prefixing inside the
-- quotes keeps weights and prefix marks (:*). The caller checks the exact query on the plain
-- vector. NULL when nothing is index-searchable (a query of only negations).
-- PARALLEL UNSAFE on purpose: it keeps every search statement serial. Parallel workers cost
-- more to start (20-30 ms on a busy 2-core server) than a search's index scan and ranking.
CREATE OR REPLACE FUNCTION search_owned_query(words tsquery, owner bigint) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL UNSAFE
AS $$ SELECT regexp_replace(
    regexp_replace(
        NULLIF(querytree(words), 'T'),
        '<(?:\d+|-)>(?=(?:[^'']*''[^'']*'')*[^'']*$)', '&', 'g'),
    '''((?:[^'']|'''')*)''', '''' || owner::text || ':\1''', 'g')::tsquery $$;
"""
DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS search_owned_query(tsquery, bigint);
DROP FUNCTION IF EXISTS search_owned(tsvector, bigint);
"""


def owned(vector: str) -> models.Func:
    return models.Func(
        models.F(vector),
        models.F("owner_id"),
        function="search_owned",
        output_field=django.contrib.postgres.search.SearchVectorField(),
    )


def index_swap(
    table: str, model: str, vector: str, old: str, new: str
) -> migrations.operations.base.Operation:
    return migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.RunSQL(
                f"CREATE INDEX IF NOT EXISTS {new} ON {table}"
                f" USING gin (search_owned({vector}, owner_id));"
                f" DROP INDEX IF EXISTS {old};",
                f"CREATE INDEX IF NOT EXISTS {old} ON {table} USING gin ({vector});"
                f" DROP INDEX IF EXISTS {new};",
            )
        ],
        state_operations=[
            migrations.RemoveIndex(model_name=model, name=old),
            migrations.AddIndex(
                model_name=model,
                index=django.contrib.postgres.indexes.GinIndex(owned(vector), name=new),
            ),
        ],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0005_merge_0003_moderation_0004_message_owner_required"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        index_swap(
            "conversations_conversation",
            "conversation",
            "title_search",
            "conversation_title_search",
            "title_search_owned",
        ),
        index_swap(
            "conversations_message", "message", "search", "message_search", "message_search_owned"
        ),
    ]
