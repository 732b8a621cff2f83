# The Celery app is configured whenever Django is, so `.delay()` from the web process uses the
# project's broker rather than Celery's default app (see the Celery guide for Django).
from celery_app import app as celery_app

__all__ = ["celery_app"]
