"""Command line: `python -m llm.fake_server --port 9100 [options]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from llm.fake_server.app import start_server
from llm.fake_server.state import FAIL_MODES, FakeServerConfig


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    args = _parser().parse_args(argv)
    config = FakeServerConfig(
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        tokens=args.tokens,
        fail=args.fail,
        fail_after=args.fail_after,
        retry_after=args.retry_after,
        flag_words=tuple(args.flag_word),
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(config, args.host, args.port))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm.fake_server",
        description="A fake OpenAI-compatible server for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--ttft-ms", type=float, default=0, help="delay before tokens")
    parser.add_argument("--tokens-per-s", type=float, default=0, help="0: as fast as possible")
    parser.add_argument("--tokens", type=int, default=20, help="answer length")
    parser.add_argument("--fail", choices=FAIL_MODES, default="none")
    parser.add_argument("--fail-after", type=int, default=0, help="tokens sent before reset/stall")
    parser.add_argument(
        "--retry-after", type=float, default=None, help="Retry-After seconds with 429"
    )
    parser.add_argument(
        "--flag-word", action="append", default=[], help="/v1/moderations flags it (repeatable)"
    )
    return parser


async def _serve_forever(config: FakeServerConfig, host: str, port: int) -> None:
    runner, _, bound_port = await start_server(config, host, port)
    print(f"fake OpenAI-compatible server on http://{host}:{bound_port}/v1", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
