"""The routing policy: cached per process, changes seen by every process, staff edit it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from billing.models import ModelPrice, QuotaPeriod
from billing.selectors import budget_used_fraction, period_start_of
from billing.tests.conftest import plan_make, user_on
from chatbot.users.tests.factories import UserFactory
from conftest import PROJECT_DIR, worker_env
from conversations.generation import TurnPlan
from conversations.models import Message, RoutingPolicy
from conversations.routing_policy import cache, routing_config
from conversations.services import conversation_create
from conversations.turn_routing import turn_route
from conversations.turn_sql import begin_rows_insert

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def routing_fresh(settings: Any) -> Iterator[None]:
    """No cached policy from another test (flushed tables do not bump the version)."""
    settings.CHAT_MODELS = ["cheap-m", "strong-m"]
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # never called: these tests only route
    RoutingPolicy.objects.all().delete()
    cache.clear()
    yield
    cache.clear()


def policy_make(**fields: Any) -> RoutingPolicy:
    RoutingPolicy.objects.update(active=False)
    return RoutingPolicy.objects.create(name=fields.pop("name", "test"), **fields)


def prices_make() -> None:
    ModelPrice.objects.create(model="cheap-m", input_price=100, output_price=200)
    ModelPrice.objects.create(model="strong-m", input_price=9_000, output_price=30_000)


def other_process(code: str) -> str:
    """Run ``code`` in a new Python process with Django set up on the test database."""
    script = f"import django\ndjango.setup()\n{code}"
    env = {**worker_env(), "CHATBOT_ENV": "test"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_policy_saved_by_another_process_is_seen_here(settings):
    policy_make(long_question_chars=1200)
    settings.ROUTING_POLICY_CHECK_SECONDS = 3600
    assert routing_config().policy.long_question_chars == 1200

    other_process(
        "from conversations.models import RoutingPolicy\n"
        "policy = RoutingPolicy.objects.get(active=True)\n"
        "policy.long_question_chars = 7\n"
        "policy.save()\n"
    )
    # Within the check interval this process keeps its copy (no Redis read per turn)...
    assert routing_config().policy.long_question_chars == 1200
    # ...and at the next check it sees the new version.
    settings.ROUTING_POLICY_CHECK_SECONDS = 0
    assert routing_config().policy.long_question_chars == 7


def test_a_price_change_here_is_seen_at_once_and_by_another_process(settings):
    settings.ROUTING_POLICY_CHECK_SECONDS = 3600
    prices_make()
    assert routing_config().prices == {"cheap-m": 300, "strong-m": 39_000}
    ModelPrice.objects.filter(model="strong-m").get().delete()
    assert routing_config().prices == {"cheap-m": 300}

    seen = other_process(
        "from conversations.routing_policy import routing_config\n"
        "print(sorted(routing_config().prices))\n"
    )
    assert seen.strip() == "['cheap-m']"


def test_a_cached_policy_costs_no_query(settings, django_assert_num_queries):
    settings.ROUTING_POLICY_CHECK_SECONDS = 0
    policy_make()
    routing_config()
    with django_assert_num_queries(0):
        routing_config()  # same version in Redis: the copy is kept


def test_without_an_active_policy_the_built_in_rules_apply():
    RoutingPolicy.objects.create(name="off", active=False, long_question_chars=3)
    assert routing_config().policy.name == "built-in"


def test_a_bad_pattern_written_around_validation_turns_code_cues_off():
    policy_make(code_patterns="(unclosed", reasoning_cues="compare")
    policy = routing_config().policy
    assert policy.code_patterns is None and policy.reasoning_cues is not None


def begun_turn(user: Any, conversation: Any, content: str) -> TurnPlan:
    rows = begin_rows_insert(
        owner_id=user.pk, conversation_id=conversation.pk, content=content, key="k"
    )
    assert rows is not None
    return TurnPlan(
        message_id=rows.answer.pk,
        conversation_id=conversation.pk,
        model=rows.answer.model,
        messages=[],
        max_tokens=100,
        summarize_through_id=None,
        prompt_tokens_estimate=50,
    )


def test_routing_costs_no_query_unless_the_budget_can_change_the_model(
    django_assert_num_queries,
):
    prices_make()
    user = user_on(plan_make())  # no caps: the budget cannot matter
    plan = user.subscription.plan
    fixed = begun_turn(user, conversation_create(owner=user, title="f", model="strong-m"), "Hi")
    auto = begun_turn(user, conversation_create(owner=user, title="a", model="auto"), "Hi")
    code = "def f(x):\n    return x"
    routing_config()  # warm, as in a running process

    with django_assert_num_queries(0):
        assert turn_route(plan=fixed, question="Hi", user=user, billing_plan=plan) is fixed
        plain = turn_route(plan=auto, question="Hi", user=user, billing_plan=plan)
        strong = turn_route(plan=auto, question=code, user=user, billing_plan=plan)

    assert plain.route is not None and strong.route is not None
    assert (plain.model, plain.route.reason) == ("cheap-m", "simple")
    assert (strong.model, strong.route.reason) == ("strong-m", "code")
    # Recorded with the outcome at finish, not here: the answer row still says auto.
    assert Message.objects.get(pk=auto.message_id).model == "auto"


def test_the_budget_is_read_only_when_the_strong_model_is_wanted(django_assert_num_queries):
    prices_make()
    user = user_on(plan_make(tokens_per_month=1000))
    plan = user.subscription.plan
    turn = begun_turn(user, conversation_create(owner=user, title="a", model="auto"), "Hi")
    code = "def f(x):\n    return x"
    routing_config()

    with django_assert_num_queries(0):
        assert turn_route(plan=turn, question="Hi", user=user, billing_plan=plan).model == "cheap-m"
    with django_assert_num_queries(1):  # the quota period's row
        assert (
            turn_route(plan=turn, question=code, user=user, billing_plan=plan).model == "strong-m"
        )


@pytest.mark.parametrize("used", [0, 799, 800, 801, 1000, 1500])
def test_the_budget_used_decides_at_the_policys_threshold(used):
    prices_make()
    user = user_on(plan_make(tokens_per_month=1000))
    plan = user.subscription.plan
    QuotaPeriod.objects.create(
        user=user, period_start=period_start_of(timezone.now()), tokens_used=used
    )
    code = "def f(x):\n    return x"
    turn = begun_turn(user, conversation_create(owner=user, title="a", model="auto"), code)

    routed = turn_route(plan=turn, question=code, user=user, billing_plan=plan)

    assert budget_used_fraction(user_id=user.pk, plan=plan) == used / 1000
    assert routed.route is not None
    near_cap = used >= 800  # the default policy's budget_prefer_cheap_at (0.8)
    assert routed.model == ("cheap-m" if near_cap else "strong-m")
    assert routed.route.reason == ("budget" if near_cap else "code")
    assert routed.route.detail["budget_used"] == used / 1000


def test_auto_is_refused_when_the_plan_offers_no_model():
    from conversations.exceptions import InvalidInput

    user = user_on(plan_make(models_allowed=["nothing-like-this"]))
    with pytest.raises(InvalidInput):
        conversation_create(owner=user, title="x", model="auto")


# ---- REST: PATCH of the model ---------------------------------------------------------------


@pytest.fixture
def api_user(client: Any) -> Any:
    prices_make()
    user = user_on(plan_make(models_allowed=["cheap-m"]))
    client.force_login(user)
    return user


def patch(client: Any, conversation_id: int, body: dict[str, Any]) -> Any:
    return client.patch(
        f"/api/v1/conversations/{conversation_id}", body, content_type="application/json"
    )


def test_patch_switches_a_conversation_to_auto_and_back(client, api_user):
    conversation = conversation_create(owner=api_user, title="p", model="cheap-m")

    response = patch(client, conversation.pk, {"model": "auto"})
    assert response.status_code == 200 and response.json()["model"] == "auto"
    assert patch(client, conversation.pk, {"model": "cheap-m"}).json()["model"] == "cheap-m"
    conversation.refresh_from_db()
    assert conversation.model == "cheap-m"


@pytest.mark.parametrize(
    ("model", "status"), [("strong-m", 400), ("gpt-9", 400), ("", 400), ("x" * 101, 400)]
)
def test_patch_refuses_a_model_the_plan_does_not_allow(client, api_user, model, status):
    conversation = conversation_create(owner=api_user, title="p", model="cheap-m")

    response = patch(client, conversation.pk, {"model": model})

    assert response.status_code == status
    conversation.refresh_from_db()
    assert conversation.model == "cheap-m"


def test_patch_of_someone_elses_conversation_is_404(client, api_user):
    victim = conversation_create(owner=UserFactory.create(username="victim"), title="v")
    assert patch(client, victim.pk, {"model": "auto"}).status_code == 404


# ---- Admin ----------------------------------------------------------------------------------


def test_staff_edit_routing_policies_in_the_admin(admin_client):
    policy = policy_make(name="strict")
    assert admin_client.get("/admin/conversations/routingpolicy/").status_code == 200
    page = admin_client.get(f"/admin/conversations/routingpolicy/{policy.pk}/change/")
    assert page.status_code == 200 and "budget_prefer_cheap_at" in page.content.decode()
    assert admin_client.get("/admin/conversations/routingpolicy/add/").status_code == 200


def admin_form(**changes: Any) -> dict[str, Any]:
    form = {
        "name": "second",
        "active": "on",
        "long_question_chars": 1200,
        "long_context_tokens": 3000,
        "code_patterns": "",
        "reasoning_cues": "",
        "reasoning_min_cues": 1,
        "sources_prefer_strong": "on",
        "budget_prefer_cheap_at": 0.8,
        "cheap_model": "",
        "strong_model": "",
    }
    return {**form, **changes}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({}, "Another policy is active"),
        ({"active": "", "code_patterns": "(unclosed"}, "not a regular expression"),
        ({"active": "", "budget_prefer_cheap_at": 1.5}, "less than or equal to 1"),
    ],
)
def test_the_admin_refuses_a_bad_policy_with_a_message(admin_client, changes, error):
    policy_make(name="first")
    response = admin_client.post("/admin/conversations/routingpolicy/add/", admin_form(**changes))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert RoutingPolicy.objects.count() == 1


def test_messages_are_filtered_by_route_reason_in_the_admin(admin_client, admin_user):
    conversation = conversation_create(owner=admin_user, title="Routed")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="answer",
        model="strong-m",
        route_reason="code",
        route_detail={"cues": ["def f("]},
    )
    listing = admin_client.get("/admin/conversations/message/?route_reason=code")
    assert listing.status_code == 200 and "strong-m" in listing.content.decode()
    assert admin_client.get("/admin/conversations/message/?route_reason=budget").status_code == 200
    message = Message.objects.get(route_reason="code")
    detail = admin_client.get(f"/admin/conversations/message/{message.pk}/change/")
    assert "def f(" in detail.content.decode()
