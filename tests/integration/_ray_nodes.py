"""A two-node Ray cluster on this machine, the journal arithmetic, and the flow-run child process.

``ray_cluster`` starts ``ray start --head --block`` and a second ``ray start --address=... --block``,
each in its own process group with every port chosen free on loopback (two nodes on one host would
otherwise collide on the fixed defaults: dashboard agent 52365, Ray client 10001, ...), both nodes at
127.0.0.1 (``_start_loopback``, below), and a private
``--temp-dir`` (so ``ray_current_cluster`` is not written under /tmp/ray for other sessions to find).
It stops them by process group, then ends any process of *this* cluster that outlived its node
(matched by the cluster's unique temp dir or GCS port, killed by PID). ``ray stop --force`` is not
used: it ends every Ray process on the machine, other sessions' clusters included.

``python -m tests.integration._ray_nodes child SPEC`` is one flow run: it imports the flow, says it is
ready, waits for the go file (so both runs start together), runs ``migrate_flow`` against the
Prefect API in its environment and writes what came back.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

from tests.integration._servers import free_ports, stop_group, tail

ROOT = Path(__file__).resolve().parents[2]
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (STACK_NOTES' loopback trick) makes every Ray process of this test
# (nodes, their workers, the drivers) take 127.0.0.1 as its node address; without it Ray rewrites 127.0.0.1
# to the interface towards the default route (the network rule: tests talk to 127.0.0.1 only). The same
# switch makes ``ray start --address`` refuse to add a second node ("Multi-node Ray clusters are not
# supported on Windows and OSX"): ``_start_loopback`` lifts that one check, in the ``ray start`` process.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0"}
HOST = "127.0.0.1"


NODE_PORTS = ("dashboard-agent-listen", "dashboard-agent-grpc", "metrics-export", "runtime-env-agent",
              "node-manager", "object-manager")


def _node_ports(ports: list[int]) -> list[str]:
    """A node's own ports (two nodes on one host would collide on Ray's fixed defaults)."""
    return [f"--{name}-port={port}" for name, port in zip(NODE_PORTS, ports, strict=True)]


def _start(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration._ray_nodes", "start", "--block", *args],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _ours(temp: Path, port: int) -> list[psutil.Process]:
    """Processes of this cluster: their command line names its temp dir or its GCS address."""
    marks = (str(temp), f"{HOST}:{port}")
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or ())
        if p.pid != os.getpid() and any(m in cmd for m in marks):
            found.append(p)
    return found


@contextlib.contextmanager
def ray_cluster(env: Mapping[str, str], logs: Path, *,
                object_store: int = 256 * 2**20,
                system_config: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """A head and a second node (1 CPU each) on loopback; yields {"address", "head", "node", "temp"}.

    ``env`` is the nodes' environment, which their workers inherit (tokens named in locations.yaml);
    ``system_config`` the head's ``--system-config`` (e.g. how soon a lost node is declared dead).
    One cluster at a time per checkout: ``make test``'s two workers would otherwise start two clusters
    (four nodes) on two cores, where a node misses Ray's 30 s registration."""
    with _one_cluster_at_a_time():
        with _ray_cluster(env, logs, object_store=object_store, system_config=system_config) as c:
            yield c


