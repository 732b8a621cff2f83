"""Route an ``auto`` turn: pick its model once its prompt and sources are known.

Runs inside the begin transaction, after retrieval and before the quota reservation, so the
reservation is priced for the model that will answer. The policy and prices come from this
process's cache (``routing_policy``), and the choice travels with the turn's plan to the finish
statement, which writes it on the answer with the outcome (``Message.model``, ``route_reason``,
``route_detail``): most ``auto`` turns cost no database round trip here. Only a turn that wants
the strong model on a plan with caps reads the quota period (one ``SELECT``), since near the cap
the cheap model answers instead.

Measured, under load, a write of the answer row here cost a round trip (about 3 ms of wall time
at load 16 on two cores, 0.3 ms of CPU) for nothing the turn needs before it finishes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

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
    """``plan`` with the model chosen for an ``auto`` turn and why (``plan.route``).

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
    return replace(plan, model=decision.model, route=decision)


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
    budget = budget_used_fraction(user_id=user_id, plan=plan)  # no query for a plan without caps
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
