"""The answer cache along whole turns: scope (the canary), paraphrases, invalidation, TTL,
bypass, billing, standalone questions only, and the fallback while every provider is down.

Real services throughout: PostgreSQL + pgvector, Redis, the MiniLM embedding model, the fake
OpenAI-compatible server (or the offline provider, which answers from cited sources).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.models import UsageRecord
from billing.reports import DateRange, usage_totals
from billing.rollup import usage_rollup
from chatbot.users.tests.factories import UserFactory
from conversations import streams
from conversations.answer_cache import exact_key
from conversations.models import CachedAnswer, Conversation, Message
from conversations.services import conversation_create
from conversations.tests.conftest import FAKE_MODEL, ChatClient, text_of
from conversations.tests.test_sse import logged_in, read_stream
from knowledge import services as knowledge
from knowledge.models import Collection, Document
from knowledge.tests.conftest import ingest

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("provider_cleanup", "cache_on"),
]

CANARY = "quokkacanary4417"
SECRET = f"The merger code name is {CANARY}. The merger closes in the spring.".encode()
POLICY = b"# Cafeteria\n\nThe cafeteria opens at eight in the morning. Lunch is at noon.\n"
POLICY_CHANGED = b"# Cafeteria\n\nThe cafeteria opens at nine in the morning. Lunch is at one.\n"


@pytest.fixture
def cache_on(settings: Any) -> None:
    settings.ANSWER_CACHE_ENABLED = True
    settings.ANSWER_CACHE_THRESHOLD = 0.83
    settings.ANSWER_CACHE_FALLBACK_THRESHOLD = 0.75


@pytest.fixture(autouse=True)
def media_root(tmp_path: Any, settings: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def offline(settings: Any) -> None:
    """No model configured: the offline provider answers by quoting and citing the sources."""
    settings.OPENAI_BASE_URL = settings.OPENAI_API_KEY = ""
    settings.CHAT_MODELS = []
    settings.LOCAL_LLM = False


async def ask(
    user: Any, content: str, *, model: str | None = None, **frame: Any
) -> list[dict[str, Any]]:
    """Ask ``content`` as the first question of a new conversation; the frames to turn.done."""
    conversation = await sync_to_async(conversation_create)(owner=user, title="t", model=model)
    client = ChatClient(user, conversation.pk)
    assert await client.connect()
    await client.send(type="message.send", content=content, idempotency_key="k", **frame)
    frames = await client.until_done()
    await client.close()
    return frames


async def entries(count: int, timeout: float = 5) -> list[CachedAnswer]:
    """The cache's entries once there are ``count`` (it stores after the turn ends)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [entry async for entry in CachedAnswer.objects.order_by("id")]
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def hits_counted(entry_id: int, expected: int, timeout: float = 5) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entry = await CachedAnswer.objects.aget(pk=entry_id)
        if entry.hit_count >= expected or asyncio.get_running_loop().time() > deadline:
            return entry.hit_count
        await asyncio.sleep(0.05)


def done_of(frames: list[dict[str, Any]]) -> dict[str, Any]:
    done = frames[-1]
    assert done["type"] == "turn.done", done
    return done


@sync_to_async
def library(owner: Any, data: bytes, *, name: str, visibility: str) -> Document:
    collection = knowledge.collection_create(owner=owner, name=name)
    Collection.objects.filter(pk=collection.pk).update(visibility=visibility)
    return ingest(collection, data, f"{name}.md")


# --- Scope: a private document's answer never reaches a user without its collection ----------


@pytest.mark.usefixtures("offline")
async def test_a_private_canary_answer_is_never_served_to_a_user_without_that_collection(
    alice, mallory
):
    staff = await sync_to_async(UserFactory.create)(username="staff")
    await library(staff, POLICY, name="handbook", visibility="everyone")
    await library(alice, SECRET, name="deals", visibility="owner")
    question = f"What is {CANARY}? When does the merger close?"

    first = done_of(await ask(alice, question))
    assert CANARY in first["content"] and first["citations"]
    assert len(await entries(1)) == 1

    # Mallory reads the handbook but not Alice's deals: same question, her own answer.
    for text in [question, f"what is {CANARY}, when does the merger close"]:
        frames = await ask(mallory, text)
        assert "cached" not in done_of(frames)
        assert CANARY not in done_of(frames)["content"] + text_of(frames)


