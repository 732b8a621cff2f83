"""Generate one answer: plan (DB), stream from the provider to the readers, finish (DB).

Pieces go to readers in this process from memory and to the turn's Redis Stream in batches
(``relay``, ``batcher``). No database connection or transaction is held while the provider
streams: the begin-and-plan and the finish are short synchronous calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.db import transaction

from conversations import streams
from conversations.answer_cache import CacheHit, CacheMode, CacheProbe, cache_consult
from conversations.batcher import stream_batcher
from conversations.cached_turns import (
    CACHE_PROVIDER,
    cached_events,
    fallback_lookup,
    turn_cache_after,
)
from conversations.context import context_build, system_prompt
from conversations.delivery import done_payload, started_frame, turn_announce
from conversations.grounding import citations_cited, grounding_build, sources_budget
from conversations.metering import Admission, turn_admit_user, turn_admit_user_async, turn_reserve
from conversations.model_routing import RouteDecision
from conversations.models import Conversation, Message
from conversations.moderation import (
    OUTPUT_WITHHELD,
    message_moderate,
    moderation_output_record,
)
from conversations.relay import Relay
from conversations.runtime import TurnRunner, db, turn_runner
from conversations.services import (
    Turn,
    TurnConflict,
    TurnOutcome,
    turn_begin,
    turn_conflict,
    turn_finish,
)
from conversations.turn_routing import turn_route
from llm.chat import ChatEvent, ChatMessage, Delta, Finish, Served
from llm.exceptions import ProviderError
from llm.moderation import OutputFlagged, OutputWatch
from llm.registry import chat_provider, moderator
from llm.tokens import token_count

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnPlan:
    message_id: int
    conversation_id: int
    model: str
    messages: list[ChatMessage]
    max_tokens: int
    summarize_through_id: int | None
    citations: tuple[dict[str, Any], ...] = ()  # the numbered sources in the prompt
    prompt_tokens_estimate: int = 0  # the context's character-based upper estimate
    route: RouteDecision | None = None  # why ``auto`` chose ``model`` (written at finish)
    cache: CacheProbe | None = None  # the answer cache's view of the question, when it has one
    cached: CacheHit | None = None  # the cached answer this turn serves
    versions: dict[int, int] = field(default_factory=dict)  # document versions the sources quote


def plan_build(
    conversation: Conversation,
    question: Message,
    answer: Message,
    user: Any = None,
    cache: CacheMode = "use",
    searchable: bool | None = None,
    first: bool | None = None,
) -> TurnPlan:
    """``searchable``: whether ``user`` may read a ready document; ``first``: whether
    ``question`` opens the conversation; each when the caller knows (None: asked here)."""
    probe, hit = cache_consult(
        user=user, conversation=conversation, question=question, mode=cache, first=first
    )
    if hit is not None:
        return cached_plan(answer, conversation, probe, hit)
    budget = sources_budget(system_prompt=system_prompt(conversation), question=question.content)
    # The question's embedding when the cache lookup made one: retrieval reuses it.
    embedding = probe.embedding if probe is not None else None
    grounding = grounding_build(
        user=user,
        question=question.content,
        budget_tokens=budget,
        embedding=embedding,
        searchable=searchable,
    )
    context = context_build(conversation=conversation, question=question, sources=grounding.prompt)
    return TurnPlan(
        message_id=answer.pk,
        conversation_id=conversation.pk,
        model=answer.model,
        messages=context.messages,
        max_tokens=settings.CHAT_MAX_OUTPUT_TOKENS,
        summarize_through_id=context.dropped_before_id,
        citations=tuple(grounding.citations),
        prompt_tokens_estimate=context.prompt_tokens_estimate,
        cache=probe,
        versions=grounding.versions,
    )


def cached_plan(
    answer: Message, conversation: Conversation, probe: CacheProbe | None, hit: CacheHit
) -> TurnPlan:
    """A turn answered from the cache: no prompt, no model tokens to reserve."""
    return TurnPlan(
        message_id=answer.pk,
        conversation_id=conversation.pk,
        model=answer.model,
        messages=[],
        max_tokens=0,
        summarize_through_id=None,
        citations=tuple(hit.citations),
        cache=probe,
        cached=hit,
    )


def turn_start(
    *,
    user: Any,
    conversation_id: int,
    content: str,
    idempotency_key: str,
    admission: Admission | None = None,
    cache: CacheMode = "use",
) -> tuple[Turn, TurnPlan | None]:
    """Begin a turn and, for a new one, plan it: one trip to a database thread, not two.

    Billing: the rate limit first (Redis; ``admission`` when the caller has checked it on the
    event loop already), then the quota reservation in the same transaction as the begin, so a
    refused turn leaves no messages behind and a replay reserves nothing.
    """
    billing_plan = (admission or turn_admit_user(user=user)).plan
    try:
        with transaction.atomic():
            # No savepoint: a replayed key or a running answer rolls this transaction back.
            turn = turn_begin(
                user=user,
                conversation_id=conversation_id,
                content=content,
                idempotency_key=idempotency_key,
                savepoint=False,
            )
            plan = plan_build(
                turn.conversation,
                turn.user_message,
                turn.assistant_message,
                user=user,
                cache=cache,
                searchable=turn.searchable,
                first=turn.first,
            )
            if plan.cached is None:  # an answer from the cache calls no model: nothing to route
                plan = turn_route(
                    plan=plan,
                    question=turn.user_message.content,
                    user=user,
                    billing_plan=billing_plan,
                )
            turn_reserve(plan=billing_plan, user=user, turn_plan=plan)
    except TurnConflict as conflict:
        replay = turn_conflict(
            user=user, conversation_id=conversation_id, key=conflict.key, error=conflict.error
        )
        return replay, None
    return turn, plan


async def turn_launch(
    *,
    user: Any,
    conversation_id: int,
    content: str,
    idempotency_key: str,
    watchers: int,
    cache: CacheMode = "use",
) -> Turn:
    """Begin a turn and, when it is new, run its answer and announce it to open tabs.

    ``watchers``: how many of the conversation's open websockets the caller itself is (see
    ``turn_announce``). A replayed idempotency key returns the existing turn and starts nothing.
    ``cache``: how the answer cache may serve and keep this turn (``answer_cache.CacheMode``).
    """
    await message_moderate(user=user, conversation_id=conversation_id, content=content)
    admission = await turn_admit_user_async(user=user)
    turn, plan = await db(turn_start)(
        user=user,
        conversation_id=conversation_id,
        content=content,
        idempotency_key=idempotency_key,
        admission=admission,
        cache=cache,
    )
    if plan is not None:
        message_id = turn.assistant_message.pk
        turn_runner().start(message_id, functools.partial(turn_generate, plan=plan))
        started = started_frame(message_id, turn.user_message.pk, idempotency_key)
        await turn_announce(conversation_id, started, watchers=watchers)
    return turn


def answer_stream(plan: TurnPlan) -> AsyncIterator[ChatEvent]:
    """The provider's stream, watched by output moderation when it is on."""
    if plan.cached is not None:
        return cached_events(plan.cached)
    answer = chat_provider().stream_chat(
        model=plan.model, messages=plan.messages, max_tokens=plan.max_tokens
    )
    checker = moderator()
    if checker is None:
        return answer
    every, window = settings.MODERATION_OUTPUT_EVERY_CHARS, settings.MODERATION_OUTPUT_WINDOW_CHARS
    return OutputWatch(checker, every=every, window=window).watch(answer)


