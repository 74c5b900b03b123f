"""Benchmark: a group of small practices, every location at once (issue 16), in real time.

Prints one JSON object (the last stdout line; progress goes to stderr). For each point (10, 25, 50,
100 locations; ``--quick``: 10 and 25) a generated group of small offices (8 patients each, every
office its own sub-account) is provisioned in the sandbox and migrated (``migrate``: prepare, the
full write phase, the sample's read-back; thread executor, default workers: one per location). The
sandbox enforces ``--limit`` requests per ``--window`` seconds per location and every client takes
its permits from one governor with the same limits, all on the wall clock. Measured from the
sandbox's journal (not our counters), per point:

  aggregate_req_s   journal lines of the write phase (first to last create, every class of request
                    in between) / its span in the journal
  ceiling_req_s     locations x limit / window: what the sub-accounts allow together
  utilization       aggregate / ceiling
  sandbox_req_s     the same-run baseline: what the sandbox alone serves on this machine (one thread,
                    limits lifted, the same write mix), measured before the points
  http_429          answers 429 (the governor must keep them at 0)
  cpu_s, cpu_share  the process's CPU seconds over the run, and their share of the machine's
                    (cores x wall): near 1, the machine's CPU binds
  peak_rss_mb       this process (flow, workers and the in-process sandbox are one process here)

  sandbox_busy_share  the share of the run's wall time the in-process sandbox spent serving (it serves
                    one request at a time)

``binds_at``: the first point whose utilization is under 0.9, and what bound it: ``sandbox`` when
it was busy 85 % of the run, ``cpu`` when the process used 85 % of the machine, else ``tool`` (our
scheduling, the governor or the client: the point to look at).

    python bench/scale.py --quick      10 and 25 locations
    python bench/scale.py              10, 25, 50 and 100
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter
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


class _Timed:
    """The in-process sandbox's transport, timing the app's service (inside its one-at-a-time lock): the
    sandbox's busy share of the write phase says whether it bound the run."""

    def __init__(self, transport: Any) -> None:
        self.busy = 0.0

        def timed(request: Any) -> Any:
            body = request.read()
            with transport._lock:
                t = time.perf_counter()
                try:
                    return transport._loop.run_until_complete(transport._send(request, body))
                finally:
                    self.busy += time.perf_counter() - t

        transport._run = timed


def _journal(w: Any) -> list[dict[str, Any]]:
    path = w.state / "journal.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def sandbox_capacity(root: Path) -> float:
    """Requests per second the in-process sandbox serves on one thread, limits lifted: the writes of a
    migration of two offices (the same mix the points send)."""
    from dos2hl.pipeline import MigrateParams, migrate
    from tests.migrate.conftest import EXPORT_DATE

    w = _world(root, 2, 10)
    try:
        seen = len(_journal(w))
        t0 = time.perf_counter()
        migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                              export_date=EXPORT_DATE, sample=0, workers=1), client_factory=w.factory)
        wall = time.perf_counter() - t0
        n = len(_journal(w)) - seen
    finally:
        w.stop()
        w.monkeypatch.undo()
    return n / wall  # a lower bound: the tool's own work shares the thread


