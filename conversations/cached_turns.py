"""The answer cache inside a turn: a hit streamed like a generated answer, the fallback while no
provider can answer, and the store after a complete answer.

A hit goes through the same relay and frames as a model's answer (deltas, then ``turn.done``
with ``"cached": true``); its provider is ``cache`` and it costs no model tokens.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from django.conf import settings

from conversations.answer_cache import (
    AnswerToStore,
    CacheHit,
    CacheProbe,
    answer_store,
    exact_lookup,
    hit_record,
    semantic_lookup,
)
from conversations.models import Message
from llm.chat import ChatEvent, Delta, Finish, Served

if TYPE_CHECKING:
    from conversations.services import TurnOutcome

logger = logging.getLogger(__name__)

CACHE_PROVIDER = "cache"
FALLBACK_NOTICE = (
    "*Our language model providers are unavailable right now, so this is a saved answer to a "
    "similar question: “{question}”.*\n\n"
)


async def cached_events(hit: CacheHit) -> AsyncIterator[ChatEvent]:
    """A cached answer as a provider's stream: who answers, the text, no tokens."""
    yield Served(CACHE_PROVIDER, hit.model)
    yield Delta(hit.notice + hit.answer)
    yield Finish("stop", 0, 0)


def fallback_lookup(*, probe: CacheProbe) -> CacheHit | None:
    """A saved answer for a turn no provider could start, with a notice saying so; the bar is
    ``ANSWER_CACHE_FALLBACK_THRESHOLD`` (the notice names the question it answered)."""
    if probe.mode == "skip":
        return None
    threshold = settings.ANSWER_CACHE_FALLBACK_THRESHOLD
    hit = exact_lookup(probe) or semantic_lookup(probe, threshold=threshold)
    if hit is None:
        return None
    hit_record(entry_id=hit.entry_id)
    return replace(hit, notice=FALLBACK_NOTICE.format(question=hit.question))


def turn_cache_after(
    *, probe: CacheProbe, hit: CacheHit | None, outcome: TurnOutcome, versions: dict[int, int]
) -> int | None:
    """After a turn: count the hit it served, or store its complete answer (the entry id).

    Never raises: the cache must not fail a turn that has already been answered.
    """
    try:
        if hit is not None:
            hit_record(entry_id=hit.entry_id)
            return None
        if outcome.cached or outcome.status != Message.Status.COMPLETE:
            return None
        answer = AnswerToStore(outcome.content, outcome.citations or [], outcome.model, versions)
        return answer_store(probe=probe, answer=answer)
    except Exception:
        logger.exception("answer cache: after-turn step failed")
        return None
