"""Benchmark: the shared rate governor against the sandbox, with two baselines (issues 4 and 16).

Set-up: a Ray head (``ray start --head --block``, loopback, STACK_NOTES §3) and the sandbox under
uvicorn (latency fault 0.5-5 ms). Two OS processes with 8 worker threads each (16 workers).

Round 1, on a probe sandbox (one location per worker, so no limit binds):

  sandbox_capacity_req_s  requests/s the sandbox answers to the 16 workers sending ``POST
                          /contacts/search`` without permits, for 3 s: what this machine can serve
  capacity (idle)         permits/s through ``GovernorHandle.acquire`` (the workers' path: the
                          process's ``LeaseBroker`` leasing every thread's locations in one call,
                          reports riding along) from 8 threads in each process, each
                          thread on its own locations (100 per 1 s with a 60 ms margin, unpaced, a
                          fresh key every 80 permits so the limit never binds); baseline: no-op actor round
                          trips (``ping``) from the same threads, ``permits_per_ping`` the ratio;
                          and the actor alone (pipelined lease calls, no handle)
  capacity (under_load)   the same while two more processes of 8 threads keep the sandbox answering
                          searches as fast as it can: the HTTP client work of a migration's workers
                          and the server's own, on the same 2 cores
                          (each 3 times on a fresh actor: the median run, and ``runs_permits_per_s``)

Round 2: the limit is ``100 per window_s``, the window chosen so that the offered rate is at most a
quarter of the measured capacity (1 s on an idle 2-core machine; longer on a slow or busy one, so
the bench measures the governor, not the sandbox). The same two processes run, one after the other
and each on its own location:

  governor      one shared governor actor (``connect(address=...)``), the handle as PermitSource
  token_bucket  baseline (a): a token bucket per process with capacity = the limit
  retry_only    baseline (b): ``UnlimitedPermits``, only HighLevelClient's own retries on 429

Measured from the sandbox's journal at the time its limiter counted each request (``counted``), not
from the governor's bookkeeping:

  utilization        accepted requests in the N windows from the first accepted one / (N * burst);
                     null when the run was ``saturated``
  saturated          offered rate above half the sandbox's measured capacity, or the median request
                     (the operation less its permit waits) above 10 x the configured latency: then the
                     sandbox set the pace, and ``saturation_evidence`` says why
  http_429           429 answers during the phase
  max_in_window      most requests (accepted or not) in any sliding window; ..._accepted likewise
  p50/p99_wait_ms    time spent in PermitSource.acquire, from the workers
  p50/p99_op_ms      one search call including the permit wait and the client's retries

``baseline.ratios``: the governor's utilization over each baseline's, 429s side by side, permits per
ping round trip idle and under load, capacity under load / idle, and capacity under load / 1 000
permits/s (what 100 locations need at HighLevel's real limits).

Targets: not saturated, utilization >= 0.99, 0 x 429, max_in_window <= burst; capacity under load
>= 10,000 permits/s through GovernorHandle (10 x the need of 100 locations).

    python bench/governor.py --quick    4-10 windows, about 2 minutes on an idle machine
    python bench/governor.py            also the governor at the real 100 per 10 s with 5-50 ms
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from governor_measure import (  # bench/governor_measure.py: run as a script, bench/ is on the path
    HEADROOM,
    LAT,
    PROBE_LOCS,
    PROCESSES,
    THREADS,
    _analyse,
    _child,
    _children,
    _choose_window,
    _go,
    _load,
    _measure_capacity,
    _ratio,
    _saturation,
    _start_head,
    _start_sandbox,
    _stop,
    _wait_files,
    _wait_head_log,
    _wait_port,
    free_port,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("SPEC", "INDEX"), help=argparse.SUPPRESS)
    ap.add_argument("--load", metavar="SPEC", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return
    if args.load:
        _load(args.load)
        return

    t_all = time.perf_counter()
    burst = 100
    with tempfile.TemporaryDirectory(prefix="bench-gov-") as tmp:
        work = Path(tmp)
        procs: list[subprocess.Popen[bytes]] = []
        head = sandbox = real = probe = None
        try:
            ray_port, probe_port = free_port(), free_port()
            head = _start_head(ray_port, work / "head.log")
            probe = _start_sandbox(work / "probe", probe_port, burst, 1.0, "..".join(LAT),
                                   locations=PROBE_LOCS)
            _wait_port(probe, probe_port, "sandbox")
            _wait_port(head, ray_port, "ray head")
            _wait_head_log(head, work / "head.log")
            address = f"127.0.0.1:{ray_port}"
            ptok = json.loads((work / "probe" / "tokens.json").read_text())["locations"]
            (work / "r1").mkdir()
            cap = _measure_capacity(work / "r1", address, f"http://127.0.0.1:{probe_port}", ptok,
                                    sorted(ptok))
            _stop(probe)
            probe = None
            capacity = cap["sandbox_capacity_req_s"]
            window_s = _choose_window(capacity, burst)
            windows = (10 if args.quick else 20) if window_s == 1.0 else max(4, round(10 / window_s))

            sb_port = free_port()
            scaled = work / "scaled"
            sandbox = _start_sandbox(scaled, sb_port, burst, window_s, "..".join(LAT), locations=5)
            servers = [(sandbox, sb_port, scaled)]
            if not args.quick:
                real_port = free_port()
                real = _start_sandbox(work / "real", real_port, 100, 10.0, "5ms..50ms", locations=2)
                servers.append((real, real_port, work / "real"))
            for proc, port, _ in servers:
                _wait_port(proc, port, "sandbox")
            tok = json.loads((scaled / "tokens.json").read_text())["locations"]
            locs = sorted(tok)
            warm_loc = locs.pop()  # warm-up requests only
            url = f"http://127.0.0.1:{sb_port}"
            phases: list[dict[str, Any]] = []
            for method, loc in zip(("governor", "token_bucket", "retry_only"), locs, strict=False):
                phases.append({"method": method, "base_url": url, "location": loc, "token": tok[loc],
                               "burst": burst, "window_s": window_s, "windows": windows,
                               "duration_s": windows * window_s + 0.5,
                               "actor": f"bench-gov-{uuid.uuid4().hex[:8]}",
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
            procs = _children({"work": str(work), "address": address, "phases": phases}, work, "rate")
            results: dict[str, Any] = {}
            for i, ph in enumerate(phases):
                # a new governor grants nothing for one interval (its fail-safe): start after that
                lead = ph["window_s"] * 1.006 + 0.1 if ph["method"] == "governor" else 0.2
                start = _go(work, i, procs, lead)
                outs = _wait_files(work, [f"out-{i}-{k}.json" for k in range(PROCESSES)], procs,
                                   timeout=ph["duration_s"] + 90)
                time.sleep(0.1)  # the last journal lines
                res = _analyse(Path(ph["journal"]), ph, start, outs)
                if ph["method"] == "governor" and ph.get("name") != "governor_real":
                    res.update(_saturation(res, ph["burst"] / ph["window_s"], capacity))
                if res.get("saturated"):
                    res["utilization_if_not_saturated"] = res.pop("utilization")
                    res["utilization"] = None
                results[ph.get("name", ph["method"])] = res
            for p in procs:
                p.wait(timeout=60)
        except BaseException:
            for log in sorted([*work.rglob("child-*.log"), *work.rglob("load-*.log")]):
                sys.stderr.write(f"--- {log.name}\n{log.read_text()[-3000:]}")
            raise
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            _stop(*[p for p in (probe, sandbox, real, head) if p is not None])

    gov, tb, ro = results["governor"], results["token_bucket"], results["retry_only"]
    idle, load = cap["idle"], cap["under_load"]
    out: dict[str, Any] = {
        "limit": f"{burst} per {window_s:g} s, latency 0.5-5 ms", "burst": burst, "window_s": window_s,
        "workers": f"{PROCESSES} processes x {THREADS} threads", "windows": windows,
        "sandbox_capacity_req_s": capacity,
        "window_choice": f"burst / window <= sandbox capacity / {HEADROOM:g}",
        "offered_over_capacity": gov["saturation_evidence"]["offered_over_capacity"],
        "saturated": gov["saturated"],
        **({"saturation_evidence": gov["saturation_evidence"]} if gov["saturated"] else {}),
        **{k: gov[k] for k in ("utilization", "http_429", "p50_wait_ms", "p99_wait_ms", "max_in_window",
                               "max_in_window_accepted", "p50_op_ms", "p99_op_ms")},
        "capacity_via_handle_permits_per_s": {"idle": idle["via_handle_permits_per_s"],
                                              "under_load": load["via_handle_permits_per_s"]},
        "capacity": {"idle": idle, "under_load": load,
                     "load": f"{PROCESSES} processes x {THREADS} threads sending searches to the sandbox "
                             "as fast as it answers (a migration's HTTP work and the server's)"},
        "governor": gov,
        "baseline": {
            "token_bucket": tb, "retry_only": ro,
            "ratios": {
                "utilization_governor_over_token_bucket": _ratio(gov["utilization"], tb["utilization"]),
                "utilization_governor_over_retry_only": _ratio(gov["utilization"], ro["utilization"]),
                "http_429": {"governor": gov["http_429"], "token_bucket": tb["http_429"],
                             "retry_only": ro["http_429"]},
                "handle_permits_per_ping_call": {"idle": idle["permits_per_ping"],
                                                 "under_load": load["permits_per_ping"]},
                "handle_capacity_under_load_over_idle": _ratio(load["via_handle_permits_per_s"],
                                                               idle["via_handle_permits_per_s"]),
                "handle_capacity_under_load_over_need_100_locations": round(
                    load["via_handle_permits_per_s"] / 1000, 1),
            },
        },
        **({"governor_margin_50ms": results["governor_margin_50ms"]} if "governor_margin_50ms" in results
           else {}),
        "targets_met": {
            "not_saturated": not gov["saturated"],
            "utilization>=0.99": gov["utilization"] is not None and gov["utilization"] >= 0.99,
            "http_429==0": gov["http_429"] == 0, "max_in_window<=burst": gov["max_in_window"] <= burst,
            "capacity_under_load>=10000": load["via_handle_permits_per_s"] >= 10_000},
        "seconds": round(time.perf_counter() - t_all, 1),
    }
    if "governor_real" in results:
        out["real_limit"] = {"limit": "100 per 10 s, latency 5-50 ms", **results["governor_real"]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
