"""Child processes of a benchmark: started on a free loopback port, always stopped.

Each child gets PR_SET_PDEATHSIG on Linux, so even a benchmark killed with SIGKILL leaves no
orphan behind; the normal path terminates it (then kills it) in a ``finally``.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path


def free_port() -> int:
    """A port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def child_process(
    name: str,
    argv: list[str],
    *,
    port: int,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 60,
) -> Iterator[Child]:
    """Run ``argv`` until the block ends; yield once ``GET ready_path`` answers 200."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # the bench runs no threads yet
        )
        try:
            child = Child(name, process, port, log)
            wait_ready(child, ready_path, ready_timeout_s)
            yield child
        finally:
            stop(process)


def wait_ready(child: Child, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited early; see {child.log}")
        if http_status(child.port, path) == 200:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} not ready after {timeout_s:g} s; see {child.log}")


def http_status(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def stop(process: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
