"""A short per-process cache of users' plans, so a turn's rate limit costs no database trip.

Only the rate limit reads it: the quota reservation reads the plan's limits afresh in its own
statement (``billing.quota_sql``). A plan change therefore reaches quotas at once and rate
limits within ``BILLING_PLAN_CACHE_SECONDS`` in other processes; in this process, saving or
deleting a plan or subscription (admin, ``plan_set``, ``plan_assign``) clears the cache when its
transaction commits.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import transaction

from billing.models import Plan
from billing.selectors import plan_for_user

MAX_ENTRIES = 10_000  # a bound on memory: past it the cache starts over

entries: dict[int, tuple[float, Plan]] = {}


def plan_cached(*, user_id: int) -> Plan | None:
    """The user's cached plan if it is fresh, else None (no database trip: safe on the loop)."""
    hit = entries.get(user_id)
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def plan_for_user_cached(*, user_id: int) -> Plan:
    """The user's plan, at most ``BILLING_PLAN_CACHE_SECONDS`` old (0 disables the cache)."""
    now = time.monotonic()
    hit = entries.get(user_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    plan = plan_for_user(user_id=user_id)
    ttl = settings.BILLING_PLAN_CACHE_SECONDS
    if ttl > 0:
        if len(entries) >= MAX_ENTRIES:
            entries.clear()
        entries[user_id] = (now + ttl, plan)
    return plan


def plan_cache_clear() -> None:
    entries.clear()


def plans_changed(sender: Any, **kwargs: Any) -> None:
    """Signal receiver (plans, subscriptions): forget cached plans now and when the change commits.

    Now, so this transaction sees its own change; at commit, because another thread may have
    cached the old plan in between.
    """
    plan_cache_clear()
    transaction.on_commit(plan_cache_clear)
