"""Test settings: the real services, each xdist worker on its own Redis database."""

import os

os.environ.setdefault("CHATBOT_ENV", "test")

from chatbot.settings import *  # noqa: F403
from chatbot.settings import CACHES, CHANNEL_LAYERS, DATABASES, REDIS_URL


def redis_url_for_worker(url: str) -> str:
    """Database 1 + the xdist worker number, so parallel workers never see each other's keys."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{1 + int(worker or 0)}"


REDIS_URL = redis_url_for_worker(REDIS_URL)
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CACHES = {"default": {**CACHES["default"], "LOCATION": REDIS_URL}}
CHANNEL_LAYERS = {
    "default": {
        **CHANNEL_LAYERS["default"],
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "prefix": "test"},
    }
}
# Async tests run DB steps in worker threads: close each connection so teardown can drop the DB.
DATABASES["default"]["CONN_MAX_AGE"] = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# The answer cache would make repeated questions across tests interfere; its tests turn it on.
ANSWER_CACHE_ENABLED = False
