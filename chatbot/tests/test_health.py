import socket
import subprocess

import pytest
from django.test import override_settings

from chatbot import embedded


@pytest.fixture
def throwaway_redis(tmp_path):
    """A Redis of this test's own, so stopping it disturbs no other test."""
    port = free_port()
    process = embedded.redis_server_start(tmp_path / "redis", port)
    yield process, port, tmp_path / "redis"
    process.kill()
    process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_healthz_answers_without_touching_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_green_when_every_dependency_answers(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "database",
        "redis",
        "broker",
    }


@pytest.mark.django_db
def test_readyz_reports_503_while_redis_is_down_and_recovers(client, throwaway_redis):
    process, port, redis_dir = throwaway_redis
    url = f"redis://127.0.0.1:{port}/0"
    with override_settings(REDIS_URL=url, CELERY_BROKER_URL=url):
        assert client.get("/readyz").status_code == 200
        process.terminate()
        process.wait(10)
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["redis"]["ok"] is False
        assert down.json()["checks"]["broker"]["ok"] is False
        assert down.json()["checks"]["database"]["ok"] is True
        restarted = embedded.redis_server_start(redis_dir, port)
        try:
            assert client.get("/readyz").status_code == 200
        finally:
            restarted.kill()
            restarted.wait()


def test_healthz_refuses_other_methods(client):
    assert client.post("/healthz").status_code == 405


def test_throwaway_redis_really_stops(throwaway_redis):
    process, port, _ = throwaway_redis
    process.terminate()
    process.wait(10)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    assert process.returncode is not None
    assert isinstance(process, subprocess.Popen)
