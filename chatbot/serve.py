"""The web process: daphne, on uvloop's event loop unless ``WEB_EVENT_LOOP=asyncio``.

Daphne builds Twisted's asyncio reactor on a loop it creates when ``daphne.server`` is
imported, so the loop policy must be chosen before that import; ``daphne`` on its own
always gets the standard loop. uvloop runs the same callbacks with a much cheaper loop
iteration, which is most of what a web process relaying thousands of small frames a
second spends its time on (bench/README.md, "Event loop").

Usage: ``python -m chatbot.serve [daphne arguments]``.
"""

from __future__ import annotations

import asyncio
import os
import sys

EVENT_LOOPS = ("uvloop", "asyncio")


def event_loop_choose(name: str) -> None:
    """Install the event loop policy called ``name`` (before daphne is imported)."""
    if name not in EVENT_LOOPS:
        raise SystemExit(f"WEB_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {name!r}")
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main() -> None:
    event_loop_choose(os.environ.get("WEB_EVENT_LOOP", "uvloop"))
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(sys.argv[1:])


if __name__ == "__main__":
    main()
