"""The BM25 statistics follow the chunks in the same transaction, per collection, and the
full-text branch ranks by them."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge import selectors, services, text_stats
from knowledge.models import Collection, CollectionTextStat, Document, LexemeStat
from knowledge.tests.conftest import ingest

pytestmark = pytest.mark.django_db

NOTES = [
    b"The heron report covers the budget of the wetland survey.",
    b"Note 1: the budget for the boat was approved by finance.",
    b"Note 2: the budget for the tents was approved by finance.",
]


def counts(collection: Collection) -> dict[str, int]:
    rows = LexemeStat.objects.filter(collection=collection, chunks__gt=0)
    return dict(rows.values_list("lexeme", "chunks"))


def totals(collection: Collection) -> tuple[int, int]:
    stat = CollectionTextStat.objects.get(collection=collection)
    return stat.chunks, stat.lexemes


def ingest_notes(collection: Collection) -> list[Document]:
    return [ingest(collection, text, f"note{n}.txt") for n, text in enumerate(NOTES)]


def test_ingestion_counts_each_lexeme_without_a_refresh(collection):
    ingest_notes(collection)
    assert counts(collection)["budget"] == 3
    assert counts(collection)["heron"] == 1
    assert totals(collection)[0] == 3


def test_the_incremental_counts_equal_a_full_recount(collection):
    documents = ingest_notes(collection)
    services.document_delete(document=documents[0])
    incremental = (counts(collection), totals(collection))
    text_stats.lexeme_stats_refresh()
    assert (counts(collection), totals(collection)) == incremental


def test_ingesting_a_document_again_does_not_count_it_twice(collection):
    documents = ingest_notes(collection)
    before = (counts(collection), totals(collection))
    services.document_reingest(document=documents[1])
    services.document_ingest(document_id=documents[1].pk)
    documents[1].refresh_from_db()
    assert documents[1].status == Document.Status.READY
    assert (counts(collection), totals(collection)) == before


def test_deleting_a_document_subtracts_its_chunks(collection):
    documents = ingest_notes(collection)
    services.document_delete(document=documents[0])
    assert "heron" not in counts(collection)
    assert counts(collection)["budget"] == 2
    assert totals(collection)[0] == 2


def test_counts_are_kept_per_collection(owner, collection):
    other = services.collection_create(owner=owner, name="Other")
    ingest_notes(collection)
    ingest(other, b"A heron and another heron nest by the lake.", "lake.txt")
    assert counts(collection)["heron"] == 1
    assert counts(other) == {"heron": 1, "anoth": 1, "nest": 1, "lake": 1}


def text_titles(user: Any, query: str) -> list[str]:
    hits = selectors.chunk_search(user=user, query=query, k=10, mode="text")
    return [hit.document_title for hit in hits]


def test_a_rare_term_outweighs_a_common_one(owner, collection):
    ingest_notes(collection)
    for n in range(3):
        ingest(collection, f"Budget item {n} for the wetland pumps.".encode(), f"b{n}.txt")
    # "heron" is in 1 of 6 chunks, "finance" in 2 and "budget" in all: IDF decides.
    assert text_titles(owner, "heron finance budget")[0] == "note0"


def test_a_shorter_chunk_ranks_first_for_the_same_single_match(owner, collection):
    filler = " ".join(f"word{n}" for n in range(60))
    ingest(collection, f"The osprey nests here. {filler}".encode(), "long.txt")
    ingest(collection, b"The osprey nests here.", "short.txt")
    ingest(collection, b"Nothing to see.", "other.txt")
    assert text_titles(owner, "osprey") == ["short", "long"]


def test_a_term_repeated_ranks_above_a_term_said_once(owner, collection):
    ingest(collection, b"Kestrel seen at dawn.", "once.txt")  # shorter, yet one mention
    ingest(collection, b"Kestrel seen at dawn; the kestrel hovered, a kestrel again.", "thrice.txt")
    ingest(collection, b"Nothing to see.", "other.txt")
    assert text_titles(owner, "kestrel") == ["thrice", "once"]
