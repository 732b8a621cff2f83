import asyncio
import subprocess
import sys

import pytest

from chatbot.serve import event_loop_choose


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
