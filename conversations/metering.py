"""The chat's hooks into billing: admit (rate limit), reserve, settle, and the models offered.

Kept here so the turn pipeline calls one function at each step; ``BILLING_ENABLED`` off skips
them all (benchmarks measure the pipeline with and without).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

from billing.models import Plan
from billing.plan_cache import plan_cached, plan_for_user_cached
from billing.selectors import models_offered, plan_for_user
from billing.services import (
    TurnRequest,
    TurnUsage,
    quota_reserve,
    turn_admit,
    turn_admit_async,
    usage_settle,
)
from conversations import streams
from conversations.runtime import db
from llm.registry import chat_models

if TYPE_CHECKING:
    from conversations.generation import TurnPlan
    from conversations.services import TurnOutcome


@dataclass(frozen=True)
class Admission:
    """A turn let through the rate limit, with the user's plan (None when billing is off)."""

    plan: Plan | None


def turn_admit_user(*, user: Any) -> Admission:
    """Rate-limit a new turn (raises ``RateLimited``)."""
    return Admission(turn_admit(user_id=user.pk) if settings.BILLING_ENABLED else None)


async def turn_admit_user_async(*, user: Any) -> Admission:
    """``turn_admit_user`` on the event loop: the bucket through the loop's Redis client, and a
    database thread only when the plan is not in the per-process cache."""
    if not settings.BILLING_ENABLED:
        return Admission(None)
    plan = plan_cached(user_id=user.pk) or await db(plan_for_user_cached)(user_id=user.pk)
    await turn_admit_async(user_id=user.pk, plan=plan, client=streams.async_client())
    return Admission(plan)


def turn_reserve(*, plan: Plan | None, user: Any, turn_plan: TurnPlan) -> None:
    """Reserve the turn's estimate on the user's quota (raises ``QuotaExceeded``)."""
    if plan is None:
        return
    # The context's character-based estimate errs high, which is what a reservation needs, and
    # costs nothing here: no tokenizer over the whole history inside the begin transaction.
    # Settle bills the provider's count (or the tokenizer's) instead.
    prompt = turn_plan.prompt_tokens_estimate
    request = TurnRequest(
        user_id=user.pk,
        conversation_id=turn_plan.conversation_id,
        message_id=turn_plan.message_id,
        model=turn_plan.model,
        prompt_tokens=prompt,
        max_output=turn_plan.max_tokens,
    )
    quota_reserve(plan=plan, request=request)


def turn_settle(*, message_id: int, outcome: TurnOutcome) -> None:
    """Settle the turn's reservation to its outcome (inside the finishing transaction)."""
    if not settings.BILLING_ENABLED:
        return
    usage = TurnUsage(
        status=outcome.status,
        model=outcome.model,
        provider=outcome.provider,
        prompt_tokens=outcome.prompt_tokens or None,
        completion_tokens=outcome.completion_tokens,
        ttft_ms=outcome.ttft_ms,
        duration_ms=outcome.duration_ms,
        cache_hit=outcome.cached,
    )
    usage_settle(message_id=message_id, usage=usage)


def models_for(user: Any) -> list[str]:
    """The models ``user`` may pick, the default first (the catalogue narrowed by their plan)."""
    if not settings.BILLING_ENABLED or user is None or not user.is_authenticated:
        return chat_models()
    return models_offered(plan=plan_for_user(user_id=user.pk), provider_models=chat_models())
