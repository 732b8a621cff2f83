"""What the model sees: system prompt, rolling summary, and the latest messages that fit.

Budget = context window - max output - system prompt. The newest messages go in verbatim,
newest first until the budget is spent; older ones are represented by the conversation's
rolling summary (made in the background by Celery).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from conversations.models import Conversation, Message
from conversations.selectors import message_history
from llm.chat import ChatMessage
from llm.tokens import message_token_estimate

HISTORY_SCAN_LIMIT = 200


@dataclass(frozen=True)
class Context:
    messages: list[ChatMessage]
    prompt_tokens_estimate: int
    dropped_before_id: int | None  # the newest message left out, when any were


def system_prompt(conversation: Conversation) -> str:
    prompt = settings.CHAT_SYSTEM_PROMPT
    if conversation.summary:
        prompt += "\n\nSummary of the earlier conversation:\n" + conversation.summary
    return prompt


def context_build(*, conversation: Conversation, question: Message, sources: str = "") -> Context:
    """The prompt for answering ``question`` within the model's budget.

    ``sources``: retrieved passages as one system message (``grounding``), placed after the
    system prompt; their tokens come out of the history's budget.
    """
    system = system_prompt(conversation)
    budget = settings.CHAT_CONTEXT_WINDOW - settings.CHAT_MAX_OUTPUT_TOKENS
    budget -= message_token_estimate(system) + message_token_estimate(question.content)
    if sources:
        budget -= message_token_estimate(sources)
    history = message_history(
        conversation=conversation, before_id=question.pk, limit=HISTORY_SCAN_LIMIT
    )
    kept: list[ChatMessage] = []
    dropped_before_id = None
    for message in history:
        if conversation.summary_through_id and message.pk <= conversation.summary_through_id:
            break
        cost = message_token_estimate(message.content)
        if cost > budget:
            dropped_before_id = message.pk
            break
        budget -= cost
        kept.append(ChatMessage(role=message.role, content=message.content))  # type: ignore[arg-type]
    else:
        if len(history) == HISTORY_SCAN_LIMIT:  # older messages were not even read: fold them
            dropped_before_id = history[-1].pk - 1
    messages = [
        ChatMessage("system", system),
        *([ChatMessage("system", sources)] if sources else []),
        *reversed(kept),
        ChatMessage("user", question.content),
    ]
    used = settings.CHAT_CONTEXT_WINDOW - settings.CHAT_MAX_OUTPUT_TOKENS - budget
    return Context(messages, used, dropped_before_id)
