"""Streaming load: N concurrent chats against the fake model, direct and through the product.

    python -m bench.stream_load [--concurrency 50] [--turns-per-chat 4] [--runs 3] [--trace]
        [--web-processes 1]

Starts the fake OpenAI-compatible server and the product's web process (daphne) as child
processes on free loopback ports, then, in every run, measures the same N concurrent streaming
chats twice: straight to the fake server (the baseline) and through the product's websocket.
Prints JSON and writes it to bench/results/stream_load.json. Method: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.children import HOST, RESULTS, ROOT, Child, child_process, free_port
from bench.stats import CpuMeter, distribution, store_pids
from bench.stream_clients import (
    MODEL,
    Socket,
    TurnResult,
    direct_turn,
    expected_answer,
    product_turn,
    socket_open,
)

TARGET_P50_MS = 15.0
TARGET_P99_MS = 60.0
DISTURBED_SHARE = 0.1
TRACE_FILE = RESULTS / "turn_trace.json"
TRACE_STEPS = {  # step: (from, to) timestamps written by bench.turn_trace
    "receive_to_begin_submitted": ("received", "begin_submitted"),
    "begin_queue": ("begin_submitted", "begin_start"),
    "begin_run": ("begin_start", "begin_end"),
    "begin_resume": ("begin_end", "begin_resumed"),
    "begin_to_started_sent": ("begin_resumed", "started_sent"),
    "begin_to_generate_task": ("begin_resumed", "generate"),
    "generate_to_provider_request": ("generate", "request"),
    "provider_first_token": ("request", "first_token"),
    "token_to_delta_sent": ("first_token", "first_delta_sent"),
    "received_to_delta_sent": ("received", "first_delta_sent"),
}


@dataclass(frozen=True)
class Config:
    concurrency: int
    turns: int
    tokens: int
    tokens_per_s: float
    ttft_ms: float
    ramp_ms: float
    ws_client: str

    @property
    def turn_timeout_s(self) -> float:
        return self.ttft_ms / 1000 + self.tokens / max(self.tokens_per_s, 1) + 30

    @property
    def phase_timeout_s(self) -> float:
        return self.turns * self.turn_timeout_s + 60


@dataclass
class Phase:
    """What one phase (direct or product) of one run measured."""

    results: list[TurnResult]
    wall_s: float
    cpu_s: dict[str, float]
    server_ttft_ms: list[float] = field(default_factory=list)


TurnFn = Callable[[int, int], Awaitable[TurnResult]]


# --- phases -------------------------------------------------------------------------------------


async def run_chats(config: Config, turns: int, turn: TurnFn) -> list[TurnResult]:
    """N chats at once; each sends its next message when the previous answer has ended."""

    async def chat(index: int) -> list[TurnResult]:
        await asyncio.sleep(config.ramp_ms / 1000 * index / config.concurrency)
        results: list[TurnResult] = []
        for number in range(turns):
            results.append(await turn(index, number))
            if results[-1].error == "timeout":
                break  # the turn may still run server-side: a next send would be refused
        return results

    async with asyncio.timeout(config.phase_timeout_s):
        chats = await asyncio.gather(*(chat(i) for i in range(config.concurrency)))
    return [result for results in chats for result in results]


async def measure(config: Config, turns: int, meter: CpuMeter, turn: TurnFn) -> Phase:
    meter.start()
    started = time.perf_counter()
    results = await run_chats(config, turns, turn)
    return Phase(results, wall_s=time.perf_counter() - started, cpu_s=meter.used())


async def direct_phase(config: Config, fake: Child, meter: CpuMeter) -> Phase:
    url = f"http://{HOST}:{fake.port}/v1/chat/completions"
    expected = expected_answer(config.tokens)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def turn(index: int, number: int) -> TurnResult:
            question = f"bench chat {index} question {number}"
            return await direct_turn(session, url, question, expected, config.turn_timeout_s)

        return await measure(config, config.turns, meter, turn)


async def product_phase(
    config: Config, webs: list[Child], api_key: str, meter: CpuMeter, turns: int
) -> Phase:
    """Fresh conversations and open websockets first, then the measured chats.

    With several web processes, chat i goes to process i mod n, as a load balancer would.
    """
    expected = expected_answer(config.tokens)
    headers = {"Authorization": f"Bearer {api_key}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        ids = await conversations_create(
            session, f"http://{HOST}:{webs[0].port}", config.concurrency
        )
        ports = [webs[n % len(webs)].port for n in range(len(ids))]
        urls = [
            f"ws://{HOST}:{port}/ws/conversations/{i}/" for i, port in zip(ids, ports, strict=True)
        ]
        sockets = await sockets_open(config.ws_client, session, urls, api_key)
        try:

            async def turn(index: int, number: int) -> TurnResult:
                question = f"bench chat {index} question {number}"
                return await product_turn(sockets[index], question, expected, config.turn_timeout_s)

            phase = await measure(config, turns, meter, turn)
        finally:
            await asyncio.gather(*(sock.close() for sock in sockets), return_exceptions=True)
    message_ids = [r.message_id for r in phase.results if r.message_id is not None]
    phase.server_ttft_ms = await asyncio.to_thread(server_ttfts, message_ids)
    return phase


async def conversations_create(session: aiohttp.ClientSession, base: str, count: int) -> list[int]:
    async def create() -> int:
        body = {"title": "bench", "model": MODEL}
        async with session.post(f"{base}/api/v1/conversations", json=body) as response:
            if response.status != 201:
                raise RuntimeError(f"creating a conversation: HTTP {response.status}")
            return int((await response.json())["id"])

    async with asyncio.timeout(60):
        return list(await asyncio.gather(*(create() for _ in range(count))))


async def sockets_open(
    kind: str, session: aiohttp.ClientSession, urls: list[str], api_key: str
) -> list[Socket]:
    """Open all websockets, or none: the ones that opened are closed again on a failure."""
    async with asyncio.timeout(60):
        opened = await asyncio.gather(
            *(socket_open(kind, session, url, api_key) for url in urls), return_exceptions=True
        )
    sockets = [sock for sock in opened if not isinstance(sock, BaseException)]
    failures = [sock for sock in opened if isinstance(sock, BaseException)]
    if failures:
        await asyncio.gather(*(sock.close() for sock in sockets), return_exceptions=True)
        raise RuntimeError(f"{len(failures)} websockets did not open") from failures[0]
    return sockets


# --- the product's side: Django, for setup and for its own timings -----------------------------


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def bench_identity() -> tuple[Any, str]:
    """The bench user and a fresh API key (revoked again by ``bench_cleanup``)."""
    from billing.services import plan_assign, plan_set
    from chatbot.users.models import User
    from chatbot.users.services import api_key_create

    user, _ = User.objects.get_or_create(username="bench", defaults={"display_name": "Bench"})
    # Hundreds of turns a minute from one user: a plan without limits (billing still runs).
    plan, _ = plan_set(name="bench", requests_per_minute=100_000)
    plan_assign(user_id=user.pk, plan=plan)
    return api_key_create(user=user, name="bench")


def bench_cleanup(api_key: Any) -> None:
    """Revoke the key and soft-delete the bench user's conversations."""
    from chatbot.users.services import api_key_revoke
    from conversations.models import Conversation
    from conversations.services import conversation_delete

    api_key_revoke(api_key=api_key)
    live = Conversation.objects.filter(owner_id=api_key.user_id, deleted_at__isnull=True)
    for conversation in live:
        conversation_delete(conversation=conversation)


