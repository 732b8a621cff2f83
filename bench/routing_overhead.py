"""What the ``auto`` model costs a turn: its begin step against a fixed model's, and the decision.

    python -m bench.routing_overhead [--turns 300]

Runs against a database of its own (``<name>_bench_routing`` on the same PostgreSQL server,
migrated by the script), so development data is left alone.

1. Begin step: ``turn_start`` (rate limit, begin, retrieval check, context, routing, quota
   reservation; billing on, a plan with a token cap so the budget read happens) on a
   conversation set to ``auto`` and on one set to a fixed model, turn by turn in the same run
   (the order swapped every other pair), half the questions plain and half code (which wants
   the strong model). Wall time
   (``perf_counter``) and this thread's CPU time (``thread_time``: the web process's share, not
   PostgreSQL's or Redis's). No provider call: streaming is the same either way.
2. ``turn_route`` alone, warm (the policy and prices cached): a plain question (no query) and
   a code question (one read of the quota period).
3. The decision alone (``route_decide``, ``timeit``): short, code, long and maximum-length
   questions.

Prints JSON and writes bench/results/routing_overhead.json. Method and results: bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time
import timeit
import uuid
from typing import Any

from bench.children import RESULTS
from bench.databases import bench_database
from bench.stats import distribution

CHEAP, STRONG = "bench-cheap", "bench-strong"
FINISH: list[tuple[float, float]] = []  # the last finish step's wall and CPU ms
PLAIN = "How do refunds work for orders paid by card?"
CODE = (
    "Why does this fail?\n```python\ndef total(items):\n    return sum(i.price for i in items\n```"
)


def django_setup() -> None:
    os.environ["DATABASE_URL"] = bench_database("_bench_routing")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from django.conf import settings

    settings.BILLING_ENABLED = True
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # configured, never called
    settings.CHAT_MODELS = [CHEAP, STRONG]


def catalogue_seed() -> Any:
    """Two priced models; a bench user on a capped plan (a budget worth reading)."""
    from billing.models import ModelPrice
    from billing.services import plan_assign, plan_set
    from chatbot.users.models import User

    for model, prices in {CHEAP: (150_000, 600_000), STRONG: (2_500_000, 10_000_000)}.items():
        ModelPrice.objects.update_or_create(
            model=model, defaults={"input_price": prices[0], "output_price": prices[1]}
        )
    user, _ = User.objects.get_or_create(username="bench-routing")
    plan, _ = plan_set(name="bench-routing", requests_per_minute=1_000_000, tokens_per_month=10**15)
    plan_assign(user_id=user.pk, plan=plan)
    return user


def begin_once(user: Any, conversation_id: int, question: str) -> tuple[float, float, str]:
    """One begin step, then its finish (the next turn may then begin): wall ms, CPU ms, model.

    Both steps are timed (the route is written by the finish); the first tuple values are the
    begin's, the finish's go to ``FINISH``.
    """
    from conversations.generation import turn_start
    from conversations.models import Message
    from conversations.services import TurnOutcome, turn_finish

    wall, cpu = time.perf_counter(), time.thread_time()
    turn, plan = turn_start(
        user=user,
        conversation_id=conversation_id,
        content=question,
        idempotency_key=uuid.uuid4().hex,
    )
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    assert plan is not None
    outcome = TurnOutcome(
        status=Message.Status.COMPLETE, content="ok", model=plan.model, route=plan.route
    )
    finish_wall, finish_cpu = time.perf_counter(), time.thread_time()
    turn_finish(message_id=turn.assistant_message.pk, outcome=outcome)
    FINISH.append(
        ((time.perf_counter() - finish_wall) * 1000, (time.thread_time() - finish_cpu) * 1000)
    )
    return wall * 1000, cpu * 1000, plan.model


def begin_overhead(user: Any, turns: int) -> dict[str, Any]:
    from conversations.services import conversation_create

    kinds = ("auto", "fixed")
    conversations = {
        "auto": conversation_create(owner=user, title="bench", model="auto").pk,
        "fixed": conversation_create(owner=user, title="bench", model=CHEAP).pk,
    }
    wall: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    finish_wall: dict[str, list[float]] = {kind: [] for kind in kinds}
    finish_cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    models: dict[str, int] = {}
    for kind in kinds:  # warm-up: connections, imports, the policy cache
        begin_once(user, conversations[kind], PLAIN)
    for n in range(turns):
        question = CODE if n % 2 else PLAIN
        # Turn by turn, the order swapped every other pair: both kinds see the same load.
        for kind in kinds if n % 4 < 2 else kinds[::-1]:
            wall_ms, cpu_ms, model = begin_once(user, conversations[kind], question)
            wall[kind].append(wall_ms)
            cpu[kind].append(cpu_ms)
            finish_wall[kind].append(FINISH[-1][0])
            finish_cpu[kind].append(FINISH[-1][1])
            if kind == "auto":
                models[model] = models.get(model, 0) + 1
    paired = [a - f for a, f in zip(wall["auto"], wall["fixed"], strict=True)]
    paired_cpu = [a - f for a, f in zip(cpu["auto"], cpu["fixed"], strict=True)]
    return {
        "wall_ms": {kind: distribution(wall[kind]) for kind in kinds},
        "cpu_ms": {kind: distribution(cpu[kind]) for kind in kinds},
        "auto_minus_fixed_ms": {
            "wall_p50": round(
                statistics.median(wall["auto"]) - statistics.median(wall["fixed"]), 3
            ),
            "cpu_p50": round(statistics.median(cpu["auto"]) - statistics.median(cpu["fixed"]), 3),
        },
        "paired_difference_ms": {
            "wall": distribution(paired),
            "cpu": distribution(paired_cpu),
        },
        "auto_over_fixed": {
            "wall_p50": round(
                statistics.median(wall["auto"]) / statistics.median(wall["fixed"]), 3
            ),
            "cpu_p50": round(statistics.median(cpu["auto"]) / statistics.median(cpu["fixed"]), 3),
        },
        "auto_models": models,
        "finish_wall_ms": {kind: distribution(finish_wall[kind]) for kind in kinds},
        "finish_cpu_ms": {kind: distribution(finish_cpu[kind]) for kind in kinds},
    }


def route_alone(user: Any, runs: int = 300) -> dict[str, Any]:
    """``turn_route`` with the cache warm: a plain question, and a code question (which wants
    the strong model, so the quota period is read)."""
    from billing.plan_cache import plan_for_user_cached
    from conversations.generation import plan_build
    from conversations.services import conversation_create, turn_begin
    from conversations.turn_routing import turn_route

    conversation = conversation_create(owner=user, title="bench", model="auto")
    key = uuid.uuid4().hex
    turn = turn_begin(
        user=user, conversation_id=conversation.pk, content=PLAIN, idempotency_key=key
    )
    plan = plan_build(turn.conversation, turn.user_message, turn.assistant_message, user=user)
    billing_plan = plan_for_user_cached(user_id=user.pk)
    result = {}
    for name, question in (("plain", PLAIN), ("code", CODE)):
        wall, cpu = [], []
        for _ in range(runs):
            started, cpu_started = time.perf_counter(), time.thread_time()
            turn_route(plan=plan, question=question, user=user, billing_plan=billing_plan)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - cpu_started) * 1000)
        result[name] = {"wall_ms": distribution(wall), "cpu_ms": distribution(cpu)}
    return result


def decision_alone() -> dict[str, float]:
    """Microseconds per ``route_decide`` call (best of 5 timeit repeats)."""
    from conversations.model_routing import ModelPair, RouteRequest, route_decide
    from conversations.routing_policy import routing_config

    policy = routing_config().policy
    pair = ModelPair(CHEAP, STRONG)
    prose = "Please tell me more about the refund policy for international orders. "
    questions = {
        "short_plain": PLAIN,
        "code": CODE,
        "long_1200_chars": (prose * 20)[:1200],
        "max_32000_chars": (prose * 500)[:32000],
    }
    result = {}
    for name, question in questions.items():
        request = RouteRequest(question=question, context_tokens=400, has_sources=False)
        timer = timeit.Timer(
            functools.partial(route_decide, request=request, policy=policy, pair=pair)
        )
        number = 2000 if len(question) < 2000 else 50
        best = min(timer.repeat(repeat=5, number=number)) / number
        result[name] = round(best * 1e6, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300, help="turns on auto (and on fixed)")
    args = parser.parse_args()
    django_setup()
    user = catalogue_seed()
    load_before = os.getloadavg()
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "begin": begin_overhead(user, args.turns),
        "turn_route_warm": route_alone(user),
        "route_decide_us": decision_alone(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "routing_overhead.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
