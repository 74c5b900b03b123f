"""Benchmark: a group of small practices, every location at once (issue 16), in real time.

Prints one JSON object (the last stdout line; progress goes to stderr). For each point (10, 25, 50,
100 locations; ``--quick``: 10 and 25) a generated group of small offices (8 patients each, every
office its own sub-account) is provisioned in the sandbox and migrated (``migrate``: prepare, the
full write phase, the sample's read-back; default workers). ``--executor threads`` (the default): the
shards on threads of this process, one governor in it; ``--executor ray``: the shards on Ray actors
(processes, several shards each) sharing the governor actor, on an in-process Ray started per point,
against one sandbox process (the locations file names one HighLevel URL).

The sandbox runs as ``--sandboxes`` processes of its own (uvicorn on loopback, one SQLite state
shared in WAL mode, the locations dealt round-robin between them), so its work is not done on the
migration's cores-and-GIL and each process's CPU is measured apart: the sandbox is our rehearsal
tool and must not hide our own limits. Each sandbox enforces ``--limit`` requests per ``--window``
seconds per location; every client takes its permits from one governor with the same limits, all
on the wall clock, over real HTTP. Measured from the sandbox's journal (not our counters), per point:

  aggregate_req_s   requests per second while *every* location had work: from the last location's
                    first write to the first location's last write (offices of different sizes
                    finish at different times; the tail where only the big ones are left is the
                    data's, not the tool's, and is reported apart as ``imbalance``)
  ceiling_req_s     locations x limit / window: what the sub-accounts allow together
  utilization       aggregate / ceiling
  whole_phase       the same from the first write to the last, and ``best_possible``: the
                    utilization the largest office allows over that phase even at the full limit
  http_429          answers 429 (the governor must keep them at 0)
  processes         per process kind (flow: the migration, with its worker threads and the governor
                    under ``threads``; worker and governor: the Ray actors; ray: Ray's own services;
                    sandbox): count, CPU seconds, ``cores_used`` (CPU seconds / wall; a Python process
                    near 1.0 is bound by its interpreter lock) and peak RSS (the largest process, MB)
  cpu_share         all of them together over the machine's cores x wall
  all_busy_cores    per process kind while every location had work: cores used by all of the kind's
                    processes and by the busiest; ``all_busy_cpu_share`` all kinds over the machine's
                    cores

``binds_at``: the first point whose utilization is under 0.9, and what bound it while every location
had work: ``cpu`` when the processes used 85 % of the machine, else the process kind whose busiest
process used >= 0.85 of a core (``flow``, ``sandbox``, ``worker``, ``governor``), else ``tool`` (our
scheduling, the governor or the client: the point to look at).

    python bench/scale.py --quick      10 and 25 locations
    python bench/scale.py              10, 25, 50 and 100
    python bench/scale.py --points 100 --window 10 --limit 100     one point at HighLevel's real limits
    python bench/scale.py --points 10,25 --executor ray            the same on Ray workers
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _log(msg: str) -> None:
    print(f"[bench/scale] {msg}", file=sys.stderr, flush=True)


def _world(root: Path, locations: int, per_location: int) -> Any:
    import pytest

    from dos2hl.phi import create_key_file
    from tests.migrate.conftest import make_world

    mp = pytest.MonkeyPatch()
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    mp.setenv("DOS2HL_SHARDS", "4")  # 8 patients an office: four shards, not sixteen near-empty ones
    w = make_world(root, mp, patients=max(20, locations * per_location), locations=locations,
                   history_years=2)
    w.monkeypatch = mp
    return w


def _journal(state: Path) -> list[dict[str, Any]]:
    path = state / "journal.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# ---- the sandbox in processes of its own -----------------------------------------------------------
def _serve(state: str, port: str, limit: str, window: str) -> None:
    """``python bench/scale.py sandbox STATE PORT LIMIT WINDOW``: one sandbox process."""
    import uvicorn

    from dos2hl.sandbox import create_app
    from dos2hl.sandbox.server import _listen

    app = create_app(Path(state), burst=(int(limit), float(window)), daily=10**7, request_checks=25)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(
        sockets=[_listen("127.0.0.1", int(port))])


@contextlib.contextmanager
def sandboxes(state: Path, n: int, limit: int, window: float, logs: Path) -> Iterator[list[str]]:
    """``n`` sandbox processes over one state on free loopback ports; yields their base URLs."""
    import httpx

    from tests.integration._servers import free_ports, stop_group

    procs, bases = [], []
    try:
        for i, port in enumerate(free_ports(n)):
            with open(logs / f"sandbox-{i}.log", "wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, __file__, "sandbox", str(state), str(port), str(limit), str(window)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
                    start_new_session=True))
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs, strict=True):
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/_sandbox/health", timeout=1).status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a sandbox process did not come up (log: {logs})")
                time.sleep(0.05)
        yield bases
    finally:
        for proc in procs:
            stop_group(proc, (signal.SIGINT,), grace=5)


# ---- CPU and memory per process kind ---------------------------------------------------------------
class Sampler:
    """This process and its children, every ``every`` seconds: the last CPU times and the peak RSS of each
    process, by kind (``sandbox`` for the sandbox processes, ``flow`` for this one)."""

    def __init__(self, every: float = 0.25) -> None:
        import psutil

        self.psutil, self.every = psutil, every
        self.me = psutil.Process()
        self.cpu: dict[int, float] = {}
        self.rss: dict[int, int] = {}
        self.kind: dict[int, str] = {}
        self.series: list[tuple[float, dict[int, float]]] = []  # (wall clock, CPU seconds per process)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="bench-sampler")

    def _kind(self, p: Any) -> str:
        if p.pid == self.me.pid:
            return "flow"
        cmd = f" {' '.join(p.cmdline())} "
        marks = ((" sandbox ", "sandbox"), ("ShardWorker", "worker"), ("_GovernorActor", "governor"),
                 ("ray", "ray"))  # Ray names its actors' processes ray::<class>
        for mark, kind in marks:
            if mark in cmd:
                return kind
        return "other"

    def sample(self) -> None:
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                with p.oneshot():
                    t, rss = p.cpu_times(), p.memory_info().rss
                    if self.kind.get(p.pid, "ray") == "ray":  # Ray starts idle workers, then names them
                        self.kind[p.pid] = self._kind(p)  # after the actor they became
            except self.psutil.Error:
                continue
            self.cpu[p.pid] = t.user + t.system
            self.rss[p.pid] = max(self.rss.get(p.pid, 0), rss)
        self.series.append((time.time(), dict(self.cpu)))

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()

    def __enter__(self) -> Sampler:
        self.sample()
        self.start_cpu = dict(self.cpu)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()

    def by_kind(self, wall: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for pid, kind in self.kind.items():
            k = out.setdefault(kind, {"count": 0, "cpu_s": 0.0, "peak_rss_mb": 0.0, "busiest_cores": 0.0})
            used = self.cpu.get(pid, 0.0) - self.start_cpu.get(pid, 0.0)
            k["count"] += 1
            k["cpu_s"] += used
            k["busiest_cores"] = max(k["busiest_cores"], used / wall)
            k["peak_rss_mb"] = max(k["peak_rss_mb"], self.rss.get(pid, 0) / 2**20)
        for k in out.values():
            k["cores_used"] = round(k["cpu_s"] / wall, 3)
            k["busiest_cores"] = round(k["busiest_cores"], 3)
            k["cpu_s"] = round(k["cpu_s"], 1)
            k["peak_rss_mb"] = round(k["peak_rss_mb"], 1)
        return out


    def cores_between(self, a: float, b: float) -> dict[str, dict[str, float]]:
        """Cores used per process kind between wall-clock times ``a`` and ``b`` (the samples nearest
        inside; e.g. while every location had work): all of the kind's processes, and the busiest."""
        inside = [(t, cpu) for t, cpu in self.series if a <= t <= b]
        if len(inside) < 2:
            return {}
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        out: dict[str, dict[str, float]] = {}
        for pid, cpu in c1.items():
            used = (cpu - c0.get(pid, 0.0)) / (t1 - t0)
            k = out.setdefault(self.kind.get(pid, "other"), {"cores": 0.0, "busiest": 0.0})
            k["cores"] += used
            k["busiest"] = max(k["busiest"], used)
        return {kind: {k: round(v, 3) for k, v in d.items()} for kind, d in sorted(out.items())}


