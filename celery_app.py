"""The Celery app: broker and results on Redis, JSON only, settings under ``CELERY_``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

app = Celery("chatbot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="chatbot.ping")
def ping(value: str = "pong") -> str:
    """Echo: proves a worker is consuming from the broker (readiness probes, tests)."""
    return value
