"""Plans, subscriptions, prices: seeding, the plan command, model choice, negative prices."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from billing.models import ModelPrice, Plan, Subscription
from billing.selectors import plan_for_user
from billing.tests.conftest import plan_make, user_on
from chatbot.users.tests.factories import UserFactory
from conversations.exceptions import InvalidInput
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db


def test_free_pro_and_enterprise_are_seeded():
    assert {"free", "pro", "enterprise"} <= set(Plan.objects.values_list("name", flat=True))
    assert Plan.objects.get(name="enterprise").tokens_per_month is None


def test_a_new_user_is_on_the_free_plan():
    user = UserFactory.create(username="newcomer")
    assert Subscription.objects.get(user=user).plan.name == "free"
    assert plan_for_user(user_id=user.pk).name == "free"


def test_a_negative_price_is_refused_by_validation():
    price = ModelPrice(model="m", input_price=-1, output_price=0)
    with pytest.raises(ValidationError) as refused:
        price.full_clean()
    assert "input_price" in refused.value.message_dict


def test_a_negative_price_is_refused_by_the_database():
    ModelPrice.objects.create(model="m", input_price=0, output_price=0)  # zero is allowed
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelPrice.objects.filter(model="m").update(output_price=-5)


def test_plan_set_creates_then_updates_only_the_given_limits():
    out = StringIO()
    call_command(
        "plan",
        "set",
        "team",
        "--tokens-per-month",
        "1000",
        "--requests-per-minute",
        "5",
        stdout=out,
    )
    call_command(
        "plan", "set", "team", "--tokens-per-month", "2000", "--models", "a, b", stdout=out
    )
    plan = Plan.objects.get(name="team")
    assert (plan.tokens_per_month, plan.requests_per_minute) == (2000, 5)
    assert plan.models_allowed == ["a", "b"]
    assert "plan team created" in out.getvalue() and "plan team updated" in out.getvalue()


def test_plan_set_refuses_a_bad_name_and_negative_numbers():
    with pytest.raises(CommandError):
        call_command("plan", "set", "not a slug!", "--tokens-per-month", "5")
    with pytest.raises(CommandError):
        call_command("plan", "set", "ok", "--tokens-per-month", "-5")


def test_plan_assign_moves_a_user_and_refuses_unknown_names():
    user = UserFactory.create(username="bob")
    call_command("plan", "assign", "bob", "pro", stdout=StringIO())
    assert plan_for_user(user_id=user.pk).name == "pro"
    with pytest.raises(CommandError, match="No plan"):
        call_command("plan", "assign", "bob", "platinum")
    with pytest.raises(CommandError, match="No user"):
        call_command("plan", "assign", "nobody", "pro")


def test_a_plan_limits_the_models_a_conversation_may_use(settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    settings.CHAT_MODELS = ["gpt-4o-mini", "gpt-4o"]
    user = user_on(plan_make(models_allowed=["gpt-4o-mini"]))
    assert conversation_create(owner=user).model == "gpt-4o-mini"
    with pytest.raises(InvalidInput):
        conversation_create(owner=user, model="gpt-4o")


def test_the_catalogue_offers_its_enabled_models_when_it_has_any(settings, client):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    settings.CHAT_MODELS = ["gpt-4o-mini"]
    ModelPrice.objects.create(model="gpt-4o-mini", input_price=150_000, output_price=600_000)
    ModelPrice.objects.create(model="gpt-4.1", input_price=2_000_000, output_price=8_000_000)
    ModelPrice.objects.create(model="retired", input_price=0, output_price=0, enabled=False)
    user = user_on(plan_make())
    client.force_login(user)
    page = client.get("/").content.decode()
    assert 'value="gpt-4o-mini"' in page and 'value="gpt-4.1"' in page
    assert "retired" not in page
    with pytest.raises(InvalidInput):
        conversation_create(owner=user, model="retired")
