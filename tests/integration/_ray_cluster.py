"""The two-node Ray cluster tests' helpers (tests/integration/test_ray_cluster.py says what they test):
the cluster with its two practices and Prefect API (``start_cluster``), the single-node reference run,
a flow run in its own process, and the sandbox holdings and journal compared."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration._ray_nodes import (
    RAY_ENV,
    ROOT,
    arrivals,
    inspect,
    leftovers,
    max_in_window,
    ray_cluster,
)
from tests.migrate.conftest import EXPORT_DATE, World, make_world

# the margin is the setting for the time between a permit and the request's arrival (see governor.core);
# CI's two busy cores run two flow processes, two Ray nodes, a Prefect server and the sandbox: one CI run
# put a request 60 ms after its permit into the next window (51 in a window, one 429). 120 ms there is
# still 1.2 % of HighLevel's 10 s window
LIMIT, WINDOW_S, MARGIN_S = 50, 1.0, 0.12
# the generator's smallest practice (20 patients, 2 years); its largest record sets left out, so that
# each run sends a few hundred requests per location: several windows at the limit, not minutes
SKIP_TABLES = ("ledger", "claimln", "claim")
RUNS = 2  # the shared governor test's concurrent flow runs
PATIENTS, SHARDS = 20, 4  # a few shards per location: each worker runs several, a kill lands mid-run
# a lost node is declared dead after 5 missed health checks 1 s apart (Ray's default: 3 s apart), so the
# test does not wait for it; a live raylet answers within the default 10 s timeout even on busy cores
FAST_NODE_DEATH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 5}
TIMINGS: dict[str, float] = {}


@dataclass
class Cluster:
    root: Path
    world: World  # the practice, its map and locations; its sandbox state is the provisioned original
    dup: World  # the shared governor test's practice (duplicates allowed; its tokens: DUP_TOKEN below)
    address: str
    governor: str
    bucket: str
    absent: Path  # DOS2HL_STORAGE everywhere: a local folder that must never be created
    logs: Path
    env: dict[str, str]  # a flow run's environment
    node_ids: dict[str, str] = field(default_factory=dict)  # Ray node id -> head | second
    baseline: dict[str, Any] = field(default_factory=dict)  # the single-node run: report and holdings
    node_proc: Any = None  # the second node's ``ray start --block``


def start_cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: str) -> Iterator[Cluster]:
    """The module's cluster (test_ray_cluster.py's ``cluster`` fixture): see its docstring."""
    import boto3
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from dos2hl.phi import create_key_file

    t0 = time.perf_counter()
    root = tmp_path_factory.mktemp("cluster-s3")
    mp = pytest.MonkeyPatch()
    try:
        name = f"gov-s3-{uuid.uuid4().hex[:8]}"
        bucket = f"dos2hl-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
        absent = root / "local-storage-must-stay-absent"
        for k, v in {"DOS2HL_PHI_KEY_FILE": str(create_key_file(root / "k" / "phi.key")),
                     "DOS2HL_GOVERNOR_BURST": str(LIMIT), "DOS2HL_GOVERNOR_WINDOW_S": str(WINDOW_S),
                     "DOS2HL_GOVERNOR_NAME": name, "DOS2HL_GOVERNOR_MARGIN_S": str(MARGIN_S),
                     "DOS2HL_SHARDS": str(SHARDS), "DOS2HL_STORAGE": str(root / "setup-runs"),
                     # S3 reaches the nodes' workers through their environment (S3Settings, boto3's chain)
                     "DOS2HL_S3_ENDPOINT_URL": s3_server}.items():
            mp.setenv(k, v)
        # the shared governor test's practice: two runs write the same patients, so duplicates are allowed;
        # its tokens under their own variables (the nodes' environment, which their workers inherit, holds
        # both practices' tokens: locations.yaml names the variable)
        dup = make_world(root / "dup", mp, patients=PATIENTS, allow_duplicates=True)
        dup.stop()
        _own_token_variables(dup, mp)
        _skip_tables(dup.mapping, SKIP_TABLES)
        w = make_world(root, mp, patients=PATIENTS)  # provisioned (its provision ledger: setup-runs)
        w.stop()
        _skip_tables(w.mapping, SKIP_TABLES)
        mp.setenv("DOS2HL_STORAGE", str(absent))  # from here on: every run names s3:// storage
        TIMINGS["world_s"] = time.perf_counter() - t0
        logs = root / "logs"
        logs.mkdir()
        with ray_cluster(os.environ, logs, system_config=FAST_NODE_DEATH) as nodes:
            t1 = time.perf_counter()
            with prefect_test_harness(server_startup_timeout=120):
                env = {**os.environ, **RAY_ENV, "PREFECT_API_URL": PREFECT_API_URL.value(),
                       "DOS2HL_GOVERNOR_ADDRESS": nodes["address"], "PYTHONPATH": str(ROOT)}
                seen = inspect(nodes["address"], name, logs=logs)  # both nodes alive
                TIMINGS["cluster_and_prefect_s"] = time.perf_counter() - t1
                c = Cluster(root, w, dup, nodes["address"], name, bucket, absent, logs, env,
                            node_ids=seen["node_ids"], node_proc=nodes["node"])
                c.baseline = _single_node_run(c)
                yield c
        stray = leftovers(nodes)  # the cluster stopped: none of its processes outlived it
        assert stray == [], stray
    finally:
        mp.undo()
        print("\nray cluster over S3, timings:", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


DUP_TOKEN = "DOS2HL_TEST_TOKEN_DUP_{}"


def _own_token_variables(w: World, mp: pytest.MonkeyPatch) -> None:
    """``w``'s locations.yaml names its tokens by ``DUP_TOKEN`` variables, set here."""
    import yaml

    doc = yaml.safe_load(w.locations.read_text())
    for loc in doc["locations"]:
        loc["token_env"] = DUP_TOKEN.format(loc["source"])
        mp.setenv(loc["token_env"], w.tokens[loc["location_id"]])
    w.locations.write_text(yaml.safe_dump(doc))