@contextlib.contextmanager
def _one_cluster_at_a_time() -> Iterator[None]:
    import fcntl

    with open(ROOT / ".pytest_cache-ray-cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@contextlib.contextmanager
def _ray_cluster(env: Mapping[str, str], logs: Path, *, object_store: int,
                 system_config: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
    # every port of both nodes chosen at once, so no two are the same (one at a time, the kernel may
    # hand a just-released port out again: Ray then refuses the node)
    port, dashboard, *own = free_ports(2 + 3 * len(NODE_PORTS))  # a second node's ports twice (a retry)
    temp = Path(tempfile.mkdtemp(prefix="dos2hl-ray-", dir="/tmp"))  # short: AF_UNIX paths <= 107 bytes
    env = {**{k: v for k, v in env.items() if k != "RAY_ADDRESS"}, **RAY_ENV}
    address = f"{HOST}:{port}"
    head = node = None
    try:
        head = _start(["--head", f"--node-ip-address={HOST}", f"--port={port}", "--num-cpus=1",
                       "--include-dashboard=false",
                       "--disable-usage-stats", f"--temp-dir={temp}", f"--object-store-memory={object_store}",
                       f"--dashboard-port={dashboard}",
                       "--node-name=head", *_node_ports(own[:len(NODE_PORTS)]),
                       *([f"--system-config={json.dumps(dict(system_config))}"] if system_config else [])],
                      env, logs / "ray-head.log")
        _wait_gcs(head, address, logs / "ray-head.log")
        for attempt in (1, 2):
            ports = own[len(NODE_PORTS) * attempt:len(NODE_PORTS) * (attempt + 1)]
            log = logs / ("ray-node.log" if attempt == 1 else f"ray-node-{attempt}.log")
            node = _start([f"--address={address}", f"--node-ip-address={HOST}", "--num-cpus=1",
                           f"--temp-dir={temp}", f"--object-store-memory={object_store}",
                           "--node-name=second", *_node_ports(ports)], env, log)
            if _node_started(node, log) or attempt == 2:
                break
            # Ray gives a raylet a fixed 30 s to register with the GCS; on two busy cores (the other
            # test worker at full load) it can miss that once: start it again, once, on fresh ports
            stop_group(node, (signal.SIGTERM,), grace=8)
        yield {"address": address, "head": head, "node": node, "temp": temp}
    finally:
        for proc in (node, head):
            if proc is not None:
                stop_group(proc, (signal.SIGTERM,), grace=8)
        deadline = time.monotonic() + 5
        while _ours(temp, port) and time.monotonic() < deadline:
            time.sleep(0.2)
        for p in _ours(temp, port):  # workers in their own process group that outlived their raylet
            with contextlib.suppress(psutil.Error):
                p.kill()
        shutil.rmtree(temp, ignore_errors=True)


def _node_started(proc: subprocess.Popen, log: Path, timeout: float = 90) -> bool:
    """Whether ``ray start --block`` reported the node started (False: it exited, or said nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def leftovers(cluster: dict[str, Any]) -> list[str]:
    port = int(cluster["address"].rsplit(":", 1)[1])
    return [" ".join(p.cmdline())[:120] for p in _ours(cluster["temp"], port) if p.is_running()]


def _start_loopback(args: list[str]) -> None:
    """``ray start ARGS`` with the single-node check lifted, for RAY_ENV's loopback switch.

    ``ray start --address`` aborts when ``ray_constants.ENABLE_RAY_CLUSTER`` is false; the node address
    comes from ``services.get_node_ip_address``, which reads the same constant. Only the CLI module sees a
    copy of the constants with the check passing, so the node (and every worker and driver, which read the
    untouched module) stays at 127.0.0.1 (verified: ``ray.nodes()`` lists two alive nodes, both 127.0.0.1,
    and SPREAD tasks run on both)."""
    import types

    import ray._private.ray_constants as constants
    import ray.scripts.scripts as cli

    if constants.ENABLE_RAY_CLUSTER:
        raise SystemExit("start the nodes with RAY_ENV (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0): 127.0.0.1 only")
    view = types.ModuleType("ray_constants_for_start")
    view.__dict__.update(constants.__dict__)
    view.ENABLE_RAY_CLUSTER = True
    cli.ray_constants = view  # type: ignore[attr-defined]
    sys.argv = ["ray", "start", *args]
    cli.main()


def _wait_gcs(proc: subprocess.Popen, address: str, log: Path, timeout: float = 90) -> None:
    import socket

    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray head exited with {proc.returncode}\n{tail(log)}")
        with socket.socket() as s:
            if s.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"ray head: no GCS on {port} after {timeout} s\n{tail(log)}")


# ---- the journal ----------------------------------------------------------------------------------------
def arrivals(journal: Path, skip: int, location: str) -> list[tuple[float, int]]:
    """(arrival time, status) of ``location``'s requests after the first ``skip`` lines: the journal's
    time is when the answer left, minus the latency is when the request came in (bench/governor.py)."""
    rows = [json.loads(line) for line in journal.read_text().splitlines()[skip:]]
    return sorted((r["time"] - r["latency_ms"] / 1000,
                   r["status"]) for r in rows if r["location"] == location)


def max_in_window(ts: list[float], window: float) -> int:
    """The most of ``ts`` in any half-open sliding window of ``window`` seconds."""
    s = sorted(ts)
    return max((i + 1 - bisect.bisect_right(s, s[i] - window) for i in range(len(s))), default=0)


# ---- one flow run ---------------------------------------------------------------------------------------
def _child(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.migrate import MigrateParams, migrate_flow

    Path(spec["ready"]).touch()
    go = Path(spec["go"])
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go file")
        time.sleep(0.01)
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):  # 1 s join per sync run
        started = time.time()
        out = migrate_flow(MigrateParams(**spec["params"]))
        ended = time.time()
    import ray  # connected by the flow (DOS2HL_GOVERNOR_ADDRESS)

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    result = {"started": started, "ended": ended, "driver_node": node, "status": out["status"],
              "run_id": out["run_id"], "mismatches": out.get("field_diff", {}).get("mismatches"),
              "written": {loc: d["objects"]["patient"]["written"] for loc, d in out["locations"].items()},
              "reconciliation": out.get("reconciliation"), "shards_per_node": out.get("shards_per_node"),
              "locations": out["locations"]}
    tmp = Path(spec["out"] + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    tmp.replace(spec["out"])


# ---- looking at the cluster --------------------------------------------------------------------------
def _inspect(address: str, name: str, locations: list[str], nodes: int = 2,
             timeout: float = 90) -> dict[str, Any]:
    """Once ``nodes`` nodes are alive: the nodes, the named actors, every actor's class and node (dead
    ones too: the GCS keeps them) and, when the governor exists, its day count per location."""
    import ray

    ray.init(address=address, namespace="dos2hl", log_to_driver=False)
    try:
        deadline = time.monotonic() + timeout
        while len(alive := [n for n in ray.nodes() if n["Alive"]]) < nodes:
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(alive)} of {nodes} Ray nodes alive after {timeout} s")
            time.sleep(0.2)
        head = next(n["NodeID"] for n in alive if "node:__internal_head__" in n["Resources"])
        where = {n["NodeID"]: "head" if n["NodeID"] == head else "second" for n in alive}
        named = ray.util.list_named_actors(all_namespaces=True)
        actors = [{"class": a["ActorClassName"].rsplit(".", 1)[-1], "name": a.get("Name", ""),
                   "state": a["State"], "node": where.get(a["Address"]["NodeID"], "?")}
                  for a in ray._private.state.actors().values()]  # the GCS actor table (no dashboard needed)
        used: dict[str, int] = {}
        if {"name": name, "namespace": "dos2hl"} in named:
            from dos2hl.governor.actor import connect

            gov = connect(address, name=name)  # the existing actor (get_if_exists)
            used = {loc: gov.status(loc).day_used for loc in locations}
        return {"nodes": [where[n["NodeID"]] for n in alive], "node_ids": where, "named": named,
                "addresses": sorted({n["NodeManagerAddress"] for n in alive}),
                "actors": actors, "day_used": used}
    finally:
        ray.shutdown()


def inspect(address: str, name: str, locations: list[str] | tuple[str, ...] = (),
            env: Mapping[str, str] | None = None,
            timeout: float = 120, logs: Path | None = None) -> dict[str, Any]:
    """``_inspect`` in a process of its own: a driver that leaves this process without Ray, and with
    RAY_ENV in force (Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, at import). On failure the error
    ends with the nodes' logs under ``logs`` (why a node did not join)."""
    out = subprocess.run([sys.executable, "-m", "tests.integration._ray_nodes", "inspect", address, name,
                          *locations], env={**(env or os.environ), **RAY_ENV, "PYTHONPATH": str(ROOT)},
                          cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        found = sorted(logs.glob("ray-*.log")) if logs else []
        nodes = "".join(f"\n--- {log.name}\n{tail(log)}" for log in found)
        raise RuntimeError(f"inspecting the cluster failed:\n{out.stderr[-3000:]}{nodes}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if sys.argv[1] == "start":
        _start_loopback(sys.argv[2:])
    elif sys.argv[1] == "inspect":
        print(json.dumps(_inspect(sys.argv[2], sys.argv[3], sys.argv[4:])))
    else:
        _child(sys.argv[2])
