import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets

from chatbot.serve import SERVERS, event_loop_choose, main
from conftest import PROJECT_DIR, web_listening_port, worker_env


def test_an_unknown_event_loop_name_stops_the_web_process_with_a_clear_message():
    with pytest.raises(SystemExit, match="WEB_EVENT_LOOP must be one of uvloop, asyncio"):
        event_loop_choose("trio")


def test_daphne_builds_its_reactor_on_uvloop_when_the_web_process_starts():
    script = (
        "from chatbot.serve import event_loop_choose; event_loop_choose('uvloop');"
        "import daphne.server; from twisted.internet import reactor;"
        "print(type(reactor._asyncioEventloop).__module__)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "uvloop"


def test_the_standard_loop_stays_when_asked_for():
    before = asyncio.get_event_loop_policy()
    event_loop_choose("asyncio")
    assert asyncio.get_event_loop_policy() is before


def test_an_unknown_server_name_stops_the_web_process_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("WEB_SERVER", "gunicorn")
    with pytest.raises(SystemExit, match="WEB_SERVER must be one of uvicorn, daphne"):
        main([])


@pytest.mark.parametrize("server", SERVERS)
def test_each_server_serves_pages_and_runs_the_websocket_stack(server: str, tmp_path: Path):
    """The real process on a free port: a page answers, and a websocket without credentials is
    refused by the application's origin/auth stack (so the request reached Channels)."""
    log_path = tmp_path / "web.log"
    env = {**worker_env(), "WEB_SERVER": server}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatbot.serve", "-b", "127.0.0.1", "-p", "0"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        port = web_listening_port(process, log_path)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {"status": "ok"}

        async def handshake() -> int:
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws/conversations/1/"):
                    return 101
            except websockets.InvalidStatus as refused:
                return refused.response.status_code

        assert asyncio.run(handshake()) == 403
    finally:
        process.terminate()
        process.wait(15)