def server_ttfts(message_ids: list[int]) -> list[float]:
    """The product's own TTFT of each turn (Message.ttft_ms: generate task start -> first delta)."""
    from django.db import connections

    from conversations.models import Message

    try:
        rows = Message.objects.filter(pk__in=message_ids, ttft_ms__isnull=False)
        values = rows.values_list("ttft_ms", flat=True)
        return [float(ttft) for ttft in values if ttft is not None]
    finally:
        connections.close_all()


# --- reports ------------------------------------------------------------------------------------


def phase_report(phase: Phase, *, product: bool) -> dict[str, Any]:
    done = [r for r in phase.results if r.error is None]
    errors = Counter(r.error for r in phase.results if r.error is not None)
    tokens = sum(r.tokens for r in done)
    report: dict[str, Any] = {
        "turns": len(phase.results),
        "completed": len(done),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "lost_deltas": sum(r.lost for r in phase.results),
        "duplicated_deltas": sum(r.duplicated for r in phase.results),
        "ttft_ms": distribution([r.ttft_ms for r in phase.results if r.ttft_ms is not None]),
        "wall_s": round(phase.wall_s, 3),
        "completed_streams_per_s": round(len(done) / phase.wall_s, 2),
        "tokens_relayed": tokens,
        "tokens_per_s": round(tokens / phase.wall_s, 1),
        "deltas_per_turn": round(statistics.fmean(r.deltas for r in done), 1) if done else 0,
        "cpu_s": phase.cpu_s,
    }
    if product:
        report.update(product_extras(phase, done, tokens))
    return report