# ---- one point -------------------------------------------------------------------------------------
def phases(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The write phase and the part of it where every location had work, from the journal's lines."""
    writes = [x for x in lines if x["method"] == "POST" and not x["path"].endswith("/search")
              and x["location"]]
    if not writes:
        return {"all_busy": (0.0, 0.0), "whole": (0.0, 0.0)}
    first_write: dict[str, float] = {}
    for x in writes:
        first_write[x["location"]] = min(first_write.get(x["location"], x["time"]), x["time"])
    start = min(first_write.values())
    last_write: dict[str, float] = {}  # the run's closing reads (reconciliation) come after every write
    for x in writes:
        last_write[x["location"]] = max(last_write.get(x["location"], x["time"]), x["time"])
    return {"all_busy": (max(first_write.values()), min(last_write.values())),
            "whole": (start, max(last_write.values()))}


def rate(lines: list[dict[str, Any]], span: tuple[float, float]) -> tuple[int, float]:
    a, b = span
    return sum(1 for x in lines if a <= x["time"] <= b and x["location"]), max(1e-9, b - a)


def point(root: Path, locations: int, per_location: int, limit: int, window: float,
          n_sandboxes: int, workers: int | None = None, executor: str = "threads") -> dict[str, Any]:
    from pydantic import SecretStr

    from dos2hl.execution.schedule import default_workers
    from dos2hl.governor import Limits, LocalGovernor
    from dos2hl.highlevel import HighLevelClient, RetryPolicy
    from dos2hl.pipeline import MigrateParams, migrate
    from tests.migrate.conftest import EXPORT_DATE

    _log(f"{locations} locations x {per_location} patients: building the group")
    w = _world(root, locations, per_location)
    w.stop()  # the state is served by the sandbox processes below, with the limits on
    if executor == "ray":  # one governor actor with the bench's limits, on an in-process Ray of this point
        n_sandboxes = 1  # the locations file names one URL
        gov_env = {"ADDRESS": "local", "BURST": limit, "WINDOW_S": window, "DAILY": 10**7,
                   "NAME": f"scale-{locations}-{os.getpid()}", "STATE": str(root / "governor.json")}
        for k, v in gov_env.items():
            w.monkeypatch.setenv(f"DOS2HL_GOVERNOR_{k}", str(v))
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    gov = LocalGovernor(Limits(burst=limit, window_s=window, daily=10**7))
    retry = RetryPolicy(jitter=0.0)
    clients: list[Any] = []
    try:
        with sandboxes(w.state, n_sandboxes, limit, window, logs) as bases:
            home = {loc: bases[i % len(bases)] for i, loc in enumerate(sorted(w.loc_ids))}

            def factory(loc: str) -> Any:
                lid = w.loc_ids[loc]
                c = HighLevelClient(home[loc], SecretStr(w.tokens[lid]), lid, permits=gov, retry=retry)
                clients.append(c)
                return c

            seen = len(_journal(w.state))
            _log(f"{locations} locations: migrating ({limit} per {window}s per location, "
                 f"{len(bases)} sandbox processes)")
            margins: list[float] = []  # the largest margin in force across the keys, every 5 s
            done = threading.Event()

            def watch() -> None:
                while executor == "threads" and not done.wait(5.0):  # the actor's are not at hand
                    keys = [f"default/{lid}" for lid in w.loc_ids.values()]
                    with gov._lock:  # the core is not thread-safe
                        margins.append(max(gov.core.margin(k) for k in keys))

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            with Sampler() as sampler:
                t0 = time.perf_counter()
                rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping),
                                            locations=str(w.locations), export_date=EXPORT_DATE, sample=0,
                                            workers=workers, executor=executor, target=bases[0]),
                              client_factory=factory if executor == "threads" else None)
                wall = time.perf_counter() - t0
            done.set()
            watcher.join()
            time.sleep(0.2)  # the last journal lines
            lines = _journal(w.state)[seen:]
    finally:
        for c in clients:
            c.close()
        if executor == "ray":  # the next point's workers start with its tokens in their environment
            import ray

            ray.shutdown()
        w.monkeypatch.undo()
    ph = phases(lines)
    ceiling = locations * limit / window
    n_busy, span_busy = rate(lines, ph["all_busy"])
    n_whole, span_whole = rate(lines, ph["whole"])
    per_loc = Counter(x["location"] for x in lines if x["location"])
    biggest = max(per_loc.values(), default=0)
    kinds = sampler.by_kind(wall)
    busy_cores = sampler.cores_between(*ph["all_busy"])
    a, b = ph["all_busy"]
    gaps, server_s = [], 0.0  # per location: time between its requests, and the server's time on them
    for lid in per_loc:
        ts = sorted(x["time"] for x in lines if x["location"] == lid and a <= x["time"] <= b)
        gaps += [t2 - t1 for t1, t2 in zip(ts, ts[1:], strict=False)]
        server_s += sum(x["latency_ms"] for x in lines if x["location"] == lid and a <= x["time"] <= b) / 1000
    gaps.sort()
    records = sum(o["written"] for loc in rep["locations"].values() for o in loc["objects"].values())
    return {"locations": locations, "status": rep["status"], "records": records,
            "requests": len(lines), "wall_s": round(wall, 2), "all_busy_s": round(span_busy, 2),
            "aggregate_req_s": round(n_busy / span_busy, 1), "ceiling_req_s": round(ceiling, 1),
            "utilization": round(n_busy / span_busy / ceiling, 3),
            "whole_phase": {"seconds": round(span_whole, 2),
                            "utilization": round(n_whole / span_whole / ceiling, 3),
                            "best_possible": round(min(1.0, n_whole / (biggest * window / limit) / ceiling)
                                                   if biggest else 0.0, 3)},
            "http_429": sum(1 for x in lines if x["status"] == 429),
            "requests_per_location": {"min": min(per_loc.values(), default=0), "max": biggest},
            "gap_ms": {q: round(1000 * gaps[int(f * (len(gaps) - 1))], 1) if gaps else None
                       for q, f in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9))},
            "server_busy_per_location": round(server_s / span_busy / max(1, len(per_loc)), 3),
            "margin_ms_every_5s": [round(m * 1000) for m in margins],
            "executor": executor, "workers": workers or default_workers(locations, executor),
            "sandboxes": n_sandboxes, "processes": kinds,
            "cpu_share": round(sum(k["cpu_s"] for k in kinds.values()) / (wall * (os.cpu_count() or 1)), 3),
            "all_busy_cores": busy_cores,
            "all_busy_cpu_share": round(sum(k["cores"] for k in busy_cores.values())
                                        / (os.cpu_count() or 1), 3),
            "peak_rss_mb": {k: v["peak_rss_mb"] for k, v in kinds.items()}}


