"""Route an ``auto`` turn: pick its model once its prompt and sources are known.

Runs inside the begin transaction, after retrieval and before the quota reservation, so the
reservation is priced for the model that will answer. A turn on a fixed model costs nothing
here; an ``auto`` turn costs one ``UPDATE`` of its answer row (model and reason), plus one read
of the quota period when the strong model is wanted on a plan with caps. The policy and prices
come from this process's cache (``routing_policy``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from django.db import connection

from billing.models import Plan
from billing.selectors import budget_used_fraction, models_offered_from
from conversations.exceptions import InvalidInput
from conversations.model_routing import (
    AUTO,
    ModelPair,
    RouteDecision,
    RouteRequest,
    route_decide,
    route_pair,
)
from conversations.routing_policy import RoutingConfig, routing_config
from llm.registry import chat_models

if TYPE_CHECKING:
    from conversations.generation import TurnPlan


def turn_route(*, plan: TurnPlan, question: str, user: Any, billing_plan: Plan | None) -> TurnPlan:
    """``plan`` with the model chosen for an ``auto`` turn (recorded on its answer message).

    ``billing_plan`` is the user's plan as the rate limit read it (None: billing is off).
    Raises ``InvalidInput`` when the user's plan offers no model at all.
    """
    if plan.model != AUTO:
        return plan
    config = routing_config()
    pair = pair_for(config, billing_plan)
    request = RouteRequest(
        question=question,
        context_tokens=plan.prompt_tokens_estimate,
        has_sources=bool(plan.citations),
    )
    decision = route_decide(request=request, policy=config.policy, pair=pair)
    if decision.model != pair.cheap and billing_plan is not None:
        decision = budget_applied(
            decision, request, config, pair, user_id=user.pk, plan=billing_plan
        )
    route_record(message_id=plan.message_id, decision=decision)
    return replace(plan, model=decision.model)


def budget_applied(
    decision: RouteDecision,
    request: RouteRequest,
    config: RoutingConfig,
    pair: ModelPair,
    *,
    user_id: int,
    plan: Plan,
) -> RouteDecision:
    """The decision again with the user's budget, read only when it can change the model."""
    if config.policy.budget_prefer_cheap_at >= 1:
        return decision
    budget = budget_used_fraction(user_id=user_id, plan=plan)
    if budget <= 0:
        return decision
    request = replace(request, budget_used=budget)
    return route_decide(request=request, policy=config.policy, pair=pair)


def pair_for(config: RoutingConfig, billing_plan: Plan | None) -> ModelPair:
    allowed = models_offered_from(
        catalogue=list(config.prices),
        provider_models=chat_models(),
        models_allowed=billing_plan.models_allowed if billing_plan is not None else [],
    )
    pair = route_pair(allowed=allowed, prices=config.prices, policy=config.policy)
    if pair is None:
        raise InvalidInput("your plan offers no model; ask an administrator")
    return pair


ROUTE_SQL = """
UPDATE conversations_message SET model = %s, route_reason = %s, route_detail = %s::jsonb
WHERE id = %s
"""


def route_record(*, message_id: int, decision: RouteDecision) -> None:
    """The answer's model and why (plain SQL: the ORM's update costs more CPU than the trip)."""
    detail = json.dumps(decision.detail)
    with connection.cursor() as cursor:
        cursor.execute(ROUTE_SQL, [decision.model, decision.reason, detail, message_id])
