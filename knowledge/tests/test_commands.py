"""manage.py ingest and reindex."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from knowledge.models import Chunk, Collection, Document
from knowledge.reindex import embedding_column_dimensions
from knowledge.tests.conftest import ingest

pytestmark = pytest.mark.django_db


def test_ingest_reads_files_and_directories_into_a_collection(tmp_path, owner):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Alpha\n\nThe alpha release ships in June.")
    (tmp_path / "b.txt").write_text("Beta notes: the beta has two known bugs.")
    (tmp_path / "empty.txt").write_text("")
    out, err = StringIO(), StringIO()
    call_command(
        "ingest",
        str(tmp_path / "docs"),
        str(tmp_path / "b.txt"),
        str(tmp_path / "empty.txt"),
        collection="Releases",
        owner="owner",
        stdout=out,
        stderr=err,
    )
    collection = Collection.objects.get(name="Releases", owner=owner)
    statuses = dict(collection.documents.values_list("filename", "status"))
    assert statuses == {"a.md": "ready", "b.txt": "ready", "empty.txt": "failed"}
    assert "3 files: 1 failed, 2 ready" in out.getvalue()
    assert "empty.txt" in err.getvalue()  # with the reason


def test_ingest_refuses_a_missing_path(tmp_path, owner):
    with pytest.raises(CommandError):
        call_command("ingest", str(tmp_path / "nope"), collection="X", owner="owner")


def test_reindex_re_embeds_every_chunk_and_keeps_the_index(collection):
    document = ingest(collection, b"Words to embed again, in a sentence or two.")
    Chunk.objects.filter(document=document).update(embedding=[0.5] * 384)
    call_command("reindex", stdout=StringIO(), stderr=StringIO())
    vector = Chunk.objects.get(document=document).embedding
    assert abs(sum(v * v for v in vector) - 1) < 1e-3 and len(set(vector)) > 1
    assert embedding_column_dimensions() == 384
    assert Document.objects.get(pk=document.pk).status == "ready"
