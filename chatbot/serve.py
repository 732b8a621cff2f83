"""The web process: uvicorn (default) or daphne, on uvloop unless ``WEB_EVENT_LOOP=asyncio``.

``WEB_SERVER`` picks the ASGI server:

- ``uvicorn`` (default): httptools for HTTP and the sans-I/O ``websockets`` implementation for
  websockets, straight on the event loop. Relaying many small websocket frames costs about a
  sixth less CPU than daphne's Twisted transport (bench/README.md, "ASGI server").
- ``daphne``: the Channels reference server. Daphne builds Twisted's asyncio reactor on a loop it
  creates when ``daphne.server`` is imported, so the loop policy is chosen before that import.

Neither server rewrites the client address from ``X-Forwarded-For``: the application reads it
itself, believing only the hops added by ``TRUSTED_PROXIES`` (``billing.ratelimit.client_ip``),
and Django reads ``X-Forwarded-Proto`` through ``SECURE_PROXY_SSL_HEADER``.

Usage: ``python -m chatbot.serve [-b HOST] [-p PORT] [APP]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os

EVENT_LOOPS = ("uvloop", "asyncio")
SERVERS = ("uvicorn", "daphne")
# The consumer refuses frames over 256 KiB with an error frame; anything much larger is closed
# by the server (1009) before it is read into memory.
WS_MAX_BYTES = 2 * 1024 * 1024


def event_loop_choose(name: str) -> None:
    """Install the event loop policy called ``name`` (before daphne is imported)."""
    if name not in EVENT_LOOPS:
        raise SystemExit(f"WEB_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {name!r}")
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def server_choose(name: str) -> str:
    if name not in SERVERS:
        raise SystemExit(f"WEB_SERVER must be one of {', '.join(SERVERS)}, not {name!r}")
    return name


def arguments_parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chatbot.serve", description=__doc__)
    parser.add_argument("-b", "--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("-p", "--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument("app", nargs="?", default="chatbot.asgi:application")
    return parser.parse_args(argv)


def uvicorn_run(args: argparse.Namespace, loop: str) -> None:
    import uvicorn

    uvicorn.run(
        args.app,
        host=args.bind,
        port=args.port,
        loop=loop,
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=WS_MAX_BYTES,
        # Answers are short text frames sent as they come: compressing each costs CPU on both
        # ends for little gain.
        ws_per_message_deflate=False,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        access_log=os.environ.get("WEB_ACCESS_LOG", "1") != "0",
        timeout_graceful_shutdown=10,
    )


def daphne_run(args: argparse.Namespace, loop: str) -> None:
    event_loop_choose(loop)
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["-b", args.bind, "-p", str(args.port), args.app])


def main(argv: list[str] | None = None) -> None:
    loop = os.environ.get("WEB_EVENT_LOOP", "uvloop")
    if loop not in EVENT_LOOPS:
        event_loop_choose(loop)  # raises the clear message
    server = server_choose(os.environ.get("WEB_SERVER", "uvicorn"))
    args = arguments_parse(argv)
    if server == "uvicorn":
        uvicorn_run(args, loop)
    else:
        daphne_run(args, loop)


if __name__ == "__main__":
    main()
