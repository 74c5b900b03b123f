"""Benchmark: the shared rate governor against the sandbox, with two baselines (issue 4).

Set-up: a Ray head (``ray start --head --block``, loopback, STACK_NOTES §3) and the sandbox under
uvicorn with scaled limits (100 per 1 s, latency fault 0.5-5 ms). Two OS processes with 8 worker
threads each (16 workers) send ``POST /contacts/search`` through ``HighLevelClient`` for a fixed
number of windows. The same two processes run, one after the other and each on its own location:

  governor      one shared governor actor (``connect(address=...)``), the handle as PermitSource
  token_bucket  baseline (a): a token bucket per process with capacity = the limit
  retry_only    baseline (b): ``UnlimitedPermits``, only HighLevelClient's own retries on 429

Measured from the sandbox's journal (arrival = journal time - latency, i.e. when the request reached
the server), not from the governor's bookkeeping:

  utilization        accepted requests in the N windows from the first accepted one / (N * burst)
  http_429           429 answers during the phase
  max_in_window      most requests (accepted or not) in any sliding window; ..._accepted likewise
  p50/p99_wait_ms    time spent in PermitSource.acquire, from the workers
  p99_op_ms          one search call including the client's retries

``capacity_permits_per_s``: permits granted per second by one actor, without HTTP, pipelined lease
calls of ``batch`` (8) permits for one key each (what ``GovernorHandle`` sends), over 2000 keys.
``capacity_via_handle_permits_per_s``: the same through ``GovernorHandle.acquire`` from 8 threads
of one process (one actor call in flight per handle, so client-bound).

Targets: utilization >= 0.99 with 0 x 429 at the scaled limit; capacity >= 20,000 permits/s.

    python bench/governor.py --quick    10 windows at 100 per 1 s, under a minute
    python bench/governor.py            also the governor at the real 100 per 10 s with 5-50 ms
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0"}
ENV = {**os.environ, **RAY_ENV, "PYTHONPATH": str(ROOT)}
PROCESSES, THREADS = 2, 8


# ---- baseline (a) ------------------------------------------------------------------------------------
class TokenBucket:
    """A per-process token bucket with capacity = the limit, refilled at limit per window."""

    def __init__(self, capacity: int, window_s: float) -> None:
        self.capacity, self.rate = float(capacity), capacity / window_s
        self.tokens, self.at = float(capacity), time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, location_id: str, n: int = 1) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
                self.at = now
                if self.tokens >= n:
                    self.tokens -= n
                    return
                wait = (n - self.tokens) / self.rate
            time.sleep(wait)

    def report(self, location_id: str, status: int, headers: Any) -> None:
        return None


class Timed:
    """Wraps a PermitSource and records how long each acquire blocked."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.waits = inner, []

    def acquire(self, location_id: str, n: int = 1) -> None:
        t0 = time.perf_counter()
        self.inner.acquire(location_id, n)
        self.waits.append(time.perf_counter() - t0)

    def report(self, location_id: str, status: int, headers: Any) -> None:
        self.inner.report(location_id, status, headers)


