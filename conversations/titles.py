"""Automatic titles for new conversations, written in the background after the first question."""

from __future__ import annotations

import asyncio
import logging

from django.db import transaction

from billing.selectors import model_cheapest
from conversations.models import Conversation, Message
from llm.chat import ChatMessage, Delta
from llm.registry import chat_is_configured, chat_models, chat_provider

logger = logging.getLogger(__name__)

OFFLINE_TITLE_CHARS = 60
TITLE_MAX_CHARS = 200
TITLE_PROMPT = (
    "Write a short title (at most 6 words) for a conversation that starts with the user's "
    "message below. Reply with the title only: no quotes, no final period."
)


def title_model() -> str:
    """The model that writes titles: the cheapest enabled catalogue model the provider serves,
    else the configured default (the first of ``chat_models()``)."""
    models = chat_models()
    return model_cheapest(candidates=models) or models[0]


def title_from_question(question: str) -> str:
    """Offline title: the question's opening words, cut at a word boundary."""
    words = " ".join(question.split())
    if len(words) <= OFFLINE_TITLE_CHARS:
        return words
    return words[:OFFLINE_TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


def title_by_model(question: str) -> str:
    model = title_model()  # a database read: not inside the event loop below

    async def collect() -> str:
        provider = chat_provider()
        prompt = [ChatMessage("system", TITLE_PROMPT), ChatMessage("user", question[:2000])]
        parts = []
        try:
            async for event in provider.stream_chat(model=model, messages=prompt, max_tokens=24):
                if isinstance(event, Delta):
                    parts.append(event.text)
        finally:
            await provider.aclose()
        return "".join(parts)

    title = " ".join(asyncio.run(collect()).split()).strip("\"'“”. ")
    return title[:TITLE_MAX_CHARS]


def title_write(question: str) -> str:
    """A title by the title model when one is configured; from the question otherwise or on
    any failure of the model (a title is never worth an error)."""
    if chat_is_configured():
        try:
            title = title_by_model(question)
        except Exception:
            title = ""
        if title:
            return title
    return title_from_question(question)


def conversation_autotitle(*, conversation_id: int) -> str | None:
    """Title an untitled conversation from its first question; None when there is nothing to do.

    Compare-and-set on the empty title: a rename by the user in the meantime wins. The update
    leaves ``updated_at`` alone so the list order does not move.
    """
    question = (
        Message.objects.filter(
            conversation_id=conversation_id,
            role=Message.Role.USER,
            conversation__title="",
            conversation__deleted_at__isnull=True,
        )
        .order_by("id")
        .values_list("content", flat=True)
        .first()
    )
    if not question:
        return None
    title = title_write(question)
    updated = Conversation.objects.filter(pk=conversation_id, title="").update(title=title)
    return title if updated else None


def title_schedule(*, conversation_id: int) -> None:
    """Queue the title task once the current transaction (if any) commits."""
    transaction.on_commit(lambda: title_enqueue(conversation_id))


def title_enqueue(conversation_id: int) -> None:
    from conversations.tasks import conversation_title_task

    try:
        conversation_title_task.delay(conversation_id)
    except Exception:  # a title is never worth failing the turn that asked for it
        logger.exception("could not queue the title of conversation %s", conversation_id)
