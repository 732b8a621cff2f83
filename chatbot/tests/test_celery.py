import pytest
from django.test import override_settings

from celery_app import app, ping


def test_a_task_runs_in_eager_mode():
    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        app.conf.task_always_eager = True
        try:
            result = ping.delay("eager")
        finally:
            app.conf.task_always_eager = False
    assert result.get(timeout=1) == "eager"


@pytest.mark.slow
def test_a_task_round_trips_through_the_real_broker_and_worker(celery_worker_process):
    result = ping.apply_async(args=("through redis",), queue=celery_worker_process.queue)
    assert result.get(timeout=30) == "through redis"
    assert "chatbot.ping" in celery_worker_process.log()


def test_celery_is_configured_for_safe_redelivery():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.accept_content == ["json"]
    assert conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]
    assert conf.task_soft_time_limit < conf.task_time_limit