def product_extras(phase: Phase, done: list[TurnResult], tokens: int) -> dict[str, Any]:
    web_cpu = sum(seconds for name, seconds in phase.cpu_s.items() if name.startswith("web"))
    return {
        "web_cpu_ms_per_1k_tokens": round(web_cpu * 1000 / max(tokens, 1) * 1000, 1),
        "web_cpu_utilisation_pct": round(web_cpu / phase.wall_s * 100, 1),
        "begin_ms": distribution([r.started_ms for r in done if r.started_ms is not None]),
        "started_to_first_delta_ms": distribution(
            [r.ttft_ms - r.started_ms for r in done if r.ttft_ms and r.started_ms]
        ),
        "server_ttft_ms": distribution(phase.server_ttft_ms),
    }


def run_report(direct: dict[str, Any], product: dict[str, Any]) -> dict[str, Any]:
    """Platform-added TTFT: each product percentile minus the direct median."""
    base = direct["ttft_ms"].get("p50")
    added = {
        p: round(product["ttft_ms"][p] - base, 2)
        for p in ("p50", "p95", "p99")
        if base is not None and p in product["ttft_ms"]
    }
    return {"platform_added_ttft_ms": added, "direct": direct, "product": product}


SUMMARY_KEYS = {
    "platform_added_ttft_p50_ms": ("platform_added_ttft_ms", "p50"),
    "platform_added_ttft_p95_ms": ("platform_added_ttft_ms", "p95"),
    "platform_added_ttft_p99_ms": ("platform_added_ttft_ms", "p99"),
    "product_ttft_p50_ms": ("product", "ttft_ms", "p50"),
    "product_ttft_p99_ms": ("product", "ttft_ms", "p99"),
    "direct_ttft_p50_ms": ("direct", "ttft_ms", "p50"),
    "direct_ttft_p99_ms": ("direct", "ttft_ms", "p99"),
    "product_streams_per_s": ("product", "completed_streams_per_s"),
    "direct_streams_per_s": ("direct", "completed_streams_per_s"),
    "product_tokens_per_s": ("product", "tokens_per_s"),
    "direct_tokens_per_s": ("direct", "tokens_per_s"),
    "product_deltas_per_turn": ("product", "deltas_per_turn"),
    "web_cpu_ms_per_1k_tokens": ("product", "web_cpu_ms_per_1k_tokens"),
    "web_cpu_utilisation_pct": ("product", "web_cpu_utilisation_pct"),
    "begin_p50_ms": ("product", "begin_ms", "p50"),
    "begin_p99_ms": ("product", "begin_ms", "p99"),
    "server_ttft_p50_ms": ("product", "server_ttft_ms", "p50"),
    "server_ttft_p99_ms": ("product", "server_ttft_ms", "p99"),
    "other_cpu_s_product_phase": ("product", "cpu_s", "other"),
}


