import socket

import pytest
import redis

from chatbot import embedded


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path / "data"
    embedded.postgres_stop(tmp_path / "data")
    embedded.redis_stop(tmp_path / "data")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_postgres_starts_is_reused_and_stops(data_dir):
    import psycopg

    port = free_port()
    url = embedded.postgres_ensure(data_dir, port=port)
    assert url == embedded.postgres_ensure(data_dir, port=free_port())  # reused, same port
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert embedded.postgres_stop(data_dir) is True
    assert embedded.postgres_stop(data_dir) is False
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=1)


def test_redis_starts_is_reused_and_stops(data_dir):
    url = embedded.redis_ensure(data_dir, port=free_port())
    assert url == embedded.redis_ensure(data_dir)
    client = redis.Redis.from_url(url)
    assert client.ping() is True
    assert embedded.redis_stop(data_dir) is True
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_a_busy_port_gives_a_clear_error(data_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(embedded.EmbeddedServiceError, match=f"port {port}.*in use"):
            embedded.redis_ensure(data_dir, port=port)


def test_a_foreign_data_folder_is_refused_not_overwritten(data_dir):
    (data_dir / "postgres").mkdir(parents=True)
    precious = data_dir / "postgres" / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(embedded.EmbeddedServiceError, match="not a PostgreSQL data folder"):
        embedded.postgres_ensure(data_dir, port=free_port())
    assert precious.read_text() == "keep me"


def test_an_unusable_data_folder_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(embedded.EmbeddedServiceError, match="cannot create data folder"):
        embedded.redis_ensure(blocker / "data")


def test_a_port_from_the_environment_must_be_a_number(monkeypatch, data_dir):
    monkeypatch.setenv("EMBEDDED_REDIS_PORT", "eighty")
    with pytest.raises(embedded.EmbeddedServiceError, match="EMBEDDED_REDIS_PORT"):
        embedded.redis_ensure(data_dir)