def _state(c: Cluster, tag: str) -> Path:
    """A copy of the provisioned sandbox: every run starts from the same sub-accounts."""
    dest = c.root / f"sandbox-{tag}"
    shutil.copytree(c.world.state, dest)
    return dest


def _single_node_run(c: Cluster) -> dict[str, Any]:
    """The same export migrated in this process (threads, local storage, one machine): the reference."""
    from dos2hl.params import MigrateParams
    from dos2hl.pipeline import migrate
    from dos2hl.sandbox.journal import JOURNAL_NAME

    t0 = time.perf_counter()
    state = _state(c, "single")
    skip = len((state / JOURNAL_NAME).read_text().splitlines()) if (state / JOURNAL_NAME).exists() else 0
    w = World(c.root, c.world.export, state, c.world.tokens, c.world.loc_ids, c.world.mapping,
              c.world.locations, c.world.clock).start()
    try:
        out = migrate(MigrateParams(source=str(c.world.export), mapping=str(c.world.mapping),
                                    locations=str(c.world.locations), storage=str(c.root / "single-runs"),
                                    sample=0, approve=True, workers=2, export_date=EXPORT_DATE),
                      client_factory=w.factory)
    finally:
        w.stop()
    assert out["status"] == "completed", out["reconciliation"]
    TIMINGS["single_node_run_s"] = time.perf_counter() - t0
    return {"report": out, "holdings": _holdings(state, c.world.loc_ids), "creates": _creates(state, skip)}


def _flow_run(c: Cluster, tag: str, state: Path, storage: str, *,
              during: Any = None) -> tuple[subprocess.Popen, dict[str, Any] | None, int]:
    """One migrate flow run in its own process against ``state`` served over HTTP at the scaled limit;
    ``during(proc, journal, skip)`` runs while it does. Returns the process, its result, the journal's
    first line of this run."""
    from dos2hl.sandbox import running
    from dos2hl.sandbox.journal import JOURNAL_NAME

    journal = state / JOURNAL_NAME
    skip = len(journal.read_text().splitlines()) if journal.exists() else 0
    with running(state, burst=(LIMIT, WINDOW_S), request_checks=25) as base:
        go = c.root / f"go-{tag}"
        go.touch()
        spec = {"ready": str(c.root / f"ready-{tag}"), "go": str(go), "out": str(c.root / f"out-{tag}.json"),
                "params": {"source": str(c.world.export), "mapping": str(c.world.mapping),
                           "locations": str(c.world.locations), "target": base, "storage": storage,
                           "sample": 0, "approve": True, "executor": "ray", "workers": 2,
                           "export_date": str(EXPORT_DATE)}}
        path = c.root / f"spec-{tag}.json"
        path.write_text(json.dumps(spec))
        with open(c.logs / f"run-{tag}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integration._ray_nodes", "child", str(path)],
                env=c.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            if during is not None:
                during(proc, journal, skip)
            proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out = Path(spec["out"])
        return proc, json.loads(out.read_text()) if out.exists() else None, skip


def _log(c: Cluster, tag: str) -> str:
    return (c.logs / f"run-{tag}.log").read_text(errors="replace")


