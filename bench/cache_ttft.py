"""Time to first token of an answer-cache hit (exact and paraphrase) against a miss.

    .venv/bin/python -m bench.cache_ttft [--rounds 30] [--ttft-ms 50]

One fake OpenAI-compatible server (first token after ``--ttft-ms``) and two web processes that
differ only in ``ANSWER_CACHE_ENABLED``. Every turn is the first question of a new conversation
(only those are cached), over a websocket with the bench user's API key: message.send -> first
``turn.delta``. Per round, in a shuffled order:

- ``miss_cache_off``: a new question on the cache-off process (the baseline);
- ``miss_cache_on``: a new question on the cache-on process (lookup, then the model);
- ``exact_hit``: a question asked before, word for word, on the cache-on process;
- ``paraphrase_hit``: a rewording of a question asked before ("How do I ..." -> "How can I ...").

New questions are SciFact training claims (``../shared/data/scifact/queries.jsonl``); the seeded
questions are asked once before the rounds. A turn is classed by what happened (``cached`` in
``turn.done``), not by what was meant; surprises are counted. Platform-added TTFT = TTFT minus
the fake model's own TTFT for answers from the model; a hit asks no model. The bench user must
read no collection (answers without citations are kept only then). Results:
bench/results/cache_ttft.json.
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
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.children import HOST, RESULTS, Child, child_process, free_port
from bench.failover_ttft import conversation_create, fake_command
from bench.retrieval_eval import DEFAULT_DATA, read_jsonl
from bench.stats import distribution
from bench.stream_clients import socket_open
from bench.stream_load import bench_cleanup, bench_identity, django_setup

MODEL = "fake-model"
TASKS = [
    "reset my password", "change the email address on my account", "cancel my subscription",
    "update my billing details", "delete my account", "export my data",
    "invite a colleague to my team", "turn on two-factor authentication",
    "download last month's invoice", "change the language of the interface",
    "get a refund for an order", "transfer my licence to another person",
    "connect the app to my calendar", "set up single sign-on", "restore a deleted file",
    "change my profile picture", "add a second payment card", "upgrade to the business plan",
    "report a security problem", "share a folder with a client", "stop email notifications",
    "find my API key", "rename a workspace", "merge two accounts", "recover a hacked account",
    "print a receipt", "move files between projects", "limit who can see my documents",
    "track the status of a support ticket", "change my time zone",
]  # fmt: skip
TURN_TIMEOUT_S = 120


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_ttft")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--ttft-ms", type=float, default=50)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--claims", type=Path, default=DEFAULT_DATA / "queries.jsonl")
    parser.add_argument("--output", type=Path, default=RESULTS / "cache_ttft.json")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= len(TASKS):
        parser.error(f"--rounds: 1 to {len(TASKS)}")
    return args


def web_command(env: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    argv = [sys.executable, "-m", "chatbot.serve", "-b", HOST, "-p", str(port)]
    return {"argv": [*argv, "chatbot.asgi:application"], "port": port, "ready_path": "/healthz",
            "env": env}  # fmt: skip


def child_commands(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    port = free_port()
    fake = fake_command(port, "--ttft-ms", str(args.ttft_ms), "--tokens", str(args.tokens))
    env = {
        "OPENAI_BASE_URL": f"http://{HOST}:{port}/v1",
        "OPENAI_API_KEY": "bench",
        "CHAT_MODELS": MODEL,
        "MODERATION": "off",
    }
    return {
        "fake": fake,
        "web_cache_on": web_command({**env, "ANSWER_CACHE_ENABLED": "1"}),
        "web_cache_off": web_command({**env, "ANSWER_CACHE_ENABLED": "0"}),
    }


async def first_question(
    session: aiohttp.ClientSession, web: Child, key: str, question: str
) -> tuple[float | None, bool, str | None]:
    """Ask ``question`` in a new conversation: (TTFT ms, served from the cache, error)."""
    base = f"http://{HOST}:{web.port}"
    conversation_id = await conversation_create(session, base, key, MODEL)
    url = f"ws://{HOST}:{web.port}/ws/conversations/{conversation_id}/"
    sock = await socket_open("aiohttp", session, url, key)
    frame = {"type": "message.send", "content": question, "idempotency_key": uuid.uuid4().hex}
    ttft = None
    try:
        sent = time.perf_counter()
        await sock.send(json.dumps(frame))
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while True:
                reply = json.loads(await sock.recv())
                if reply["type"] == "turn.delta" and ttft is None:
                    ttft = (time.perf_counter() - sent) * 1000
                elif reply["type"] == "turn.done":
                    return ttft, bool(reply.get("cached")), None
                elif reply["type"] == "error":
                    return ttft, False, reply["code"]
    except TimeoutError:
        return ttft, False, "timeout"
    finally:
        await sock.close()


async def benchmark(children: dict[str, Child], key: str, args: argparse.Namespace) -> Any:
    claims = [row["text"] for row in read_jsonl(args.claims)]
    random.Random(5).shuffle(claims)
    on, off = children["web_cache_on"], children["web_cache_off"]
    ttfts: dict[str, list[float]] = {
        k: [] for k in ("miss_cache_off", "miss_cache_on", "exact_hit", "paraphrase_hit")
    }
    surprises: dict[str, int] = {kind: 0 for kind in ttfts}
    errors: list[str] = []
    async with aiohttp.ClientSession() as session:
        for web in (on, off):  # warm-up: imports, the embedding model, connections
            await first_question(session, web, key, f"warm up {uuid.uuid4().hex}")
        for task in TASKS[: args.rounds]:
            await first_question(session, on, key, f"How do I {task}?")
        await asyncio.sleep(1)  # the cache keeps an answer just after its turn ends
        for n, task in enumerate(TASKS[: args.rounds]):
            turns = {
                "miss_cache_off": (off, claims[2 * n], False),
                "miss_cache_on": (on, claims[2 * n + 1], False),
                "exact_hit": (on, f"How do I {task}?", True),
                "paraphrase_hit": (on, f"How can I {task}", True),
            }
            for kind in random.sample(list(turns), len(turns)):
                web, question, expect_hit = turns[kind]
                ttft, cached, error = await first_question(session, web, key, question)
                if error or ttft is None:
                    errors.append(f"{kind}: {error or 'no delta'}")
                    continue
                surprises[kind] += cached != expect_hit
                ttfts[kind].append(ttft)
    medians = {kind: statistics.median(values) for kind, values in ttfts.items() if values}
    return {
        "ttft_ms": {kind: distribution(values) for kind, values in ttfts.items()},
        "platform_added_ttft_ms_p50": {
            "miss_cache_off": round(medians["miss_cache_off"] - args.ttft_ms, 2),
            "miss_cache_on": round(medians["miss_cache_on"] - args.ttft_ms, 2),
            "exact_hit": round(medians["exact_hit"], 2),
            "paraphrase_hit": round(medians["paraphrase_hit"], 2),
        },
        "cache_cost_on_a_miss_ms_p50": round(
            medians["miss_cache_on"] - medians["miss_cache_off"], 2
        ),
        "outcome_other_than_meant": surprises,
        "errors": errors,
    }


def readable_check() -> None:
    from chatbot.users.models import User
    from knowledge.selectors import readable_collection_ids

    user = User.objects.get(username="bench")
    if readable_collection_ids(user=user):
        raise SystemExit("the bench user can read collections here: its answers would not be kept")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    django_setup()
    api_key, raw_key = bench_identity()
    readable_check()
    load_before = os.getloadavg()
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
        "benchmark": "cache_ttft",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "config": {**vars(args), "output": str(args.output), "claims": str(args.claims)},
        **report,
    }
    text = json.dumps(output, indent=2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