async def stream_answer(plan: TurnPlan, relay: Relay, runner: TurnRunner) -> Finish | None:
    finish = None
    answer = answer_stream(plan)
    async with contextlib.aclosing(answer) as events:  # type: ignore[type-var]  # a stop releases the connection at once
        async for event in events:
            if isinstance(event, Delta):
                first = relay.first_delta_at is None
                relay.push(event.text)
                if first:
                    runner.streaming_started.append(plan.message_id)
            elif isinstance(event, Finish):
                finish = event
            elif isinstance(event, Served):
                relay.served = event
    return finish


def outcome_for(
    plan: TurnPlan, relay: Relay, started: float, status: str, **extra: Any
) -> TurnOutcome:
    finish: Finish | None = extra.pop("finish", None)
    completion = finish.completion_tokens if finish and finish.completion_tokens else None
    prompt = finish.prompt_tokens if finish and finish.prompt_tokens else None
    ttft = relay.first_delta_at
    if relay.served is not None and relay.served.provider == CACHE_PROVIDER:
        extra["cached"], prompt, completion = True, 0, 0
    return TurnOutcome(
        status=status,
        content=relay.text,
        provider=relay.served.provider if relay.served else chat_provider().name,
        model=relay.served.model if relay.served else plan.model,
        prompt_tokens=sum(token_count(m.content, model=plan.model) for m in plan.messages)
        if prompt is None
        else prompt,
        completion_tokens=token_count(relay.text, model=plan.model)
        if completion is None
        else completion,
        ttft_ms=round((ttft - started) * 1000) if ttft else None,
        duration_ms=round((time.monotonic() - started) * 1000),
        citations=citations_cited(list(plan.citations), relay.text),
        route=plan.route,
        **extra,
    )


