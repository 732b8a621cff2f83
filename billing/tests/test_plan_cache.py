"""The per-process plan cache of the rate limit, and quotas that never trust it."""

from __future__ import annotations

from typing import Any

import pytest

from billing.exceptions import QuotaExceeded
from billing.models import Plan
from billing.plan_cache import plan_cache_clear, plan_for_user_cached
from billing.services import plan_assign, plan_set
from billing.tests.conftest import plan_make, user_on
from conversations.generation import turn_start
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    plan_cache_clear()


def test_a_cached_plan_is_read_without_a_query(django_assert_num_queries):
    user = user_on(plan_make(requests_per_minute=7))
    assert plan_for_user_cached(user_id=user.pk).requests_per_minute == 7
    with django_assert_num_queries(0):
        assert plan_for_user_cached(user_id=user.pk).requests_per_minute == 7


def test_assigning_or_editing_a_plan_clears_the_cache_once_committed(
    django_capture_on_commit_callbacks,
):
    user = user_on(plan_make(requests_per_minute=7))
    plan_for_user_cached(user_id=user.pk)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        plan_assign(user_id=user.pk, plan=plan_make(requests_per_minute=8))
    assert callbacks  # cleared again at commit, not only when the row was saved
    assert plan_for_user_cached(user_id=user.pk).requests_per_minute == 8

    name = plan_for_user_cached(user_id=user.pk).name
    plan_set(name=name, requests_per_minute=9)
    assert plan_for_user_cached(user_id=user.pk).requests_per_minute == 9


def test_the_cache_can_be_turned_off(settings, django_assert_num_queries):
    settings.BILLING_PLAN_CACHE_SECONDS = 0
    user = user_on(plan_make(requests_per_minute=7))
    plan_for_user_cached(user_id=user.pk)
    with django_assert_num_queries(1):
        plan_for_user_cached(user_id=user.pk)


def test_a_lowered_quota_refuses_the_next_turn_even_while_the_plan_is_cached(small_output: Any):
    plan = plan_make(tokens_per_month=None)
    user = user_on(plan)
    first, second = conversation_create(owner=user), conversation_create(owner=user)
    turn_start(user=user, conversation_id=first.pk, content="Hi", idempotency_key="a")
    # A change the cache does not hear of (no signal): the reservation reads the limits itself.
    Plan.objects.filter(pk=plan.pk).update(tokens_per_month=10)
    assert plan_for_user_cached(user_id=user.pk).tokens_per_month is None
    with pytest.raises(QuotaExceeded):
        turn_start(user=user, conversation_id=second.pk, content="Hi", idempotency_key="b")


def test_a_user_without_a_subscription_is_held_to_the_default_plan(settings, small_output: Any):
    user = user_on(plan_make(tokens_per_month=None))
    user.subscription.delete()
    plan_set(name=settings.BILLING_DEFAULT_PLAN, tokens_per_month=10)
    conversation = conversation_create(owner=user)
    with pytest.raises(QuotaExceeded):
        turn_start(user=user, conversation_id=conversation.pk, content="Hi", idempotency_key="a")
