"""What failover adds to time-to-first-token, and what output moderation costs the relay.

    .venv/bin/python -m bench.failover_ttft [--rounds 30] [--ttft-ms 50] [--relay-turns 8]

Part 1, failover TTFT: two fake servers play two providers ("primary", "backup"); one web process
serves three models. `fake-model` is answered by the primary (the baseline), `fake-500` and
`fake-429` make the primary fail at once (the fake server fails by model name) and fall back to
the backup. Each round runs one turn of each, sequentially, in a shuffled order; the failover's
platform-added TTFT is the median TTFT of a failover turn minus the median of a normal turn,
measured in the same run over websockets (message.send -> first delta). The breaker threshold is
set out of reach here, so every failover turn really asks the primary first.

Part 2, moderation cost: three web processes that differ only in `MODERATION` (off, rules,
openai against the fake server's /v1/moderations) relay long answers sent as fast as possible
(`--relay-tokens`); per process: relay throughput (tokens / (done - send)) and web CPU per 1k
tokens (psutil), with ratios against `off` from the same run.

Part 3, in process: the output watch (default rules, default windows) over 100,000 tokens against
the same stream unwatched: the moderation CPU per 1,000 tokens without any network or relay noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

from bench.children import HOST, RESULTS, Child, child_process, free_port
from bench.stats import cpu_of, distribution
from bench.stream_clients import expected_answer, product_turn, socket_open
from bench.stream_load import bench_cleanup, bench_identity, django_setup
from llm.chat import ChatEvent, Delta, Finish
from llm.moderation import DEFAULT_RULES_FILE, OutputWatch, RuleModerator

FAILOVER_MODELS = {"normal": "fake-model", "after_500": "fake-500", "after_429": "fake-429"}
MODERATION_MODES = ("off", "rules", "openai")
TURN_TIMEOUT_S = 120


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.failover_ttft")
    parser.add_argument("--rounds", type=int, default=30, help="turns per model (part 1)")
    parser.add_argument("--ttft-ms", type=float, default=50, help="fake servers' first token")
    parser.add_argument("--tokens", type=int, default=20, help="answer length (part 1)")
    parser.add_argument("--relay-turns", type=int, default=8, help="turns per process (part 2)")
    parser.add_argument("--relay-tokens", type=int, default=3000, help="answer length (part 2)")
    parser.add_argument("--output", type=Path, default=RESULTS / "failover_ttft.json")
    args = parser.parse_args(argv)
    if min(args.rounds, args.tokens, args.relay_turns, args.relay_tokens) < 1:
        parser.error("--rounds, --tokens, --relay-turns, --relay-tokens: at least 1")
    return args


def fake_command(port: int, *options: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "llm.fake_server", "--host", HOST, "--port", str(port)]
    return {"argv": [*argv, *options], "port": port, "ready_path": "/v1/models"}


def web_command(env: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    argv = [sys.executable, "-m", "chatbot.serve", "-b", HOST, "-p", str(port)]
    # Every turn asks "Hello?" first: the answer cache would serve most of them.
    env = {"ANSWER_CACHE_ENABLED": "0", **env}
    return {"argv": argv, "port": port, "ready_path": "/healthz", "env": env}


def child_commands(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    ports = {name: free_port() for name in ("primary", "backup", "bulk")}
    url = {name: f"http://{HOST}:{port}/v1" for name, port in ports.items()}
    timing = ["--ttft-ms", str(args.ttft_ms), "--tokens", str(args.tokens)]
    commands = {
        "primary": fake_command(ports["primary"], *timing),
        "backup": fake_command(ports["backup"], *timing),
        "bulk": fake_command(ports["bulk"], "--tokens", str(args.relay_tokens)),
    }
    # Each model: the primary (failing by model name), then the backup's healthy model.
    routes = ";".join(f"{m}=primary:{m},backup:fake-model" for m in FAILOVER_MODELS.values())
    commands["web_failover"] = web_command(
        {
            "CHAT_PROVIDERS": f"primary={url['primary']},backup={url['backup']}",
            "CHAT_FALLBACKS": routes,
            "CHAT_MODELS": ",".join(FAILOVER_MODELS.values()),
            "CHAT_BREAKER_THRESHOLD": "1000000000",
        }
    )
    for mode in MODERATION_MODES:
        commands[f"web_moderation_{mode}"] = web_command(
            {
                "OPENAI_BASE_URL": url["bulk"],
                "OPENAI_API_KEY": "bench",
                "CHAT_MODELS": "fake-model",
                "CHAT_MAX_OUTPUT_TOKENS": str(args.relay_tokens),
                "MODERATION": mode,
                "MODERATION_BASE_URL": url["bulk"],
            }
        )
    return commands


async def conversation_create(
    session: aiohttp.ClientSession, base: str, key: str, model: str
) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"title": "bench", "model": model}
    async with session.post(f"{base}/api/v1/conversations", json=body, headers=headers) as reply:
        if reply.status != 201:
            raise RuntimeError(f"creating a conversation: HTTP {reply.status}")
        return int((await reply.json())["id"])


async def socket_for(session: aiohttp.ClientSession, web: Child, key: str, model: str) -> Any:
    base = f"http://{HOST}:{web.port}"
    conversation_id = await conversation_create(session, base, key, model)
    return await socket_open(
        "aiohttp", session, f"ws://{HOST}:{web.port}/ws/conversations/{conversation_id}/", key
    )


async def failover_part(
    session: aiohttp.ClientSession, web: Child, key: str, args: argparse.Namespace
) -> dict[str, Any]:
    sockets = {
        kind: await socket_for(session, web, key, model) for kind, model in FAILOVER_MODELS.items()
    }
    expected = expected_answer(args.tokens)
    ttfts: dict[str, list[float]] = {kind: [] for kind in FAILOVER_MODELS}
    errors: dict[str, list[str]] = {kind: [] for kind in FAILOVER_MODELS}
    try:
        for sock in sockets.values():  # warm-up: connections, imports, thread pools
            await product_turn(sock, "warm up", expected, TURN_TIMEOUT_S)
        for _ in range(args.rounds):
            for kind in random.sample(list(sockets), len(sockets)):
                result = await product_turn(sockets[kind], "Hello?", expected, TURN_TIMEOUT_S)
                if result.error or result.ttft_ms is None:
                    errors[kind].append(result.error or "no_ttft")
                else:
                    ttfts[kind].append(result.ttft_ms)
    finally:
        for sock in sockets.values():
            await sock.close()
    base = statistics.median(ttfts["normal"])
    return {
        "ttft_ms": {kind: distribution(values) for kind, values in ttfts.items()},
        "failover_added_ttft_ms_p50": {
            kind: round(statistics.median(values) - base, 2)
            for kind, values in ttfts.items()
            if kind != "normal" and values
        },
        "errors": {kind: errs for kind, errs in errors.items() if errs},
    }


async def relay_turn(sock: Any, expected: str) -> tuple[float, str | None]:
    started = time.perf_counter()
    result = await product_turn(sock, "Tell me everything", expected, TURN_TIMEOUT_S)
    return time.perf_counter() - started, result.error


async def moderation_part(
    session: aiohttp.ClientSession, webs: dict[str, Child], key: str, args: argparse.Namespace
) -> dict[str, Any]:
    sockets = {mode: await socket_for(session, webs[mode], key, "fake-model") for mode in webs}
    processes = {mode: psutil.Process(web.process.pid) for mode, web in webs.items()}
    expected = expected_answer(args.relay_tokens)
    seconds: dict[str, list[float]] = {mode: [] for mode in webs}
    cpu: dict[str, float] = dict.fromkeys(webs, 0.0)
    errors: dict[str, list[str]] = {mode: [] for mode in webs}
    try:
        for sock in sockets.values():
            await relay_turn(sock, expected)  # warm-up
        for _ in range(args.relay_turns):
            for mode in random.sample(list(sockets), len(sockets)):
                before = cpu_of(processes[mode])
                elapsed, error = await relay_turn(sockets[mode], expected)
                cpu[mode] += cpu_of(processes[mode]) - before
                (errors[mode].append(error) if error else seconds[mode].append(elapsed))
    finally:
        for sock in sockets.values():
            await sock.close()
    return moderation_report(seconds, cpu, errors, args)


def moderation_report(
    seconds: dict[str, list[float]],
    cpu: dict[str, float],
    errors: dict[str, list[str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    tokens_per_s = {
        mode: round(args.relay_tokens / statistics.median(values))
        for mode, values in seconds.items()
        if values
    }
    cpu_per_1k = {
        mode: round(cpu[mode] * 1000 / (args.relay_turns * args.relay_tokens) * 1000, 2)
        for mode in cpu
    }
    off_rate, off_cpu = tokens_per_s.get("off"), cpu_per_1k["off"]
    return {
        "relay_tokens_per_s_p50": tokens_per_s,
        "web_cpu_ms_per_1k_tokens": cpu_per_1k,
        "throughput_vs_off": {m: round(v / off_rate, 3) for m, v in tokens_per_s.items()}
        if off_rate
        else {},
        "cpu_vs_off": {m: round(v / off_cpu, 3) for m, v in cpu_per_1k.items()} if off_cpu else {},
        "errors": {mode: errs for mode, errs in errors.items() if errs},
    }


async def tokens(count: int) -> AsyncIterator[ChatEvent]:
    for number in range(1, count + 1):
        yield Delta(f"tok{number} ")
    yield Finish("stop", None, None)


async def consume(stream: AsyncIterator[ChatEvent]) -> float:
    started = time.perf_counter()
    async for _ in stream:
        pass
    return time.perf_counter() - started


async def watch_part(count: int = 100_000, repeats: int = 5) -> dict[str, Any]:
    """In-process: the output watch (default rules and windows) over a stream of tokens."""
    from django.conf import settings

    rules = RuleModerator.from_file(DEFAULT_RULES_FILE)
    every, window = settings.MODERATION_OUTPUT_EVERY_CHARS, settings.MODERATION_OUTPUT_WINDOW_CHARS
    plain, watched = [], []
    for _ in range(repeats):
        plain.append(await consume(tokens(count)))
        watch = OutputWatch(rules, every=every, window=window)
        watched.append(await consume(watch.watch(tokens(count))))
    cost = (statistics.median(watched) - statistics.median(plain)) / count * 1e9
    return {
        "tokens": count,
        "plain_stream_us_per_1k_tokens": round(statistics.median(plain) / count * 1e9, 1),
        "watched_stream_us_per_1k_tokens": round(statistics.median(watched) / count * 1e9, 1),
        "moderation_us_per_1k_tokens": round(cost, 1),
    }


async def benchmark(
    children: dict[str, Child], key: str, args: argparse.Namespace
) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        failover = await failover_part(session, children["web_failover"], key, args)
        webs = {mode: children[f"web_moderation_{mode}"] for mode in MODERATION_MODES}
        moderation = await moderation_part(session, webs, key, args)
    return {"failover": failover, "moderation": moderation, "output_watch": await watch_part()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    django_setup()
    api_key, raw_key = bench_identity()
    try:
        with contextlib.ExitStack() as stack:
            children = {
                name: stack.enter_context(child_process(name, **command))
                for name, command in child_commands(args).items()
            }
            report = asyncio.run(benchmark(children, raw_key, args))
    finally:
        bench_cleanup(api_key)
    output = {
        "benchmark": "failover_ttft",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {**vars(args), "output": str(args.output)},
        **report,
    }
    text = json.dumps(output, indent=2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
