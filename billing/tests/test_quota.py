"""Quota reservations under concurrency, settling, and the monthly period (real PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connections

from billing.exceptions import QuotaExceeded
from billing.models import QuotaPeriod, UsageRecord
from billing.services import TurnRequest, TurnUsage, quota_reserve, usage_settle
from billing.tests.conftest import plan_make, user_on
from conversations.generation import turn_start
from conversations.models import Message
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db(transaction=True)


def race(count: int, attempt: Callable[[int], str]) -> list[str]:
    """Run ``attempt`` in ``count`` threads released together; each on its own connection."""
    barrier = threading.Barrier(count)

    def run(n: int) -> str:
        try:
            barrier.wait(timeout=30)
            return attempt(n)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def start(user: Any, conversation_id: int, key: str = "k") -> str:
    try:
        turn, _ = turn_start(
            user=user, conversation_id=conversation_id, content="Hello?", idempotency_key=key
        )
    except QuotaExceeded:
        return "refused"
    return f"turn {turn.assistant_message.pk}"


def test_fifty_concurrent_turns_against_room_for_one_admit_exactly_one(small_output):
    plan = plan_make(tokens_per_month=1500)  # one estimate (~1030) fits, two do not
    user = user_on(plan)
    conversations = [conversation_create(owner=user).pk for _ in range(50)]

    outcomes = race(50, lambda n: start(user, conversations[n]))

    assert outcomes.count("refused") == 49
    period = QuotaPeriod.objects.get(user=user)
    record = UsageRecord.objects.get(user=user)
    assert period.tokens_reserved == record.reserved_tokens <= 1500
    assert period.tokens_used == 0
    # A refused turn leaves nothing behind: the begin rolled back with the reservation.
    assert Message.objects.filter(conversation__owner=user).count() == 2


def test_a_new_users_first_concurrent_requests_create_one_period(small_output):
    user = user_on(plan_make(tokens_per_month=100_000))
    conversations = [conversation_create(owner=user).pk for _ in range(10)]
    assert not QuotaPeriod.objects.filter(user=user).exists()

    outcomes = race(10, lambda n: start(user, conversations[n]))

    assert all(outcome.startswith("turn ") for outcome in outcomes)
    period = QuotaPeriod.objects.get(user=user)
    records = UsageRecord.objects.filter(user=user)
    assert records.count() == 10
    assert period.tokens_reserved == sum(r.reserved_tokens for r in records)


def test_a_replayed_idempotency_key_reserves_once(small_output):
    user = user_on(plan_make(tokens_per_month=100_000))
    conversation = conversation_create(owner=user)
    first, second = start(user, conversation.pk), start(user, conversation.pk)
    assert first == second
    assert UsageRecord.objects.filter(user=user).count() == 1


def test_a_refusal_carries_the_start_of_next_month(small_output):
    user = user_on(plan_make(tokens_per_month=10))
    conversation = conversation_create(owner=user)
    with pytest.raises(QuotaExceeded) as refused:
        turn_start(user=user, conversation_id=conversation.pk, content="Hi", idempotency_key="k")
    reset_at = refused.value.reset_at
    assert (reset_at.day, reset_at.hour, reset_at.tzinfo) == (1, 0, UTC)
    assert reset_at > datetime.now(UTC)


def reserve(user: Any, message_id: int, conversation_id: int, plan: Any) -> int:
    request = TurnRequest(
        user_id=user.pk,
        conversation_id=conversation_id,
        message_id=message_id,
        model="gpt-4o-mini",
        prompt_tokens=100,
        max_output=900,
    )
    return quota_reserve(plan=plan, request=request)


def settle(message_id: int, status: str = "complete", completion: int = 50) -> bool:
    usage = TurnUsage(
        status=status, model="", provider="p", prompt_tokens=120, completion_tokens=completion
    )
    return usage_settle(message_id=message_id, usage=usage)


def begun(user: Any) -> tuple[int, int]:
    conversation = conversation_create(owner=user)
    from conversations.services import turn_begin

    turn = turn_begin(user=user, conversation_id=conversation.pk, content="q", idempotency_key="k")
    return turn.assistant_message.pk, conversation.pk


def test_settling_moves_the_reservation_to_actual_usage_once(small_output):
    plan = plan_make(tokens_per_month=10_000)
    user = user_on(plan)
    message_id, conversation_id = begun(user)
    reserve(user, message_id, conversation_id, plan)

    assert settle(message_id) is True
    assert settle(message_id, completion=999) is False  # a second settle changes nothing
    period = QuotaPeriod.objects.get(user=user)
    assert (period.tokens_reserved, period.tokens_used) == (0, 170)
    record = UsageRecord.objects.get(message_id=message_id)
    assert (record.status, record.prompt_tokens, record.completion_tokens) == ("complete", 120, 50)


def test_a_new_month_starts_a_new_period(small_output, monkeypatch):
    plan = plan_make(tokens_per_month=1500)
    user = user_on(plan)
    first_id, conversation_id = begun(user)
    monkeypatch.setattr(
        "billing.services.timezone.now", lambda: datetime(2031, 1, 31, 23, 59, tzinfo=UTC)
    )
    reserve(user, first_id, conversation_id, plan)
    settle(first_id)
    second_id, conversation_id = begun(user)
    monkeypatch.setattr(
        "billing.services.timezone.now", lambda: datetime(2031, 2, 1, 0, 0, 1, tzinfo=UTC)
    )
    reserve(user, second_id, conversation_id, plan)  # would not fit in January's budget

    periods = dict(QuotaPeriod.objects.filter(user=user).values_list("period_start", "tokens_used"))
    assert periods == {datetime(2031, 1, 1).date(): 170, datetime(2031, 2, 1).date(): 0}
    assert QuotaPeriod.objects.get(user=user, period_start="2031-02-01").tokens_reserved == 1000


def test_a_failure_before_any_text_bills_nothing_and_releases_the_reservation(small_output):
    plan = plan_make(tokens_per_month=10_000)
    user = user_on(plan)
    message_id, conversation_id = begun(user)
    reserve(user, message_id, conversation_id, plan)
    settle(message_id, status="failed", completion=0)
    period = QuotaPeriod.objects.get(user=user)
    assert (period.tokens_reserved, period.tokens_used, period.cost_used) == (0, 0, 0)
