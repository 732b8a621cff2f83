"""Percentiles and CPU accounting for the benchmarks."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import psutil  # type: ignore[import-untyped]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
    }


class CpuMeter:
    """User + system CPU seconds over a block: of our processes, of the stores, of the rest.

    ``postgres`` counts the postmaster and all its backends, ``redis`` the Redis server (both are
    shared with anything else using them). ``other`` is the machine's busy time minus all of
    these: on a shared 2-core machine, more than a few percent of the wall time means the run
    was disturbed by something else.
    """

    def __init__(self, pids: dict[str, int], store_pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.stores = {name: psutil.Process(pid) for name, pid in store_pids.items()}
        self.before: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self.before = self.sample()

    def used(self) -> dict[str, float]:
        used = {
            name: sum(cpu - self.before[name].get(pid, 0.0) for pid, cpu in per_pid.items())
            for name, per_pid in self.sample().items()
        }
        used["other"] = used.pop("machine") - sum(used.values())
        return {name: round(seconds, 3) for name, seconds in used.items()}

    def sample(self) -> dict[str, dict[int, float]]:
        values = {name: {p.pid: cpu_of(p)} for name, p in self.processes.items()}
        for name, parent in self.stores.items():
            family = [parent, *parent.children(recursive=True)]
            values[name] = {p.pid: cpu_of(p) for p in family}
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0)
        values["machine"] = {0: float(busy)}
        return values


def cpu_of(process: Any) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def store_pids() -> dict[str, int]:
    """The PostgreSQL postmaster and the Redis server Django uses, when they run on this machine."""
    import redis
    from django.conf import settings
    from django.db import connection

    pids = {}
    if connection.settings_dict["HOST"] in LOCAL_HOSTS:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids["postgres"] = psutil.Process(cursor.fetchone()[0]).parent().pid
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        if client.connection_pool.connection_kwargs.get("host") in LOCAL_HOSTS:
            pids["redis"] = int(client.info("server")["process_id"])
    return pids