@pytest.mark.usefixtures("offline")
async def test_users_who_read_the_same_collections_share_answers(alice, mallory):
    staff = await sync_to_async(UserFactory.create)(username="staff")
    await library(staff, POLICY, name="handbook", visibility="everyone")

    first = done_of(await ask(alice, "When does the cafeteria open?"))
    assert first["citations"] and "cached" not in first
    await entries(1)
    frames = await ask(mallory, "When does the cafeteria open?")

    assert done_of(frames)["cached"] is True
    assert text_of(frames) == first["content"]
    assert done_of(frames)["citations"] == first["citations"]


# --- Paraphrases hit, unrelated questions miss -------------------------------------------------


async def test_a_paraphrase_is_answered_from_the_cache_without_calling_the_model(alice, fake_llm):
    first = await ask(alice, "How do I reset my password?")
    assert "cached" not in done_of(first)
    await entries(1)
    requests_before = fake_llm.state.stats.requests

    frames = await ask(alice, "How can I reset my password")

    done = done_of(frames)
    assert done["status"] == "complete" and done["cached"] is True
    assert [f["type"] for f in frames] == ["turn.started", "turn.delta", "turn.done"]
    assert text_of(frames) == done["content"] == done_of(first)["content"]
    assert done["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    assert fake_llm.state.stats.requests == requests_before
    stored = await Message.objects.aget(pk=done["message_id"])
    assert (stored.cached, stored.provider, stored.content) == (True, "cache", done["content"])
    entry = (await entries(1))[0]
    assert await hits_counted(entry.pk, 1) == 1


async def test_an_unrelated_question_misses(alice, fake_llm):
    await ask(alice, "How do I reset my password?")
    await entries(1)

    frames = await ask(alice, "What is the capital of France?")

    assert "cached" not in done_of(frames)
    assert len(await entries(2)) == 2  # its own answer is kept too


async def test_the_opposite_question_is_not_served_the_cached_answer(alice, fake_llm, settings):
    settings.ANSWER_CACHE_THRESHOLD = 0.75  # MiniLM puts these two at 0.81: only the guard says no
    await ask(alice, "How do I enable email notifications?")
    await entries(1)

    frames = await ask(alice, "How do I disable email notifications?")

    assert "cached" not in done_of(frames)


async def test_the_same_question_to_another_model_misses(alice, fake_llm, settings):
    await ask(alice, "How do I reset my password?", model=FAKE_MODEL)
    await entries(1)
    frames = await ask(alice, "How do I reset my password?", model="fake-reset")
    assert "cached" not in done_of(frames)


# --- Invalidation: edits, deletes, TTL --------------------------------------------------------


@pytest.mark.usefixtures("offline")
async def test_editing_the_cited_document_invalidates_its_answers(alice):
    document = await library(alice, POLICY, name="handbook", visibility="owner")
    first = done_of(await ask(alice, "When does the cafeteria open?"))
    assert "eight" in first["content"]
    assert len(await entries(1)) == 1

    @sync_to_async
    def edit() -> None:
        Path(document.file.path).write_bytes(POLICY_CHANGED)  # a new version of the same file
        knowledge.document_reingest(document=document)
        knowledge.document_ingest(document_id=document.pk)

    await edit()

    assert await CachedAnswer.objects.acount() == 0
    frames = await ask(alice, "When does the cafeteria open?")
    assert "cached" not in done_of(frames)
    assert "nine" in done_of(frames)["content"]


@pytest.mark.usefixtures("offline")
async def test_a_changed_version_is_refused_even_when_the_signal_was_missed(alice):
    document = await library(alice, POLICY, name="handbook", visibility="owner")
    await ask(alice, "When does the cafeteria open?")
    await entries(1)
    await Document.objects.filter(pk=document.pk).aupdate(version=document.version + 1)

    frames = await ask(alice, "When does the cafeteria open?")

    assert "cached" not in done_of(frames)


@pytest.mark.usefixtures("offline")
async def test_deleting_the_cited_document_invalidates_its_answers(alice):
    document = await library(alice, POLICY, name="handbook", visibility="owner")
    await ask(alice, "When does the cafeteria open?")
    assert len(await entries(1)) == 1

    await sync_to_async(knowledge.document_delete)(document=document)

    assert await CachedAnswer.objects.acount() == 0


async def test_an_expired_answer_is_not_served_and_is_purged(alice, fake_llm):
    await ask(alice, "How do I reset my password?")
    entry = (await entries(1))[0]
    past = timezone.now() - timedelta(seconds=1)
    await CachedAnswer.objects.aupdate(expires_at=past)
    exact = await ask(alice, "How do I reset my password?")  # its Redis key is still there
    await entries(2)  # the fresh answer is kept (and expired too, for the next question)
    await CachedAnswer.objects.aupdate(expires_at=past)
    paraphrase = await ask(alice, "How can I reset my password")

    assert "cached" not in done_of(exact) and "cached" not in done_of(paraphrase)
    assert await CachedAnswer.objects.filter(expires_at__gt=timezone.now()).acount() <= 1
    from conversations.tasks import answer_cache_purge_task

    assert await sync_to_async(answer_cache_purge_task)() >= 2
    assert not await CachedAnswer.objects.filter(pk=entry.pk).aexists()


async def test_new_entries_expire_after_the_configured_ttl(alice, fake_llm, settings):
    settings.ANSWER_CACHE_TTL_SECONDS = 120
    await ask(alice, "How do I reset my password?")
    entry = (await entries(1))[0]
    lifetime = entry.expires_at - entry.created_at
    assert lifetime == pytest.approx(timedelta(seconds=120), abs=timedelta(seconds=2))
    key = exact_key(entry.scope, entry.question_hash)
    assert 110 < await streams.async_client().ttl(key) <= 120


# --- Bypass ---------------------------------------------------------------------------------


async def test_a_frame_with_cache_false_gets_a_fresh_answer_that_replaces_the_old(alice, fake_llm):
    await ask(alice, "How do I reset my password?")
    old = (await entries(1))[0]
    requests_before = fake_llm.state.stats.requests

    frames = await ask(alice, "How do I reset my password?", cache=False)

    assert "cached" not in done_of(frames)
    assert fake_llm.state.stats.requests == requests_before + 1
    await asyncio.sleep(0.2)
    kept = await entries(1)
    assert len(kept) == 1 and kept[0].pk != old.pk


async def sse_ask(user: Any, content: str, **headers: str) -> dict[str, Any]:
    conversation = await sync_to_async(conversation_create)(owner=user, title="t")
    client = await logged_in(user)
    response = await client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"content": content, "idempotency_key": "k"},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 200
    events = await read_stream(response)
    return dict(events[-1]["data"])


