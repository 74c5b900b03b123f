"""Two OS processes share one governor actor on a long-lived Ray head (STACK_NOTES §3).

A ``ray start --head --block`` subprocess on a free loopback port, two Python subprocesses that each
``connect(address=...)`` to the same named actor and acquire permits for one location for ~2 s,
writing their send times to a file. Together they never exceed the limit in any window.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.governor.test_core import max_in_window

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
RAY_CLI = Path(sys.executable).parent / "ray"
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
       "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
BURST, WINDOW = 20, 0.5

WORKER = textwrap.dedent("""
    import glob, json, sys, time
    from dos2hl.governor import Limits
    from dos2hl.governor.actor import connect
    address, name, out, barrier, duration = sys.argv[1:6]
    lim = Limits(burst=%d, window_s=%r, daily=100_000, margin_s=0.05, reserve=0.0)
    h = connect(address=address, name=name, limits=lim, batch=4)
    open(out + ".ready", "w").close()  # a file barrier: start together once both are connected
    while len(glob.glob(barrier)) < 2:
        time.sleep(0.01)
    end = time.time() + float(duration)
    sent = []
    while time.time() < end:
        h.acquire("loc", 1)
        sent.append(time.time())
    h.close()
    with open(out, "w") as fh:
        json.dump({"sent": sent, "calls": h.calls}, fh)
""" % (BURST, WINDOW))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    """``ray start --head --block`` in its own process group; returns once the GCS port accepts."""
    log = (tmp / "head.log").open("wb")
    head = subprocess.Popen(
        [str(RAY_CLI), "start", "--head", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=2",
         "--include-dashboard=false",
         f"--port={port}", "--disable-usage-stats"],
        env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start exited: {(tmp / 'head.log').read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return head
        time.sleep(0.1)
    stop_head(head)
    raise RuntimeError("ray head did not come up in 30 s")


def stop_head(head: subprocess.Popen[bytes]) -> None:
    """SIGTERM the head's process group (``ray start --block`` and the processes it started), then
    SIGKILL whatever is left after a few seconds."""
    if head.poll() is None:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=6)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=5)
    try:
        os.killpg(head.pid, signal.SIGKILL)  # stragglers in the group, if any
    except ProcessLookupError:
        pass


def test_two_processes_share_one_actor_and_never_exceed_the_window(tmp_path: Path) -> None:
    port = free_port()
    head = start_head(port, tmp_path)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        name = f"gov-2p-{uuid.uuid4().hex[:8]}"
        outs = [tmp_path / f"w{i}.json" for i in range(2)]
        workers = [subprocess.Popen([sys.executable, "-c", WORKER, f"127.0.0.1:{port}", name, str(o),
                                     str(tmp_path / "*.ready"), "2.0"], env=ENV, cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for o in outs]
        logs = [w.communicate(timeout=40)[0].decode(errors="replace") for w in workers]
        for w, log in zip(workers, logs, strict=True):
            assert w.returncode == 0, log[-3000:]
        results = [json.loads(o.read_text()) for o in outs]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        stop_head(head)
    per = [r["sent"] for r in results]
    assert all(len(s) > 0 for s in per), [len(s) for s in per]  # both got permits
    sends = sorted(t for s in per for t in s)
    assert max_in_window(sends, WINDOW) <= BURST
    # ~2 s at 20 per 0.55 s, less the fail-safe interval if the actor was created late: well above 40
    assert len(sends) >= 40, len(sends)
    assert sum(r["calls"] for r in results) < len(sends)  # batched leases
