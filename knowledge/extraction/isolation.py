"""Run a parse in a forked child with a wall-clock limit and an address-space limit.

A hostile file can make a parser loop, allocate without bound or crash in C code. In a
child process none of that reaches the Celery worker: the parent waits at most
`max_seconds`, then kills the child; the child's `RLIMIT_AS` turns runaway allocation into
a MemoryError. `os.fork` is used rather than multiprocessing because Celery's prefork
children are daemonic (multiprocessing refuses to start children there) and a fresh
interpreter would pay its imports (about 0.3 s) for every document; a fork costs a few
milliseconds (see bench/ingest_throughput.py). The child only parses and writes its pickled
result to a pipe, then leaves with `os._exit`, never running the parent's cleanup: a lock held
by another thread of the parent at fork time can at worst hang the child, which the time
limit then kills.
"""

from __future__ import annotations

import os
import pickle
import resource
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

from knowledge.extraction.types import ExtractionError

_PIPE_READ = 1 << 16


def run_isolated[T](work: Callable[[], T], *, max_seconds: float, max_memory_bytes: int) -> T:
    """`work()` run in a child process; its ExtractionError is raised here, in the parent."""
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # Python warns about forking a multi-threaded process; see the module docstring.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child; its result is checked through the parent)
        os.close(read_fd)
        _child(work, write_fd, max_memory_bytes)
    os.close(write_fd)
    payload: bytes | None = None
    try:
        payload = _read_until(read_fd, time.monotonic() + max_seconds)
    finally:
        os.close(read_fd)
        status = _reap(pid, killed=payload is None)
    return _outcome(payload, status, max_seconds)  # type: ignore[no-any-return]


def _child(work: Callable[[], Any], write_fd: int, max_memory_bytes: int) -> NoReturn:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory_bytes, max_memory_bytes))
        try:
            result: tuple[str, Any] = ("ok", work())
        except ExtractionError as exc:
            result = ("error", exc)
        except MemoryError:
            result = ("error", ExtractionError("too_large", _TOO_MUCH_MEMORY))
        except Exception as exc:  # a parser's own exception: the file is not what it claims
            result = ("error", ExtractionError("corrupt", _corrupt_reason(exc)))
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything the child writes, or None when the deadline passes first."""
    parts: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        part = os.read(fd, _PIPE_READ)
        if not part:
            return b"".join(parts)
        parts.append(part)


def _reap(pid: int, *, killed: bool) -> int:
    if killed:
        os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def _outcome(payload: bytes | None, status: int, max_seconds: float) -> Any:
    if payload is None:
        raise ExtractionError(
            "timeout", f"Reading the document took longer than {max_seconds:g} seconds."
        )
    if not payload:
        raise ExtractionError("corrupt", _crash_reason(status))
    kind, value = pickle.loads(payload)  # noqa: S301 (our own child wrote it)
    if kind == "error":
        raise value
    return value


_TOO_MUCH_MEMORY = "Reading the document needed more memory than allowed; it may be malformed."


def _corrupt_reason(exc: Exception) -> str:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return f"The file could not be read; it may be damaged ({detail})."


def _crash_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return f"The document parser crashed ({name}); the file may be damaged."
    return "The document parser stopped unexpectedly; the file may be damaged."