def lookup(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs; error and delta counts summed over them."""
    medians = {}
    for name, path in SUMMARY_KEYS.items():
        values = [v for v in (lookup(run, path) for run in runs) if v is not None]
        medians[name] = round(statistics.median(values), 2) if values else None
    totals = {
        name: sum(run[side][name] for run in runs for side in ("direct", "product"))
        for name in ("errors", "lost_deltas", "duplicated_deltas")
    }
    p50, p99 = medians["platform_added_ttft_p50_ms"], medians["platform_added_ttft_p99_ms"]
    met = {
        "platform_added_ttft_p50": p50 is not None and p50 <= TARGET_P50_MS,
        "platform_added_ttft_p99": p99 is not None and p99 <= TARGET_P99_MS,
        "zero_errors": totals["errors"] == 0,
        "zero_lost_or_duplicated_deltas": totals["lost_deltas"] + totals["duplicated_deltas"] == 0,
    }
    return {
        "median_of_runs": medians,
        "totals": totals,
        "targets_met": met,
        "disturbed_runs": [i for i, run in enumerate(runs) if disturbed(run)],
    }


def disturbed(run: dict[str, Any]) -> bool:
    """Other processes took over 10% of a core in a phase: the machine was not ours alone."""
    return any(
        run[side]["cpu_s"].get("other", 0) > DISTURBED_SHARE * run[side]["wall_s"]
        for side in ("direct", "product")
    )


def trace_report(message_ids: list[int]) -> dict[str, Any]:
    """Per step of the first token's path: a distribution over the measured turns (ms)."""
    if not TRACE_FILE.exists():
        return {"error": f"no trace written to {TRACE_FILE}"}
    trace = json.loads(TRACE_FILE.read_text())
    turns = [trace["turns"].get(str(mid), {}) for mid in message_ids]
    steps = {}
    for step, (start, end) in TRACE_STEPS.items():
        values = [(t[end] - t[start]) * 1000 for t in turns if start in t and end in t]
        steps[step] = distribution(values)
    calls = {
        f"{name}.{part}": distribution([call[i] * 1000 for call in rows])
        for name, rows in trace["calls"].items()
        for i, part in enumerate(("queue", "run", "resume"))
        if any(call[i] for call in rows)
    }
    return {
        "first_token_path": steps,
        "all_calls_incl_warmup": calls,
        "not_traced": trace.get("missing", []),
    }


# --- main ---------------------------------------------------------------------------------------


async def benchmark(
    config: Config,
    runs: int,
    warmup: int,
    children: dict[str, Child],
    api_key: str,
    store_pids_found: dict[str, int],
) -> tuple[dict[str, Any], list[int]]:
    """Warm up, then per run: the direct phase, then the product phase."""
    fake = children["fake_server"]
    webs = [child for name, child in sorted(children.items()) if name.startswith("web")]
    pids = {name: child.process.pid for name, child in children.items()} | {"client": os.getpid()}
    meter = CpuMeter(pids, store_pids_found)
    report: dict[str, Any] = {"runs": []}
    if warmup:
        warm = await product_phase(config, webs, api_key, meter, warmup)
        report["warmup"] = phase_report(warm, product=True)
    measured: list[int] = []
    for _ in range(runs):
        direct = phase_report(await direct_phase(config, fake, meter), product=False)
        product = await product_phase(config, webs, api_key, meter, config.turns)
        measured += [r.message_id for r in product.results if r.message_id is not None]
        report["runs"].append(run_report(direct, phase_report(product, product=True)))
    return report, measured


def product_digest() -> str:
    """A digest of the product's Python sources: which code a result measured."""
    digest = hashlib.sha256()
    for folder in sorted(ROOT.iterdir()):
        if not folder.is_dir() or folder.name.startswith(".") or folder.name == "bench":
            continue
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_load", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent chats")
    parser.add_argument("--turns-per-chat", type=int, default=4, help="turns per chat, in turn")
    parser.add_argument("--ttft-ms", type=float, default=50, help="fake server: first token delay")
    parser.add_argument("--tokens-per-s", type=float, default=100, help="fake server: speed")
    parser.add_argument("--tokens", type=int, default=100, help="fake server: answer length")
    parser.add_argument("--runs", type=int, default=3, help="measured runs (medians reported)")
    parser.add_argument("--warmup-turns", type=int, default=1, help="unmeasured turns per chat")
    parser.add_argument("--ramp-ms", type=float, default=0, help="spread the chats' first sends")
    parser.add_argument("--ws-client", choices=["aiohttp", "websockets"], default="aiohttp")
    parser.add_argument(
        "--trace", action="store_true", help="serve bench.turn_trace (timers on the TTFT path)"
    )
    parser.add_argument(
        "--web-processes", type=int, default=1, help="web processes, chats spread over them"
    )
    parser.add_argument(
        "--server", choices=["uvicorn", "daphne"], default="uvicorn", help="WEB_SERVER of the web"
    )
    parser.add_argument(
        "--event-loop", choices=["uvloop", "asyncio"], default="uvloop", help="the web process's"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "stream_load.json")
    args = parser.parse_args(argv)
    if min(args.concurrency, args.turns_per_chat, args.runs, args.tokens, args.web_processes) < 1:
        parser.error(
            "--concurrency, --turns-per-chat, --runs, --tokens, --web-processes: at least 1"
        )
    if args.tokens_per_s <= 0:
        parser.error("--tokens-per-s must be positive (the timeouts are derived from it)")
    return args