def point(root: Path, locations: int, per_location: int, limit: int, window: float) -> dict[str, Any]:
    from pydantic import SecretStr

    from dos2hl.governor import Limits, LocalGovernor
    from dos2hl.highlevel import HighLevelClient, RetryPolicy
    from dos2hl.pipeline import MigrateParams, migrate
    from dos2hl.sandbox import InProcessTransport, create_app
    from tests.migrate.conftest import BASE, EXPORT_DATE, Counting

    _log(f"{locations} locations x {per_location} patients: building the group")
    w = _world(root, locations, per_location)
    w.stop()  # reopen the same state with the limits on, on the wall clock
    w.app = create_app(w.state, burst=(limit, window), daily=10**7, request_checks=25)
    w.transport = InProcessTransport(w.app)
    timed = _Timed(w.transport)
    gov = LocalGovernor(Limits(burst=limit, window_s=window, daily=10**7))
    retry = RetryPolicy(jitter=0.0)

    def factory(loc: str) -> Any:
        lid = w.loc_ids[loc]
        c = HighLevelClient(BASE, SecretStr(w.tokens[lid]), lid, permits=gov,
                            transport=Counting(w.transport, w.sent), retry=retry)
        w.clients.append(c)
        return c

    try:
        seen = len(_journal(w))
        _log(f"{locations} locations: migrating ({limit} per {window}s per location)")
        cpu0, t0, busy0 = time.process_time(), time.perf_counter(), timed.busy
        rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                    export_date=EXPORT_DATE, sample=0), client_factory=factory)
        wall, cpu, busy = time.perf_counter() - t0, time.process_time() - cpu0, timed.busy - busy0
        lines = _journal(w)[seen:]
    finally:
        w.stop()
        w.monkeypatch.undo()
    writes = [x["time"] for x in lines if x["method"] == "POST" and not x["path"].endswith("/search")]
    a, b = (min(writes), max(writes)) if writes else (0.0, 0.0)
    in_phase = [x for x in lines if a <= x["time"] <= b]  # the write phase: every location at work
    span = max(1e-9, b - a)
    by_status = Counter(x["status"] for x in lines)
    per_loc = Counter(x["location"] for x in lines)
    ceiling = locations * limit / window
    aggregate = len(in_phase) / span
    records = sum(o["written"] for loc in rep["locations"].values() for o in loc["objects"].values())
    return {"locations": locations, "status": rep["status"], "records": records,
            "requests": len(lines), "wall_s": round(wall, 2), "write_phase_s": round(span, 2),
            "aggregate_req_s": round(aggregate, 1), "ceiling_req_s": round(ceiling, 1),
            "utilization": round(aggregate / ceiling, 3), "http_429": by_status.get(429, 0),
            "requests_per_location": {"min": min(per_loc.values(), default=0),
                                      "max": max(per_loc.values(), default=0)},
            "cpu_s": round(cpu, 1), "cpu_share": round(cpu / (wall * (os.cpu_count() or 1)), 3),
            "sandbox_busy_share": round(busy / wall, 3),
            "peak_rss_mb": {"flow": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 and 25 locations")
    ap.add_argument("--points", default=None, help="comma-separated location counts (default 10,25,50,100)")
    ap.add_argument("--per-location", type=int, default=8, help="patients per office")
    ap.add_argument("--limit", type=int, default=100,
                    help="requests per window per location (HighLevel: 100)")
    ap.add_argument("--window", type=float, default=10.0, help="seconds (HighLevel: 10)")
    args = ap.parse_args()
    points = [int(x) for x in (args.points or ("10,25" if args.quick else "10,25,50,100")).split(",")]
    with tempfile.TemporaryDirectory(prefix="dos2hl-scale-") as tmp:
        capacity = sandbox_capacity(Path(tmp) / "capacity")
        _log(f"the sandbox alone: {capacity:.0f} requests/s")
        out = []
        for n in points:
            r = point(Path(tmp) / f"p{n}", n, args.per_location, args.limit, args.window)
            _log(json.dumps(r))
            out.append(r)
    binds = next((r for r in out if r["utilization"] < 0.9), None)
    what = None
    if binds is not None:
        what = ("sandbox" if binds["sandbox_busy_share"] >= 0.85 else "cpu" if binds["cpu_share"] >= 0.85
                else "tool")
    print(json.dumps({"bench": "scale", "limit": {"requests": args.limit, "window_s": args.window},
                      "per_location_patients": args.per_location, "sandbox_req_s": round(capacity, 1),
                      "cores": os.cpu_count(), "points": out,
                      "binds_at": None if binds is None else {"locations": binds["locations"], "by": what}}))


if __name__ == "__main__":
    main()
