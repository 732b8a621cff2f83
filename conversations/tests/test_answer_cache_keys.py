"""How requests map to the answer cache's keys and modes (no services needed)."""

from __future__ import annotations

from conversations.answer_cache import (
    cache_mode_of_header,
    question_normalise,
    questions_conflict,
    scope_of,
)


def test_cache_control_directives_map_to_modes() -> None:
    assert cache_mode_of_header("") == "use"
    assert cache_mode_of_header("max-age=0") == "use"
    assert cache_mode_of_header("No-Cache") == "refresh"
    assert cache_mode_of_header("no-cache, no-store") == "skip"


def test_questions_are_normalised_for_the_exact_layer() -> None:
    assert question_normalise("  How do I   RESET my password?? ") == "how do i reset my password"
    fullwidth = "\uff37\uff49\uff46\uff49 password!"  # "Wifi" in fullwidth letters
    assert question_normalise(fullwidth) == "wifi password"


def test_a_scope_changes_with_the_collections_the_model_and_the_prompt(settings) -> None:
    base = scope_of(collection_ids=[3, 1], model="m", system_prompt="p")
    assert base == scope_of(collection_ids=[1, 3], model="m", system_prompt="p")
    assert base != scope_of(collection_ids=[1], model="m", system_prompt="p")
    assert base != scope_of(collection_ids=[1, 3], model="n", system_prompt="p")
    assert base != scope_of(collection_ids=[1, 3], model="m", system_prompt="q")
    settings.ANSWER_CACHE_PROMPT_VERSION = "2"
    assert base != scope_of(collection_ids=[1, 3], model="m", system_prompt="p")


def test_a_question_differing_in_polarity_or_a_number_conflicts() -> None:
    cached = "How do I enable notifications?"
    assert questions_conflict("How do I disable notifications?", cached)
    assert questions_conflict("Pre-mRNAs are less stable.", "Pre-mRNAs are more stable.")
    assert questions_conflict("Drug X inhibits growth.", "Drug X promotes growth.")
    assert questions_conflict("Is the 2024 report out?", "Is the 2025 report out?")
    assert not questions_conflict("How can I enable notifications", cached)
    assert not questions_conflict("What time does it open?", "When does it open?")


def test_a_scope_changes_with_the_embedding_model(settings) -> None:
    before = scope_of(collection_ids=[1], model="m", system_prompt="p")
    settings.EMBEDDING_MODEL = "another-embedding-model"
    assert scope_of(collection_ids=[1], model="m", system_prompt="p") != before