async def test_rest_cache_control_no_cache_and_no_store_bypass_the_cache(alice, fake_llm):
    await ask(alice, "How do I reset my password?")
    await entries(1)
    assert (await sse_ask(alice, "How do I reset my password?")).get("cached") is True

    no_cache = await sse_ask(alice, "How do I reset my password?", cache_control="no-cache")
    assert "cached" not in no_cache
    no_store = await sse_ask(alice, "How do I reset my password?", cache_control="no-store")
    assert "cached" not in no_store
    await asyncio.sleep(0.2)
    assert await CachedAnswer.objects.acount() == 1  # no-cache replaced; no-store kept nothing


# --- Billing and the dashboard ----------------------------------------------------------------


async def test_a_hit_is_billed_as_a_cache_hit_without_tokens_and_counted_on_the_dashboard(
    alice, fake_llm
):
    first = done_of(await ask(alice, "How do I reset my password?"))
    await entries(1)
    second = done_of(await ask(alice, "How can I reset my password"))

    generated = await UsageRecord.objects.aget(message_id=first["message_id"])
    served = await UsageRecord.objects.aget(message_id=second["message_id"])
    assert (generated.cache_hit, served.cache_hit) == (False, True)
    assert generated.completion_tokens > 0
    assert (served.prompt_tokens, served.completion_tokens, served.cost) == (0, 0, 0)
    assert (served.status, served.provider) == ("complete", "cache")

    today = timezone.now().date()
    await sync_to_async(usage_rollup)(first=today - timedelta(days=1), last=today)
    totals = await sync_to_async(usage_totals)(span=DateRange(today, today))
    assert totals["requests"] == 2
    assert totals["cache_hit_ratio"] == pytest.approx(0.5)


