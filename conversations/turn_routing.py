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
from billing.selectors import BUDGET_USED_SQL, budget_params, models_offered_from
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
    budget = budget_worth_reading(decision, pair, config, user=user, billing_plan=billing_plan)
    if budget is None:
        route_record(message_id=plan.message_id, decision=decision)
        return replace(plan, model=decision.model)
    # What the decision is near the cap; one statement reads the budget and records either.
    near_cap = replace(request, budget_used=config.policy.budget_prefer_cheap_at)
    capped = route_decide(request=near_cap, policy=config.policy, pair=pair)
    chosen = route_record_budgeted(
        message_id=plan.message_id, wanted=decision, capped=capped, budget=budget
    )
    return replace(plan, model=chosen.model)


def budget_worth_reading(
    decision: RouteDecision,
    pair: ModelPair,
    config: RoutingConfig,
    *,
    user: Any,
    billing_plan: Plan | None,
) -> dict[str, Any] | None:
    """The budget's query parameters when it can change the decision (the strong model wanted,
    a plan with caps, a threshold below 1); else None."""
    threshold = config.policy.budget_prefer_cheap_at
    if decision.model == pair.cheap or billing_plan is None or threshold >= 1:
        return None
    params = budget_params(user_id=user.pk, plan=billing_plan)
    return None if params is None else {**params, "threshold": threshold}


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


# One statement for a turn that wants the strong model on a plan with caps: read the budget
# used and record the decision it selects (the cheap one at or over the policy's threshold,
# the same comparison ``route_decide`` makes), so the budget costs no round trip of its own.
ROUTE_BUDGETED_SQL = f"""
WITH budget AS ({BUDGET_USED_SQL}), chosen AS (
    SELECT used, used >= %(threshold)s::float8 AS capped FROM budget
)
UPDATE conversations_message SET
    model = CASE WHEN capped THEN %(capped_model)s ELSE %(wanted_model)s END,
    route_reason = CASE WHEN capped THEN %(capped_reason)s ELSE %(wanted_reason)s END,
    route_detail = CASE WHEN capped THEN %(capped_detail)s::jsonb ELSE %(wanted_detail)s::jsonb END
        || jsonb_build_object('budget_used', round(used::numeric, 4))
FROM chosen WHERE id = %(message_id)s
RETURNING chosen.capped, chosen.used
"""  # noqa: S608  (constant fragments; every value is a bound parameter)


def route_record_budgeted(
    *, message_id: int, wanted: RouteDecision, capped: RouteDecision, budget: dict[str, Any]
) -> RouteDecision:
    """Record ``capped`` if the budget used reaches ``budget["threshold"]``, else ``wanted``."""
    params = {
        **budget,
        "message_id": message_id,
        "wanted_model": wanted.model,
        "wanted_reason": wanted.reason,
        "wanted_detail": json.dumps(wanted.detail),
        "capped_model": capped.model,
        "capped_reason": capped.reason,
        "capped_detail": json.dumps(capped.detail),
    }
    with connection.cursor() as cursor:
        cursor.execute(ROUTE_BUDGETED_SQL, params)
        row = cursor.fetchone()
    if row is None:  # the answer row is gone: nothing to route
        return wanted
    chosen = capped if row[0] else wanted
    return replace(chosen, detail={**chosen.detail, "budget_used": round(float(row[1]), 4)})


ROUTE_SQL = """
UPDATE conversations_message SET model = %s, route_reason = %s, route_detail = %s::jsonb
WHERE id = %s
"""


def route_record(*, message_id: int, decision: RouteDecision) -> None:
    """The answer's model and why (plain SQL: the ORM's update costs more CPU than the trip)."""
    detail = json.dumps(decision.detail)
    with connection.cursor() as cursor:
        cursor.execute(ROUTE_SQL, [decision.model, decision.reason, detail, message_id])