async def turn_generate(message_id: int, runner: TurnRunner, *, plan: TurnPlan) -> None:
    """The whole life of one answer; always ends the turn's stream with a ``done`` entry."""
    started = time.monotonic()
    local = runner.hub.open(message_id)
    relay = Relay(message_id, local)
    stream_task = asyncio.get_running_loop().create_task(stream_answer(plan, relay, runner))
    runner.streams[message_id] = stream_task
    outcome = await outcome_of(stream_task, plan, relay, runner, started)
    relay.close()
    done = done_payload(outcome)
    try:
        if await db(turn_finish)(message_id=message_id, outcome=outcome):
            await stream_batcher().close(message_id, relay.seq + 1, done)
    finally:  # local readers always learn the end, even when Redis or the database failed
        local.publish(streams.StreamEntry(relay.seq + 1, None, done))
    runner.hub.release_later(message_id)
    if plan.cache is not None:
        cache_step = db(turn_cache_after)
        runner.spawn(
            cache_step(probe=plan.cache, hit=plan.cached, outcome=outcome, versions=plan.versions)
        )
    if plan.summarize_through_id:
        runner.spawn(db(summary_request)(plan.conversation_id, plan.summarize_through_id))


async def outcome_of(
    stream_task: asyncio.Task[Finish | None],
    plan: TurnPlan,
    relay: Relay,
    runner: TurnRunner,
    started: float,
) -> TurnOutcome:
    """Wait for the stream and say how the turn ended."""
    try:
        finish = await stream_task
    except asyncio.CancelledError:
        if plan.message_id not in runner.stopping:
            raise  # the process is shutting down: the reaper will settle this turn
        return outcome_for(plan, relay, started, Message.Status.STOPPED)
    except OutputFlagged as exc:
        return await outcome_moderated(plan, relay, started, exc)
    except ProviderError as exc:
        if exc.retryable and not relay.parts and plan.cache is not None:
            saved = await outcome_from_cache(plan, relay, runner, started)
            if saved is not None:
                return saved
        status = Message.Status.INTERRUPTED if relay.parts else Message.Status.FAILED
        code = "provider_unavailable" if exc.retryable else "provider_error"
        return outcome_for(plan, relay, started, status, error_code=code, error_detail=str(exc))
    except Exception as exc:
        logger.exception("turn %s failed", plan.message_id)
        status = Message.Status.INTERRUPTED if relay.parts else Message.Status.FAILED
        detail = f"internal error ({type(exc).__name__})"
        return outcome_for(plan, relay, started, status, error_code="internal", error_detail=detail)
    return outcome_for(plan, relay, started, Message.Status.COMPLETE, finish=finish)


async def outcome_moderated(
    plan: TurnPlan, relay: Relay, started: float, flagged: OutputFlagged
) -> TurnOutcome:
    """The answer is withheld (its text is not kept on the message) and the flag recorded."""
    try:
        await db(moderation_output_record)(
            conversation_id=plan.conversation_id, message_id=plan.message_id, result=flagged.result
        )
    except Exception:  # the turn must still end; the log keeps what the record would have
        logger.exception("recording the moderation of turn %s failed", plan.message_id)
    outcome = outcome_for(plan, relay, started, Message.Status.MODERATED)
    return replace(outcome, content="", error_code="moderated", error_detail=OUTPUT_WITHHELD)


async def outcome_from_cache(
    plan: TurnPlan, relay: Relay, runner: TurnRunner, started: float
) -> TurnOutcome | None:
    """No provider could start the answer: serve a saved one, with a notice, if there is one."""
    if plan.cache is None:
        return None
    try:
        hit = await db(fallback_lookup)(probe=plan.cache)
    except Exception:
        logger.exception("answer cache: fallback lookup for turn %s failed", plan.message_id)
        return None
    if hit is None:
        return None
    saved = replace(plan, cached=hit, citations=tuple(hit.citations))
    finish = await stream_answer(saved, relay, runner)
    return outcome_for(saved, relay, started, Message.Status.COMPLETE, finish=finish)


def summary_request(conversation_id: int, through_id: int) -> None:
    from conversations.tasks import conversation_summarize_task

    conversation_summarize_task.delay(conversation_id, through_id)