# ---- the worker processes ----------------------------------------------------------------------------
def _child(spec_path: str, index: int) -> None:
    sys.path.insert(0, str(ROOT))
    from pydantic import SecretStr

    from dos2hl.errors import HighLevelError
    from dos2hl.governor import Limits
    from dos2hl.governor.actor import connect
    from dos2hl.highlevel import HighLevelClient, UnlimitedPermits
    from dos2hl.highlevel.models import ContactSearch

    spec = json.loads(Path(spec_path).read_text())
    work = Path(spec["work"])
    for i, ph in enumerate(spec["phases"]):
        if ph["method"] == "capacity":
            if index == 0:
                _write(work / f"out-{i}-0.json", _capacity(spec["address"], ph))
            continue
        if ph["method"] == "governor":
            lim = Limits(burst=ph["burst"], window_s=ph["window_s"], daily=200_000,  # the sandbox's daily
                         margin_s=ph.get("margin_s"))
            inner: Any = connect(address=spec["address"], name=ph["actor"], limits=lim, batch=8)
        elif ph["method"] == "token_bucket":
            inner = TokenBucket(ph["burst"], ph["window_s"])
        else:
            inner = UnlimitedPermits()
        permits = Timed(inner)
        clients = [HighLevelClient(ph["base_url"], SecretStr(ph["token"]), ph["location"], permits=permits)
                   for _ in range(THREADS)]
        # warm-up on a location of its own: open each client's connection and the server's code paths,
        # so the run measures the steady state, not the sandbox's first-request stall
        with HighLevelClient(ph["base_url"], SecretStr(ph["warmup_token"]), ph["warmup_location"],
                             permits=UnlimitedPermits()) as warm:
            for _ in range(THREADS):
                warm.search_contacts(ContactSearch(pageLimit=1))
        (work / f"ready-{i}-{index}").touch()
        go = work / f"go-{i}.json"
        while not go.exists():
            time.sleep(0.005)
        start = json.loads(go.read_text())["start"]
        faulthandler.dump_traceback_later(ph["duration_s"] + 60, exit=True)  # a stuck worker says where
        end = start + ph["duration_s"]
        ops: list[float] = []
        errors: list[str] = []

        def run(client: HighLevelClient, start: float = start, end: float = end, ops: list[float] = ops,
                errors: list[str] = errors) -> None:
            time.sleep(max(0.0, start - time.time()))
            while time.time() < end:
                t0 = time.perf_counter()
                try:
                    client.search_contacts(ContactSearch(pageLimit=1))
                except HighLevelError as exc:
                    errors.append(type(exc).__name__)
                ops.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=run, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        faulthandler.cancel_dump_traceback_later()
        for c in clients:
            c.close()
        margin = inner.status(ph["location"]).margin_s if ph["method"] == "governor" else None
        if hasattr(inner, "close"):
            inner.close()
        _write(work / f"out-{i}-{index}.json", {"waits": permits.waits, "ops": ops, "errors": errors,
                                                 "dropped": getattr(inner, "dropped", 0),
                                                 "calls": getattr(inner, "calls", 0), "margin_s": margin})