def _s3_keys(c: Cluster, prefix: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["DOS2HL_S3_ENDPOINT_URL"], region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=c.bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


# ---- what the sub-accounts hold ---------------------------------------------------------------------------
_VOLATILE = re.compile(r"(?i)^(date(added|updated)|(created|updated|deleted)(at|_at)?|lastActivity|"
                       r"traceId|version)$")


def _holdings(state: Path, loc_ids: dict[str, str]) -> dict[str, Any]:
    """Per export location: contacts by Source_System_ID, custom-object records by source_id, and the other
    kinds by count, each value without HighLevel's ids (any id of the dump reads ``<id>``), timestamps or
    sealed text (PHI sealing is randomised: ``<sealed>``; the runs' read-backs compare the opened values)."""
    from dos2hl.phi import PREFIX
    from dos2hl.sandbox import dump

    everything = dump(state)["locations"]
    out: dict[str, Any] = {}
    for src, lid in loc_ids.items():
        d = everything[lid]
        ids = {str(v) for v in _walk_ids(d)}
        keys = {f["id"]: f["fieldKey"] for f in d["custom_fields"]}

        def norm(v: Any, ids: set[str] = ids) -> Any:
            if isinstance(v, dict):
                return {k: norm(x) for k, x in sorted(v.items()) if k != "id" and not _VOLATILE.match(k)}
            if isinstance(v, list):
                return sorted((norm(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True, default=str))
            if isinstance(v, str) and v in ids:
                return "<id>"
            if isinstance(v, str) and v.startswith(PREFIX):
                return "<sealed>"
            return v

        contacts = {}
        for ct in d["contacts"]:
            custom = {keys[cf["id"]]: cf.get("value") for cf in ct.get("customFields") or []}
            contacts[str(custom["contact.source_system_id"])] = norm({**ct, "customFields": custom})
        records = {obj: {str(r["properties"]["source_id"]): norm(r) for r in recs}
                   for obj, recs in d["objects"].items()}
        out[src] = {"contacts": contacts, "records": records,
                    "counts": {k: len(v) for k, v in d.items() if isinstance(v, list)},
                    "contacts_per_key": Counter(Counter(contacts_key(ct, keys)
                                                        for ct in d["contacts"]).values()),
                    "records_per_key": {obj: Counter(Counter(str(r["properties"]["source_id"])
                                                             for r in recs).values())
                                        for obj, recs in d["objects"].items()}}
    return out


def contacts_key(ct: dict[str, Any], keys: dict[str, str]) -> str:
    return next(str(cf.get("value")) for cf in ct.get("customFields") or []
                if keys[cf["id"]] == "contact.source_system_id")


def _walk_ids(v: Any) -> Iterator[Any]:
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "id" and isinstance(x, str):
                yield x
            else:
                yield from _walk_ids(x)
    elif isinstance(v, list):
        for x in v:
            yield from _walk_ids(x)


def _creates(state: Path, skip: int) -> int:
    from dos2hl.sandbox.journal import JOURNAL_NAME

    lines = (state / JOURNAL_NAME).read_text().splitlines()[skip:]
    return sum(1 for j in map(json.loads, lines) if j["method"] == "POST" and j["status"] < 300
               and "search" not in (j["operation"] or j["path"]))


def _journal(state: Path, skip: int, loc_ids: dict[str, str]) -> dict[str, Any]:
    from dos2hl.sandbox.journal import JOURNAL_NAME

    out = {}
    for src, lid in loc_ids.items():
        arr = arrivals(state / JOURNAL_NAME, skip, lid)
        out[src] = {"requests": len(arr), "http_429": sum(1 for _, s in arr if s == 429),
                    "max_in_window": max_in_window([t for t, _ in arr], WINDOW_S)}
    return out


def _per_node(c: Cluster, result: dict[str, Any]) -> dict[str, int]:
    shards = (result.get("shards_per_node") or {}).get("full", {}).get("shards", {})
    return {c.node_ids.get(node, node): n for node, n in shards.items()}



def _written(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {loc: {obj: r["written"] for obj, r in d["objects"].items()}
            for loc, d in report["locations"].items()}


def _skip_tables(path: Path, tables: tuple[str, ...]) -> None:
    from dos2hl.mapping.model import load_mapping, save_mapping

    fmap = load_mapping(path)
    fmap = fmap.model_copy(update={"fields": [
        e.model_copy(update={"target": "skip", "reasons": ["not in this test"]}) if e.table in tables else e
        for e in fmap.fields]})
    save_mapping(fmap.confirm("Test Runner"), path)


def _wait_for(check, procs: list[subprocess.Popen], logs: Path, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise AssertionError(f"a flow-run process did not get ready\n{_logs(logs)}")
        time.sleep(0.05)


def _logs(logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted(logs.glob("*.log")))
