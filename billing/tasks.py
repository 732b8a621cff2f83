"""Celery tasks: thin shells that call a service."""

from celery import shared_task

from billing.rollup import usage_rollup_recent


@shared_task(name="billing.usage_rollup")
def usage_rollup_task() -> int:
    return usage_rollup_recent()
