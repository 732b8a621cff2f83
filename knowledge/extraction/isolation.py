"""Run a parse in a forked child with a wall-clock limit and an address-space limit.

A hostile file can make a parser loop, allocate without bound or crash in C code. In a
child process none of that reaches the Celery worker: the parent waits at most
`max_seconds`, then kills the child; the child's `RLIMIT_AS` (its current size plus
`max_memory_bytes`) turns runaway allocation into a MemoryError.

`os.fork` is used rather than multiprocessing because Celery's prefork children are
daemonic (multiprocessing refuses to start children there), and the child inherits the
parsers already imported (a fresh interpreter would import them again for every document).
A fork copies the parent's page tables: it measured 60 ms from a 90 MB process and 200 ms
from one holding the embedding model (350 MB) on the loaded 2-core machine, small next to
embedding a document's chunks (see bench/README.md). The child only parses, writes its
pickled result to a pipe and leaves with `os._exit`, never running the parent's cleanup: a
lock held by another thread of the parent at fork time can at worst hang the child, which
the time limit then kills.
"""

from __future__ import annotations

import faulthandler
import math
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
        _child(work, write_fd, max_memory_bytes, max_seconds)
    os.close(write_fd)
    payload: bytes | None = None
    try:
        payload = _read_until(read_fd, time.monotonic() + max_seconds)
    finally:
        os.close(read_fd)
        status = _reap(pid, killed=payload is None)
    return _outcome(payload, status, max_seconds)  # type: ignore[no-any-return]


def _child(
    work: Callable[[], Any], write_fd: int, max_memory_bytes: int, max_seconds: float
) -> NoReturn:
    faulthandler.disable()  # a crash is reported by the parent, not dumped into its output
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signum, signal.SIG_DFL)
    # If the parent itself is killed (Celery's hard time limit), nobody kills this child:
    # its own alarm ends it shortly after the parent would have.
    signal.alarm(math.ceil(max_seconds) + 5)
    code = 0
    try:
        limit = _address_space_bytes() + max_memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
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


def _address_space_bytes() -> int:
    """The process's current virtual size: the limit is on what the parse adds to it, since a
    worker holding the embedding model (and its threads' stacks) already maps a lot."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


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