def child_commands(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """How to start the fake server and the web process, each on a free loopback port."""
    fake_port = free_port()
    fake_argv = [sys.executable, "-m", "llm.fake_server", "--host", HOST, "--port", str(fake_port)]
    fake_argv += ["--ttft-ms", str(args.ttft_ms), "--tokens-per-s", str(args.tokens_per_s)]
    fake_argv += ["--tokens", str(args.tokens)]
    app = "bench.turn_trace:application" if args.trace else "chatbot.asgi:application"
    web_env = {
        "OPENAI_BASE_URL": f"http://{HOST}:{fake_port}/v1",
        "OPENAI_API_KEY": "bench",
        "CHAT_MODELS": MODEL,
        "BENCH_TRACE_FILE": str(TRACE_FILE),
        "WEB_EVENT_LOOP": args.event_loop,
        "WEB_SERVER": args.server,
        "WEB_ACCESS_LOG": "0",
        "ANSWER_CACHE_ENABLED": "0",  # every chat asks the same first question
    }
    commands: dict[str, dict[str, Any]] = {
        "fake_server": {"argv": fake_argv, "port": fake_port, "ready_path": "/v1/models"},
    }
    for n in range(args.web_processes):
        port = free_port()
        argv = [sys.executable, "-m", "chatbot.serve", "-b", HOST, "-p", str(port), app]
        name = "web" if n == 0 else f"web{n + 1}"
        commands[name] = {"argv": argv, "port": port, "ready_path": "/healthz", "env": web_env}
    return commands


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config(
        concurrency=args.concurrency,
        turns=args.turns_per_chat,
        tokens=args.tokens,
        tokens_per_s=args.tokens_per_s,
        ttft_ms=args.ttft_ms,
        ramp_ms=args.ramp_ms,
        ws_client=args.ws_client,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    django_setup()
    api_key, raw_key = bench_identity()
    stores = store_pids()
    commands = child_commands(args)
    TRACE_FILE.unlink(missing_ok=True)
    try:
        with contextlib.ExitStack() as stack:
            children = {
                name: stack.enter_context(child_process(name, **command))
                for name, command in commands.items()
            }
            report, measured = asyncio.run(
                benchmark(config, args.runs, args.warmup_turns, children, raw_key, stores)
            )
    finally:
        bench_cleanup(api_key)
    if args.trace:
        report["trace_ms"] = trace_report(measured)
    output = {
        "benchmark": "stream_load",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "product_source_sha256": product_digest(),
        "config": {**vars(args), "output": str(args.output)},
        "targets_ms": {"platform_added_ttft_p50": TARGET_P50_MS, "p99": TARGET_P99_MS},
        "summary": summary(report["runs"]),
        **report,
    }
    text = json.dumps(output, indent=2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