# --- Standalone questions only ----------------------------------------------------------------


async def test_the_second_question_of_a_conversation_is_neither_served_nor_stored(alice, fake_llm):
    await ask(alice, "How do I reset my password?")
    await entries(1)
    conversation = await Conversation.objects.acreate(owner=alice, title="t", model=FAKE_MODEL)
    client = ChatClient(alice, conversation.pk)
    assert await client.connect()
    await client.send(type="message.send", content="Tell me a joke.", idempotency_key="k1")
    await client.until_done()
    question = "How do I reset my password?"
    await client.send(type="message.send", content=question, idempotency_key="k2")
    frames = await client.until_done()
    await client.close()

    assert "cached" not in done_of(frames)
    await asyncio.sleep(0.2)
    questions = [entry.question async for entry in CachedAnswer.objects.all()]
    assert sorted(questions) == ["How do I reset my password?", "Tell me a joke."]


@pytest.mark.usefixtures("offline")
async def test_an_answer_citing_nothing_is_not_kept_for_a_user_who_can_read_documents(alice):
    await library(alice, POLICY, name="handbook", visibility="owner")
    frames = await ask(alice, "Who won the football world cup in 1998?")
    assert not done_of(frames)["citations"]
    await asyncio.sleep(0.3)
    assert await CachedAnswer.objects.acount() == 0


async def test_a_failing_cache_lookup_is_a_miss_and_the_model_answers(alice, fake_llm, settings):
    await ask(alice, "How do I reset my password?")
    await entries(1)
    settings.EMBEDDING_PROVIDER = "openai"
    settings.EMBEDDING_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: connection refused

    frames = await ask(alice, "How can I reset my password")  # the lookup must embed it

    done = done_of(frames)
    assert done["status"] == "complete" and "cached" not in done
    assert done["content"] == text_of(frames) != ""
    await asyncio.sleep(0.3)
    assert await CachedAnswer.objects.acount() == 1  # nothing to store the new one by


# --- Every provider down ----------------------------------------------------------------------


async def test_with_every_provider_down_a_saved_answer_is_served_with_a_notice(
    alice, two_providers, settings
):
    primary, backup = two_providers
    first = done_of(await ask(alice, "How do I reset my password?"))
    await entries(1)
    settings.ANSWER_CACHE_THRESHOLD = 0.999  # the normal lookup misses this paraphrase
    primary.set_override(fail="500", count=10)
    backup.set_override(fail="500", count=10)

    frames = await ask(alice, "How can I reset my password")

    done = done_of(frames)
    assert done["status"] == "complete" and done["cached"] is True
    assert "unavailable" in done["content"] and "How do I reset my password?" in done["content"]
    assert done["content"].endswith(first["content"])


async def test_with_every_provider_down_and_nothing_saved_the_turn_fails_politely(
    alice, two_providers
):
    primary, backup = two_providers
    primary.set_override(fail="500", count=10)
    backup.set_override(fail="500", count=10)

    done = done_of(await ask(alice, "How do I reset my password?"))

    assert done["status"] == "failed" and done["error"]["code"] == "provider_unavailable"
    assert "cached" not in done
