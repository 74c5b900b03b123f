"""Ray clusters of two nodes (issues 8 and 16), all tests of this module on one cluster.

In ``make test`` (issue 16: "the two-node S3 test and the node-kill test pass in make test"): the
cluster, the S3 server and the module's runs take ~110 s of one test worker, ~80 CPU seconds.

One cluster for the module (``ray_cluster``: a head (``ray start --head``) and a second node
(``ray start --address``) on 127.0.0.1, 1 CPU each), one moto S3 server on 127.0.0.1 (``s3_server``),
one Prefect API (the test harness's server: real flow runs of one backend, as with a deployment, without
a server per process) and two generated practices, each provisioned once in a sandbox: the module's,
whose state is copied for each run so every run starts from the same sub-accounts, and the shared
governor test's (duplicates allowed). Each flow run is its own OS process (``_ray_nodes._child``)
connected to the cluster by address, with ``DOS2HL_STORAGE`` naming a local folder that must never
appear: the run's storage is ``s3://<bucket>/...`` (each test its own bucket or prefix) and everything a
worker reads or writes goes there. The sandboxes are served over HTTP with HighLevel's limit scaled to
LIMIT requests per WINDOW_S (100 per 10 s becomes 50 per 1 s, so the tests are quick), the governor
configured the same; every run of the module takes its permits from the one governor actor, whose day
counts are per location (the two practices' sub-accounts are distinct).

On a cluster, nothing assumes one machine (issue 16):

1. The same run with local storage is refused with the ConfigError, before anything is written.
2. Over S3 the flow run completes with shards on both nodes, one governor actor, no 429 and no window
   over the limit in the sandbox's journal, and the sub-accounts hold exactly what a single-node run of
   the same export writes (compared per location, minus HighLevel's ids and timestamps).

The governor is shared across concurrently running flow runs (issue 8):

3. Two migration flow runs, each its own OS process with its own run (storage root) and one Ray shard
   worker, write the same export into the same two sandbox locations (duplicates allowed there) at the
   same time, both connected to the cluster by address, each keeping its run in moto's S3 (local
   storage is refused on two nodes, test 1). The sandbox's journal, not the governor's bookkeeping,
   shows that the combined rate per location never exceeded the limit in any sliding window, and that no
   request got a 429. Each run writes every patient: it creates it, or adopts it when the other run
   created it first under the same keys (which run is first is a race); the journal's creates are the
   sum of what the runs say they created.

And last, as it leaves the cluster with one node:

4. The second node's raylet is SIGKILLed while the run writes: the run finishes on the head, every
   source row is in HighLevel exactly once (by our keys), and the result equals the single-node run's.

Both nodes stay at 127.0.0.1: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, with the one check that refuses a
second node lifted in the ``ray start`` process only (``_ray_nodes._start_loopback``). When the module is
done, no process of the cluster outlives it (checked after it stops).

(Until the merge, tests 1, 2 and 4 were test_ray_cluster_s3.py and test 3 this file, each module with its
own cluster, Prefect server and practice.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration._ray_cluster import (
    LIMIT,
    RUNS,
    TIMINGS,
    WINDOW_S,
    Cluster,
    _creates,
    _flow_run,
    _holdings,
    _journal,
    _log,
    _logs,
    _per_node,
    _s3_keys,
    _state,
    _wait_for,
    _written,
    start_cluster,
)
from tests.integration._ray_nodes import (
    ROOT,
    arrivals,
    inspect,
    max_in_window,
)
from tests.migrate.conftest import EXPORT_DATE


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: str) -> Iterator[Cluster]:
    yield from start_cluster(tmp_path_factory, s3_server)



# ---- the tests --------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_local_storage_on_two_nodes_is_refused_before_anything_is_written(cluster: Cluster) -> None:
    c = cluster
    local = c.root / "local-runs"
    state = _state(c, "refused")
    t0 = time.perf_counter()
    proc, result, skip = _flow_run(c, "refused", state, str(local))
    TIMINGS["refused_run_s"] = time.perf_counter() - t0
    log = _log(c, "refused")
    assert proc.returncode != 0 and result is None, log[-3000:]
    assert "ConfigError" in log and "2 alive nodes" in log, log[-3000:]
    assert "--storage s3://bucket/prefix" in log, log[-3000:]
    assert not local.exists() and not c.absent.exists()
    assert _creates(state, skip) == 0  # nothing reached HighLevel either
    assert _s3_keys(c, "") == []


@pytest.mark.integration
def test_a_flow_run_on_two_nodes_keeps_everything_in_s3_and_matches_a_single_node_run(
        cluster: Cluster) -> None:
    c = cluster
    state = _state(c, "s3")
    t0 = time.perf_counter()
    proc, result, skip = _flow_run(c, "s3", state, f"s3://{c.bucket}/runs")
    TIMINGS["two_node_s3_run_s"] = time.perf_counter() - t0
    assert proc.returncode == 0 and result is not None, _log(c, "s3")[-4000:]
    after = inspect(c.address, c.governor, list(c.world.loc_ids.values()), logs=c.logs)
    journal = _journal(state, skip, c.world.loc_ids)
    per_node = _per_node(c, result)
    print("\ntwo nodes over S3:", json.dumps({"shards_per_node": per_node, "journal": journal,
                                              "actors": Counter(f'{a["class"]}@{a["node"]}'
                                                                for a in after["actors"])}))
    assert result["status"] == "completed", result["reconciliation"]
    assert result["mismatches"] == 0
    # shards processed on both nodes
    assert sorted(per_node) == ["head", "second"] and all(n > 0 for n in per_node.values()), per_node
    # exactly one governor actor for the run (and alive)
    governors = [a for a in after["actors"] if a["class"] == "_GovernorActor"]
    assert [(a["name"], a["state"]) for a in governors] == [(c.governor, "ALIVE")], governors
    for src, j in journal.items():
        assert j["http_429"] == 0 and j["max_in_window"] <= LIMIT, (src, j)
    # everything in S3, nothing in a local folder
    keys = _s3_keys(c, f"runs/{result['run_id']}/")
    assert any("/staged/" in k for k in keys) and any("/ledger/" in k for k in keys)
    assert any(k.endswith("report/report.json") for k in keys)
    assert not c.absent.exists()
    # the sub-accounts hold what the single-node run wrote
    assert _holdings(state, c.world.loc_ids) == c.baseline["holdings"]
    assert _written(result) == _written(c.baseline["report"])


@pytest.mark.integration
def test_two_flow_runs_on_a_two_node_cluster_share_one_governor(cluster: Cluster, s3_bucket: str) -> None:
    from dos2hl.sandbox import running
    from dos2hl.sandbox.journal import JOURNAL_NAME

    c, w = cluster, cluster.dup
    t_all = time.perf_counter()
    name, address, tmp_path = c.governor, c.address, c.root / "shared-governor"
    logs = tmp_path / "logs"
    logs.mkdir(parents=True)
    procs: list[subprocess.Popen] = []
    timings: dict[str, float] = {}
    try:
        # both nodes alive; the governor's day counts of this practice's locations (none yet: no other run
        # wrote there) and the shard workers so far
        before = inspect(address, name, list(w.loc_ids.values()), logs=c.logs)
        timings["cluster_ready_s"] = time.perf_counter() - t_all
        with running(w.state, burst=(LIMIT, WINDOW_S), request_checks=25) as base:
            journal = w.state / JOURNAL_NAME
            skip = len(journal.read_text().splitlines()) if journal.exists() else 0
            outs = []
            for i in range(RUNS):
                spec = {"ready": str(tmp_path / f"ready-{i}"), "go": str(tmp_path / "go"),
                        "out": str(tmp_path / f"out-{i}.json"),
                        "params": {"source": str(w.export), "mapping": str(w.mapping),
                                   "locations": str(w.locations), "target": base,
                                   "storage": f"s3://{s3_bucket}/runs-{i}", "sample": 0,
                                   "approve": True,
                                   "executor": "ray", "workers": 1, "export_date": str(EXPORT_DATE)}}
                (tmp_path / f"spec-{i}.json").write_text(json.dumps(spec))
                outs.append(Path(spec["out"]))
                with open(logs / f"run-{i}.log", "wb") as log:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-m", "tests.integration._ray_nodes", "child",
                         str(tmp_path / f"spec-{i}.json")],
                        env={**c.env, "DOS2HL_STORAGE": f"s3://{s3_bucket}/runs-{i}"}, cwd=ROOT,
                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            _wait_for(lambda: all((tmp_path / f"ready-{i}").exists() for i in range(RUNS)), procs,
                      logs, 90)
            (tmp_path / "go").touch()
            t_go = time.perf_counter()
            for p in procs:
                p.wait(timeout=150)
            timings["flow_runs_s"] = time.perf_counter() - t_go
            assert all(p.returncode == 0 for p in procs), _logs(logs)
            time.sleep(0.2)  # the last journal lines
            results = [json.loads(o.read_text()) for o in outs]
            after = inspect(address, name, list(w.loc_ids.values()), logs=c.logs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    timings["total_s"] = time.perf_counter() - t_all

    # ---- both flow runs completed, at the same time -------------------------------------------------
    for r in results:
        assert r["status"] == "completed", r["reconciliation"]
        assert r["mismatches"] == 0
    assert results[0]["run_id"] != results[1]["run_id"]
    assert results[0]["written"] == results[1]["written"] and sum(results[0]["written"].values()) > 0
    overlap = min(r["ended"] for r in results) - max(r["started"] for r in results)
    span = max(r["ended"] for r in results) - min(r["started"] for r in results)
    assert overlap > 0.5 * span, (overlap, span)  # they ran concurrently for most of the time

    # ---- the sandbox's journal: the combined rate per location stayed under the limit ---------------
    placed = dict(Counter(f'{a["class"]}@{a["node"]}' for a in after["actors"]))
    drivers = [after["node_ids"].get(r["driver_node"], "?") for r in results]
    report = {}
    for src, lid in w.loc_ids.items():
        arr = arrivals(journal, skip, lid)
        ts = [t for t, _ in arr]
        ops = Counter(j["operation"] for j in map(json.loads, journal.read_text().splitlines()[skip:])
                      if j["location"] == lid)
        report[src] = {"requests": len(arr), "http_429": sum(1 for _, s in arr if s == 429),
                       "max_in_window": max_in_window(ts, WINDOW_S),
                       "seconds": round(ts[-1] - ts[0], 2) if ts else 0.0,
                       "governor_day_used": after["day_used"][lid] - before["day_used"].get(lid, 0),
                       "written_per_run": results[0]["written"].get(src),
                       "operations": dict(ops)}
    print("\nray cluster test:", json.dumps({"timings": {k: round(v, 1) for k, v in timings.items()},
                                             "locations": report, "overlap_s": round(overlap, 1),
                                             "span_s": round(span, 1), "nodes": after["nodes"],
                                             "actors_per_node": placed, "driver_nodes": drivers}, indent=1))
    for src, rep in report.items():
        assert rep["max_in_window"] <= LIMIT, (src, rep)
        assert rep["http_429"] == 0, (src, rep)
        # both runs wrote every patient of the location: each created it, or found it under our keys when
        # the other run had created it first (HighLevel is the truth about what exists, whatever the run
        # id; which run is first is a race), and the journal holds exactly the creates the runs counted
        pats = [r["locations"][src]["objects"]["patient"] for r in results]
        assert all(p["created"] + p["present"] == p["written"] == rep["written_per_run"] for p in pats), pats
        created = sum(p["created"] for p in pats)
        assert rep["operations"].get("contacts:create-contact") == created, (src, pats)
        assert created >= rep["written_per_run"], (src, pats)
        # every request of both runs took a permit of the one governor
        assert rep["governor_day_used"] >= rep["requests"], (src, rep)

    # ---- the cluster: two nodes, one governor actor for both runs -----------------------------------
    assert sorted(before["nodes"]) == sorted(after["nodes"]) == ["head", "second"]
    assert before["addresses"] == after["addresses"] == ["127.0.0.1"]  # the network rule: loopback only
    assert [a for a in after["named"] if a["name"] == name] == [{"name": name, "namespace": "dos2hl"}]
    governors = [a for a in after["actors"] if a["class"] == "_GovernorActor"]
    assert [(a["name"], a["state"]) for a in governors] == [(name, "ALIVE")], governors
    workers = [sum(a["class"] == "ShardWorker" for a in seen["actors"]) for seen in (before, after)]
    assert workers[1] - workers[0] >= RUNS, workers  # each run had its own workers
    # (no process of the cluster outlives it: checked when the module's cluster stops)


@pytest.mark.integration
def test_killing_the_worker_node_mid_run_loses_nothing_and_duplicates_nothing(cluster: Cluster) -> None:
    c = cluster
    state = _state(c, "kill")
    half = max(1, c.baseline["creates"] // 3)
    killed: dict[str, Any] = {}

    def kill_second_node(proc: subprocess.Popen, journal: Path, skip: int) -> None:
        deadline = time.monotonic() + 180
        while _creates(state, skip) < half:  # the journal is the event: a third of the writes landed
            assert proc.poll() is None and time.monotonic() < deadline, _log(c, "kill")[-3000:]
            time.sleep(0.05)
        raylets = [p for p in psutil.Process(c.node_proc.pid).children(recursive=True)
                   if p.name() == "raylet"]
        assert len(raylets) == 1, raylets
        raylets[0].send_signal(signal.SIGKILL)
        killed.update(at_creates=_creates(state, skip), t=time.perf_counter())

    t0 = time.perf_counter()
    proc, result, skip = _flow_run(c, "kill", state, f"s3://{c.bucket}/runs-kill", during=kill_second_node)
    TIMINGS["node_kill_run_s"] = time.perf_counter() - t0
    TIMINGS["after_kill_s"] = time.perf_counter() - killed.get("t", t0)
    assert proc.returncode == 0 and result is not None, _log(c, "kill")[-4000:]
    per_node = _per_node(c, result)
    retried = (result.get("shards_per_node") or {}).get("full", {}).get("retried", {})
    print("\nnode kill:", json.dumps({"killed_at_creates": killed.get("at_creates"),
                                      "of": c.baseline["creates"], "shards_per_node": per_node,
                                      "retried": retried, "journal": _journal(state, skip, c.world.loc_ids)}))
    assert killed, "the run ended before a third of its writes"
    assert result["status"] == "completed", result["reconciliation"]
    assert result["mismatches"] == 0
    assert retried.get("shards", 0) >= 1, retried  # the lost worker's shard ran again on the head
    for src, j in _journal(state, skip, c.world.loc_ids).items():
        assert j["http_429"] == 0 and j["max_in_window"] <= LIMIT, (src, j)
    assert not c.absent.exists()
    held = _holdings(state, c.world.loc_ids)
    for src, h in held.items():  # every source row exactly once, by our keys
        assert set(h["contacts_per_key"]) == {1}, (src, h["contacts_per_key"])
        assert all(set(n) <= {1} for n in h["records_per_key"].values()), (src, h["records_per_key"])
    assert held == c.baseline["holdings"]  # and nothing lost: the same as the single-node run
    assert _written(result) == _written(c.baseline["report"])