def bound_by(p: dict[str, Any]) -> str:
    """What bound a point, from the cores used while every location had work: the machine (``cpu``),
    else one process kind using >= 0.85 of a core (a Python process there is held by its interpreter
    lock), else ``tool``."""
    if p["all_busy_cpu_share"] >= 0.85:
        return "cpu"
    busy = [(v["busiest"], k) for k, v in p["all_busy_cores"].items() if v["busiest"] >= 0.85]
    return max(busy)[1] if busy else "tool"


def main() -> None:
    # a stopped bench stops its sandbox processes too (they run in sessions of their own)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 and 25 locations")
    ap.add_argument("--points", default=None, help="comma-separated location counts (default 10,25,50,100)")
    ap.add_argument("--per-location", type=int, default=8, help="patients per office")
    ap.add_argument("--limit", type=int, default=100,
                    help="requests per window per location (HighLevel: 100)")
    ap.add_argument("--window", type=float, default=10.0, help="seconds (HighLevel: 10)")
    ap.add_argument("--workers", type=int, default=None,
                    help="shard threads, or Ray worker processes (default: the run's default)")
    ap.add_argument("--executor", choices=("threads", "ray"), default="threads")
    ap.add_argument("--keep", type=Path, default=None, help="keep each point's world (journal, runs) here")
    ap.add_argument("--sandboxes", type=int, default=None,
                    help="sandbox processes (default: one per core, at least two)")
    args = ap.parse_args()
    points = [int(x) for x in (args.points or ("10,25" if args.quick else "10,25,50,100")).split(",")]
    n_sandboxes = args.sandboxes or max(2, os.cpu_count() or 1)
    out = []
    with tempfile.TemporaryDirectory(prefix="dos2hl-scale-") as scratch:
        tmp = args.keep or scratch
        for n in points:
            r = point(Path(tmp) / f"p{n}", n, args.per_location, args.limit, args.window, n_sandboxes,
                      args.workers, args.executor)
            _log(json.dumps(r))
            out.append(r)
    binds = next((r for r in out if r["utilization"] < 0.9), None)
    print(json.dumps({"bench": "scale", "limit": {"requests": args.limit, "window_s": args.window},
                      "per_location_patients": args.per_location, "cores": os.cpu_count(), "points": out,
                      "binds_at": None if binds is None else {"locations": binds["locations"],
                                                              "by": bound_by(binds)}}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sandbox":
        _serve(*sys.argv[2:6])
    else:
        main()
