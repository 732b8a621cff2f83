"""Fixtures for billing: users on plans made for the test, and the chat fixtures."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from billing.models import Plan
from billing.services import plan_assign, plan_set
from chatbot.users.tests.factories import UserFactory
from conversations.tests.conftest import (  # noqa: F401  (fixtures)
    FAKE_MODEL,
    alice,
    conversation,
    fake_llm,
    fake_server,
    mallory,
    provider_cleanup,
)


def plan_make(**limits: Any) -> Plan:
    """A plan of its own for one test; unset limits: none."""
    limits.setdefault("requests_per_minute", 0)
    plan, _ = plan_set(name=f"test-{uuid.uuid4().hex[:12]}", **limits)
    return plan


def user_on(plan: Plan, username: str | None = None) -> Any:
    user = UserFactory.create(username=username or f"u-{uuid.uuid4().hex[:10]}")
    plan_assign(user_id=user.pk, plan=plan)
    return user


@pytest.fixture
def small_output(settings: Any) -> int:
    """Answers of at most 1000 tokens: a turn's estimate is a bit over 1000."""
    settings.CHAT_MAX_OUTPUT_TOKENS = 1000
    return 1000
