"""Real servers for the deployment test: PostgreSQL (Debian's PG 15), ``prefect server``, a process worker.

Each is a context manager that starts the program as a subprocess in its own process group on a free
loopback port, waits until it answers, and stops it by PID (the whole group) on exit, even on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A port that was free a moment ago (bound to port 0 on loopback, then released)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` different ports that were free a moment ago: all bound at once, then released (one at a time,
    the kernel may hand out a just-released port again: Ray refused a node whose two agents got one port)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def wait_until(check: Callable[[], bool], what: str, timeout: float, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}\n{tail(log)}")
        try:
            if check():
                return
        except (httpx.TransportError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s\n{tail(log)}")
        time.sleep(0.2)


def tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop_group(proc: subprocess.Popen, signals: tuple[int, ...] = (signal.SIGTERM,),
               grace: float = 5.0) -> None:
    """Signal the process group led by ``proc`` (each signal in turn, ``grace`` seconds apart), then
    SIGKILL whatever of the group is left."""
    pgid = proc.pid  # started with start_new_session=True: the group id is its PID
    for sig in signals:
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # children that outlived the leader (flow-run processes, uvicorn)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (initdb into a temp dir); yields an asyncpg URL.

    PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user.
    """
    as_root = os.geteuid() == 0
    user = "postgres" if as_root else None
    base = Path(tempfile.mkdtemp(prefix="dos2hl-pg-"))
    data = base / "data"
    log = base / "postgres.log"
    proc = None
    try:
        if as_root:
            shutil.chown(base, user="postgres", group="postgres")
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E",
                        "UTF8",
                        "--no-sync"], user=user, check=True, capture_output=True, timeout=60)
        port = free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                 "-k", str(base), "-F", "-c", "max_connections=100", "-c", "synchronous_commit=off"],
                user=user, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def ready() -> bool:
            return subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
                                  timeout=10).returncode == 0

        wait_until(ready, "postgres", 30, proc, log)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if proc is not None:
            stop_group(proc, (signal.SIGINT,), grace=10)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def prefect_server(db_url: str, env: Mapping[str, str], logs: Path) -> Iterator[str]:
    """``prefect server start`` on a free loopback port backed by ``db_url``; yields its API URL."""
    port = free_port()
    env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = db_url
    log = logs / "prefect-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [prefect_bin(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_until(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, "prefect server", 90,
                   proc, log)
        yield api
    finally:
        stop_group(proc, (signal.SIGTERM,), grace=8)


@contextlib.contextmanager
def worker(pool: str, env: Mapping[str, str], logs: Path) -> Iterator[subprocess.Popen]:
    """``prefect worker start --pool POOL --type process``; it creates the pool when it is missing.

    A process worker needs two signals to stop (the first only forwards SIGINT to its flow runs):
    SIGINT, a pause, SIGINT again, then SIGKILL for the group.
    """
    log = logs / "prefect-worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([prefect_bin(), "worker", "start", "--pool", pool, "--type", "process",
                                 "--name", "dos2hl-test-worker"],
                                env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc, (signal.SIGINT, signal.SIGINT), grace=3)


def prefect_bin() -> str:
    import sys

    return str(Path(sys.executable).with_name("prefect"))
