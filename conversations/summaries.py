"""Rolling summaries of older messages, so long conversations fit the model's window."""

from __future__ import annotations

import asyncio

from django.conf import settings

from conversations.models import Message
from llm.chat import ChatMessage, Delta
from llm.registry import chat_models, chat_provider

MAX_SUMMARY_CHARS = 2000
EXCERPT_CHARS = 160
SUMMARY_PROMPT = (
    "Summarize the conversation below for the assistant's own memory: the user's goals, facts "
    "established, decisions and open questions. At most 150 words. Previous summary first, "
    "if any."
)


def transcript(previous: str, messages: list[Message]) -> str:
    lines = [f"Previous summary: {previous}"] if previous else []
    lines += [f"{message.role}: {message.content}" for message in messages]
    return "\n".join(lines)


def summary_by_model(*, previous: str, messages: list[Message]) -> str:
    """Ask the configured model (its cheapest is the default) for a short summary."""

    async def collect() -> str:
        provider = chat_provider()
        prompt = [
            ChatMessage("system", SUMMARY_PROMPT),
            ChatMessage(
                "user", transcript(previous, messages)[-settings.CHAT_CONTEXT_WINDOW * 3 :]
            ),
        ]
        parts = []
        try:
            async for event in provider.stream_chat(
                model=chat_models()[0], messages=prompt, max_tokens=300
            ):
                if isinstance(event, Delta):
                    parts.append(event.text)
        finally:
            await provider.aclose()
        return "".join(parts).strip()[:MAX_SUMMARY_CHARS]

    return asyncio.run(collect())


def summary_extractive(*, previous: str, messages: list[Message]) -> str:
    """Without a model: the opening words of each message, newest kept when space runs out."""
    lines = [previous] if previous else []
    for message in messages:
        excerpt = " ".join(message.content.split())[:EXCERPT_CHARS]
        lines.append(f"- {message.role} said: {excerpt}")
    while len(lines) > 1 and sum(len(line) + 1 for line in lines) > MAX_SUMMARY_CHARS:
        lines.pop(0)  # the oldest goes first
    return "\n".join(lines)[-MAX_SUMMARY_CHARS:]