def _write(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    tmp.replace(path)


def _capacity(address: str, ph: dict[str, Any]) -> dict[str, float]:
    import ray

    from dos2hl.governor import Limits
    from dos2hl.governor.actor import connect

    lim = Limits(burst=100, window_s=1.0, daily=10_000_000)
    h = connect(address=address, name=ph["actor"], limits=lim, batch=8)
    time.sleep(lim.interval + 0.05)  # the fail-safe interval after creation
    actor, keys = h._actor, [f"cap/{i}" for i in range(2000)]
    # pipelined: at most `inflight` calls outstanding, each one key x 8 permits (the handle's batching)
    calls, inflight, granted = 8_000, 256, 0
    pending: list[Any] = []
    t0 = time.perf_counter()
    for c in range(calls):
        pending.append(actor.lease.remote([(keys[c % len(keys)], "migration", 8, [])]))
        if len(pending) >= inflight:
            done, pending = ray.wait(pending, num_returns=inflight // 2)
            granted += sum(len(t) for r in ray.get(done) for t, _ in r)
    granted += sum(len(t) for r in ray.get(pending) for t, _ in r)
    actor_rate = granted / (time.perf_counter() - t0)

    # through GovernorHandle.acquire (fresh keys, so no window is full): 8 threads, one handle
    h2 = connect(address=address, name=ph["actor"], batch=8)
    counts = [0] * 8
    stop = 0.0

    def run(i: int) -> None:
        k = 0
        while time.perf_counter() < stop:
            key = f"hcap/{i}/{k}"
            for _ in range(96):
                h2.acquire(key, 1)
                counts[i] += 1
            k += 1

    t1 = time.perf_counter()  # every key's fail-safe counts from the actor's start, long past
    stop = t1 + 2.0
    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handle_rate = sum(counts) / (time.perf_counter() - t1)
    return {"capacity_permits_per_s": actor_rate, "granted": granted, "calls": calls,
            "capacity_via_handle_permits_per_s": handle_rate, "handle_calls": h2.calls}


# ---- the parent --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(proc: subprocess.Popen[bytes], port: int, what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up in {timeout} s")


def _stop(*procs: subprocess.Popen[bytes], grace: float = 6.0) -> None:
    """SIGTERM each process group (started with start_new_session), SIGKILL what is left after grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass


def _start_head(port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--num-cpus=2",
         "--include-dashboard=false", f"--port={port}", "--disable-usage-stats"],
        env=ENV, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def _start_sandbox(state: Path, port: int, burst: int, window_s: float, latency: str,
                   locations: int) -> subprocess.Popen[bytes]:
    code = ("import sys; from pathlib import Path; from dos2hl.sandbox import serve; "
            f"serve(Path({str(state)!r}), port={port}, locations={locations}, "
            f"tokens_out=Path({str(state / 'tokens.json')!r}), burst=({burst}, {window_s}), "
            f"faults={'latency=' + latency!r})")
    return subprocess.Popen([sys.executable, "-c", code], env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=(state.parent / f"sandbox-{port}.log").open("wb"), start_new_session=True)


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _max_in_window(ts: list[float], window: float) -> int:
    import bisect

    s = sorted(ts)
    return max((i + 1 - bisect.bisect_right(s, s[i] - window) for i in range(len(s))), default=0)


def _analyse(journal: Path, ph: dict[str, Any], start: float, outs: list[dict[str, Any]]) -> dict[str, Any]:
    if os.environ.get("BENCH_KEEP"):  # keep the journal for a closer look
        shutil.copy(journal, os.environ["BENCH_KEEP"])
    rows = [json.loads(line) for line in journal.read_text().splitlines()]
    rows = [r for r in rows if r["location"] == ph["location"] and r["time"] >= start - 1.0]
    arrivals = [(r["time"] - r["latency_ms"] / 1000, r["status"]) for r in rows]
    accepted = sorted(t for t, s in arrivals if s != 429)
    w, b, n = ph["window_s"], ph["burst"], ph["windows"]
    t1 = accepted[0] if accepted else start
    in_run = sum(1 for t in accepted if t1 <= t < t1 + n * w)
    waits = [x for o in outs for x in o["waits"]]
    ops = [x for o in outs for x in o["ops"]]
    errors = [e for o in outs for e in o["errors"]]
    return {
        "utilization": round(in_run / (n * b), 4),
        "accepted_in_run": in_run, "allowed_in_run": n * b,
        "http_429": sum(1 for _, s in arrivals if s == 429),
        "other_errors": sum(1 for _, s in arrivals if s >= 400 and s != 429),
        "max_in_window": _max_in_window([t for t, _ in arrivals], w),
        "max_in_window_accepted": _max_in_window(accepted, w),
        "p50_wait_ms": round(_pct(waits, 0.50) * 1000, 2), "p99_wait_ms": round(_pct(waits, 0.99) * 1000, 2),
        "p50_op_ms": round(_pct(ops, 0.50) * 1000, 2), "p99_op_ms": round(_pct(ops, 0.99) * 1000, 2),
        "client_errors": len(errors),
        "permits_dropped_stale": sum(o.get("dropped", 0) for o in outs),
        "governor_calls": sum(o.get("calls", 0) for o in outs),
        **({"margin_ms": round(1000 * max(o["margin_s"] for o in outs),
                               2)} if outs[0].get("margin_s") else {}),
        "first_accepted_after_go_ms": round((t1 - start) * 1000, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("SPEC", "INDEX"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return

    t_all = time.perf_counter()
    windows = 10 if args.quick else 20
    with tempfile.TemporaryDirectory(prefix="bench-gov-") as tmp:
        work = Path(tmp)
        procs: list[subprocess.Popen[bytes]] = []
        head = sandbox = real = None
        try:
            ray_port, sb_port = free_port(), free_port()
            head = _start_head(ray_port, work / "head.log")
            scaled = work / "scaled"
            sandbox = _start_sandbox(scaled, sb_port, 100, 1.0, "0.5ms..5ms", locations=5)
            servers = [(sandbox, sb_port, scaled)]
            if not args.quick:
                real_port = free_port()
                real = _start_sandbox(work / "real", real_port, 100, 10.0, "5ms..50ms", locations=2)
                servers.append((real, real_port, work / "real"))
            for proc, port, _ in servers:
                _wait_port(proc, port, "sandbox")
            _wait_port(head, ray_port, "ray head")
            tok = json.loads((scaled / "tokens.json").read_text())["locations"]
            locs = sorted(tok)
            warm_loc = locs.pop()  # warm-up requests only
            url = f"http://127.0.0.1:{sb_port}"
            phases: list[dict[str, Any]] = []
            for method, loc in zip(("governor", "token_bucket", "retry_only"), locs, strict=False):
                phases.append({"method": method, "base_url": url, "location": loc, "token": tok[loc],
                               "burst": 100, "window_s": 1.0, "windows": windows,
                               "duration_s": windows + 0.5, "actor": f"bench-gov-{uuid.uuid4().hex[:8]}",
                               "journal": str(scaled / "journal.jsonl"),
                               "warmup_location": warm_loc, "warmup_token": tok[warm_loc]})
            if not args.quick:  # diagnostic: the same with a 50 ms margin instead of the default 6 ms
                phases.append({**phases[0], "name": "governor_margin_50ms", "margin_s": 0.05,
                               "location": locs[3], "token": tok[locs[3]],
                               "actor": f"bench-gov-{uuid.uuid4().hex[:8]}"})
                rtok = json.loads((work / "real" / "tokens.json").read_text())["locations"]
                rloc = sorted(rtok)[0]
                phases.append({"method": "governor", "name": "governor_real", "location": rloc,
                               "base_url": f"http://127.0.0.1:{real_port}", "token": rtok[rloc],
                               "warmup_location": sorted(rtok)[1], "warmup_token": rtok[sorted(rtok)[1]],
                               "burst": 100, "window_s": 10.0, "windows": 6, "duration_s": 65.0,
                               "actor": f"bench-gov-{uuid.uuid4().hex[:8]}",
                               "journal": str(work / "real" / "journal.jsonl")})
            phases.append({"method": "capacity", "actor": f"bench-cap-{uuid.uuid4().hex[:8]}"})
            spec = work / "spec.json"
            spec.write_text(json.dumps({"work": str(work), "address": f"127.0.0.1:{ray_port}",
                                        "phases": phases}))
            procs = [subprocess.Popen([sys.executable, __file__, "--child", str(spec), str(i)], env=ENV,
                                      cwd=ROOT, stderr=(work / f"child-{i}.log").open("wb"))
                     for i in range(PROCESSES)]
            results: dict[str, Any] = {}
            for i, ph in enumerate(phases):
                if ph["method"] == "capacity":
                    outs = _wait_files(work, [f"out-{i}-0.json"], procs, timeout=120)
                    results["capacity"] = outs[0]
                    continue
                _wait_files(work, [f"ready-{i}-{k}" for k in range(PROCESSES)], procs, timeout=120)
                # a new governor grants nothing for one interval (its fail-safe): start after that
                lead = ph["window_s"] * 1.006 + 0.1 if ph["method"] == "governor" else 0.2
                start = time.time() + lead
                _write(work / f"go-{i}.json", {"start": start})
                outs = _wait_files(work, [f"out-{i}-{k}.json" for k in range(PROCESSES)], procs,
                                   timeout=ph["duration_s"] + 90)
                time.sleep(0.1)  # the last journal lines
                results[ph.get("name", ph["method"])] = _analyse(Path(ph["journal"]), ph, start, outs)
            for p in procs:
                p.wait(timeout=60)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            _stop(*[p for p in (sandbox, real, head) if p is not None])
            if any(p.returncode not in (0, None) for p in procs):
                for i in range(PROCESSES):
                    sys.stderr.write((work / f"child-{i}.log").read_text()[-3000:])

    gov = results["governor"]
    cap = results["capacity"]
    out: dict[str, Any] = {
        "limit": "100 per 1 s, latency 0.5-5 ms", "workers": f"{PROCESSES} processes x {THREADS} threads",
        "windows": windows,
        **{k: gov[k] for k in ("utilization", "http_429", "p50_wait_ms", "p99_wait_ms", "max_in_window",
                               "max_in_window_accepted", "p99_op_ms")},
        "capacity_permits_per_s": round(cap["capacity_permits_per_s"]),
        "capacity_via_handle_permits_per_s": round(cap["capacity_via_handle_permits_per_s"]),
        "governor": gov,
        "baselines": {name: results[name] for name in ("token_bucket", "retry_only")},
        **({"governor_margin_50ms": results["governor_margin_50ms"]} if "governor_margin_50ms" in results
           else {}),
        "targets_met": {"utilization>=0.99": gov["utilization"] >= 0.99, "http_429==0": gov["http_429"] == 0,
                        "capacity>=20000": cap["capacity_permits_per_s"] >= 20_000},
        "seconds": round(time.perf_counter() - t_all, 1),
    }
    if "governor_real" in results:
        out["real_limit"] = {"limit": "100 per 10 s, latency 5-50 ms", **results["governor_real"]}
    print(json.dumps(out, indent=2))


def _wait_files(work: Path, names: list[str], procs: list[subprocess.Popen[bytes]],
                timeout: float) -> list[dict[str, Any]]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all((work / n).exists() for n in names):
            time.sleep(0.02)
            return [json.loads((work / n).read_text() or "{}") if n.endswith(".json") else {} for n in names]
        if any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError("a worker process failed")
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {names}")


if __name__ == "__main__":
    main()
