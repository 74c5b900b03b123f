"""Our flows on one real ``prefect server`` (loopback, started once for the module: it takes 20-40 s here).

The ``migrate`` deployment end to end (issue 8): PostgreSQL (initdb into a temp dir, as the ``postgres``
user when run as root) backs the server; a process worker polls the ``dos2hl-process`` pool; the
``migrate`` deployment of the repo's prefect.yaml is deployed with ``prefect deploy --name migrate``
(parameters overridden for a 20-patient world, threads executor, approve=true, a confirmed map) and run
against the HighLevel sandbox served over HTTP. The run must complete, leave its artifacts, and the
sandbox must hold the migrated contacts.

dos2hl's alert automations (issue 17) on the same server, with its trigger and action services:
``dos2hl alerts apply`` twice (the second updates, nothing is duplicated), then flow runs of our flows
fail, pause (as the approval gate and as a systemic pause end them) and sit in Running without progress
(another, whose steps keep finishing, alerts only once they stop); a webhook receiver on 127.0.0.1 gets
one notification each, naming the flow run by id only. A failing flow that is not ours notifies nobody.
The test removes its automations at the end (the deployment's run, before or after it, alerts nobody).

Everything is stopped by PID at the end, also on failure. Without PostgreSQL the server runs on SQLite
and the deployment test is skipped.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.integration import _alerts, _servers
from tests.integration._alerts import NAME_LIKE
from tests.migrate.conftest import EXPORT_DATE, make_world

REPO = Path(__file__).resolve().parents[2]
POOL = "dos2hl-process"


@dataclass(frozen=True)
class Server:
    api: str
    home: Path  # PREFECT_HOME of the server, the worker and ``prefect deploy``
    logs: Path
    postgres: bool


def _server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO",
                # what neither test needs (the deployment's run is created due now; the alerts need events
                # in, triggers and actions): off, they cost CPU on 2 cores
                "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false"})
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``prefect server`` for the module's tests: on PostgreSQL when it is installed, else SQLite."""
    home = Path(tempfile.mkdtemp(prefix="dos2hl-prefect-home-"))
    logs = tmp_path_factory.mktemp("prefect-logs")
    pg = (_servers.PG_BIN / "initdb").exists()
    try:
        with contextlib.ExitStack() as stack:
            db_url = (stack.enter_context(_servers.postgres()) if pg
                      else f"sqlite+aiosqlite:///{home / 'prefect.db'}")
            api = stack.enter_context(_servers.prefect_server(db_url, _server_env(home), logs))
            yield Server(api, home, logs, pg)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def receiver(server: Server) -> Iterator[_alerts.Receiver]:
    """A webhook receiver on 127.0.0.1, this process's Prefect client on the server; dos2hl's automations
    are removed afterwards."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with (temporary_settings(updates={PREFECT_API_URL: server.api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
          _alerts.receiving() as r):
        try:
            yield r
        finally:
            _alerts.remove_automations()


def _prefect_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",  # the server's and worker's output goes to files under logs/
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_CLI_COLORS": "false",
        "DOS2HL_PROJECT_DIR": str(REPO),  # prefect.yaml's pull step: the flow runs from the repo root
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    })
    return env


@pytest.mark.integration
def test_migrate_deployment_runs_on_a_real_server_and_worker(server, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if not server.postgres:
        pytest.skip(f"PostgreSQL is not installed: {_servers.PG_BIN / 'initdb'} is missing")
    from dos2hl.phi import create_key_file
    from dos2hl.sandbox import running
    from flows.migrate import MigrateParams

    started = time.monotonic()
    # the world: a generated 20-patient practice, a provisioned two-location sandbox, a confirmed map;
    # make_world sets the token variables in os.environ (monkeypatch), so the worker inherits them
    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "k" / "phi.key")))
    monkeypatch.setenv("DOS2HL_GOVERNOR_BURST", "100000")  # the sandbox below allows as much
    monkeypatch.setenv("DOS2HL_GOVERNOR_WINDOW_S", "1")
    w = make_world(tmp_path, monkeypatch, patients=20)
    w.stop()  # the same state, now served over HTTP for the flow-run process
    logs, api = server.logs, server.api
    env = _prefect_env(server.home)
    env["PREFECT_API_URL"] = api
    timings: dict[str, float] = {"world": time.monotonic() - started}
    try:
        with running(w.state, burst=(100000, 1.0), request_checks=25) as sandbox:
            lf = yaml.safe_load(w.locations.read_text())
            lf["target"] = sandbox
            w.locations.write_text(yaml.safe_dump(lf))
            params = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                   target=sandbox, storage=str(tmp_path / "runs"), sample=3, approve=True,
                                   executor="threads", workers=2, export_date=EXPORT_DATE)
            with _servers.worker(POOL, env, logs) as worker_proc:
                _wait_for_pool(api, worker_proc, logs)  # the worker creates the pool with its job template
                deploy = subprocess.run(
                    [_servers.prefect_bin(), "--no-prompt", "deploy", "--name", "migrate",
                     "--prefect-file", str(REPO / "prefect.yaml"),
                     "--params", json.dumps({"params": params.model_dump(mode="json")})],
                    cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
                assert deploy.returncode == 0, deploy.stdout + deploy.stderr
                timings["deployed"] = time.monotonic() - started
                run, artifacts = _run_and_collect(api)
                timings["run completed"] = time.monotonic() - started
                assert run.state is not None and run.state.is_completed(), (
                    f"{run.state}\n{_servers.tail(logs / 'prefect-worker.log', 80)}")
            assert {"sample-report", "migration-report", "migration-counts"} <= set(artifacts), artifacts
            assert artifacts["migration-counts"].type == "table"
            assert artifacts["migration-report"].type == "markdown" and artifacts["migration-report"].data
            table = artifacts["migration-counts"].data
            rows = json.loads(table) if isinstance(table, str) else table
            written = sum(r["written"] for r in rows if r["object"] == "patient")
            contacts = {loc: len(w.dump(loc)["contacts"]) for loc in w.loc_ids}
            assert written == sum(contacts.values()) > 0, (rows, contacts)
            assert all(n > 0 for n in contacts.values()), contacts  # both locations got their patients
    finally:
        print(f"\ndeployment test timings (s since start): {timings}")


def _wait_for_pool(api: str, worker_proc: subprocess.Popen, logs: Path) -> None:
    import httpx

    def pool_exists() -> bool:
        return httpx.get(f"{api}/work_pools/{POOL}", timeout=2).status_code == 200

    _servers.wait_until(pool_exists, "the worker's work pool", 60, worker_proc, logs / "prefect-worker.log")


def _run_and_collect(api: str):  # type: ignore[no-untyped-def]
    """Trigger a run of migrate/migrate, wait until it is final, return it with its artifacts by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        run = run_deployment("migrate/migrate", timeout=240, poll_interval=1)
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    return run, {a.key: a for a in found if a.key}


@pytest.mark.integration
def test_alerts_apply_idempotently_and_notify_the_webhook(receiver: _alerts.Receiver) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore
    from prefect.states import Paused, Running

    from dos2hl.cli.main import app
    from flows.migrate import final_state

    started = time.monotonic()
    no_block = CliRunner().invoke(app, ["alerts", "apply"])  # no URL and no block yet: say how, exit 2
    assert no_block.exit_code == 2 and "--webhook-url" in no_block.output, no_block.output
    first = _alerts.apply(receiver.url)
    with get_client(sync_client=True) as api:  # a hand-made copy of one: the next apply keeps one of them
        (failed_alert,) = api.read_automations_by_name("dos2hl: run failed")
        api.create_automation(AutomationCore(**failed_alert.model_dump(exclude={"id"})))
    second = _alerts.apply(receiver.url)
    assert [a["action"] for a in first] == ["created"] * 3
    assert [a["action"] for a in second] == ["updated"] * 3
    assert [a["removed_duplicates"] for a in second] == [0, 1, 0]
    assert [a["id"] for a in first if "failed" not in a["name"]] == [
        a["id"] for a in second if "failed" not in a["name"]]
    listed = CliRunner().invoke(app, ["alerts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(a["name"], a["enabled"]) for a in json.loads(listed.output)] == [
        ("dos2hl: run failed", True), ("dos2hl: run paused", True), ("dos2hl: run without progress", True)]
    applied = time.monotonic() - started

    @flow(name="migrate", flow_run_name=f"migrate /exports/{NAME_LIKE}", persist_result=False)
    def failing() -> None:
        raise RuntimeError("boom")

    @flow(name="migrate", flow_run_name=f"migrate /exports/{NAME_LIKE}", persist_result=False)
    def systemic_pause() -> Any:
        return final_state({"status": "paused", "paused": {"loc-1": "token revoked"}, "run_id": "r1"})

    @flow(name="not-ours")
    def other() -> None:
        raise RuntimeError("boom")

    failed = failing(return_state=True)
    paused = systemic_pause(return_state=True)
    other(return_state=True)
    assert failed.is_failed() and paused.name == "Paused" and paused.is_completed()
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(failing)
        gate = client.create_flow_run(failing, name=f"migrate /exports/{NAME_LIKE}")  # the approval gate:
        client.set_flow_run_state(gate.id, Paused(), force=True)  # pause_flow_run's state, set directly
        stuck = client.create_flow_run(failing, name=f"migrate /exports/{NAME_LIKE}")
        alive = client.create_flow_run(failing, name=f"migrate /exports/{NAME_LIKE}")
        client.set_flow_run_state(stuck.id, Running(), force=True)  # and then nothing for 12 s
        client.set_flow_run_state(alive.id, Running(), force=True)  # and then progress every 3 s
    stop = threading.Event()
    # the thread runs in this context: Prefect's settings (PREFECT_API_URL here) live in a context variable
    beats = threading.Thread(target=contextvars.copy_context().run,
                             args=(_alerts.progress_every, 3.0, alive.id, flow_id, stop), daemon=True)
    beats.start()
    ids = {"failed": str(failed.state_details.flow_run_id), "systemic": str(paused.state_details.flow_run_id),
           "gate": str(gate.id), "stuck": str(stuck.id)}
    try:
        got = receiver.wait_for(set(ids.values()), timeout=150)  # generous: a loaded 2-core machine
        time.sleep(6)  # a periodic evaluation or more past the stuck run's alert: the alive run has none
        early = [b for b in receiver.bodies if str(alive.id) in b["body"]]
    finally:
        stop.set()
        beats.join(timeout=10)
    # once its steps stop finishing, the alive run alerts too: each progress event opened a new window
    late = receiver.wait_for({str(alive.id)}, timeout=90)
    waited = time.monotonic() - started - applied
    print(f"\nalerts: applied in {applied:.1f} s, notified after {waited:.1f} s more")
    assert set(got) == set(ids.values()), (ids, receiver.bodies)
    assert "run failed" in got[ids["failed"]]["body"] and "failed" in got[ids["failed"]]["subject"]
    assert "run paused" in got[ids["systemic"]]["body"] and "run paused" in got[ids["gate"]]["body"]
    assert "without progress" in got[ids["stuck"]]["body"]
    assert not early, early  # it made progress
    assert "event: dos2hl.progress" in late[str(alive.id)]["body"], late  # its last progress: the window
    for body in receiver.bodies:
        assert body["source"] == "dos2hl" and "flow: migrate" in body["body"]  # not-ours never notified
        assert NAME_LIKE not in json.dumps(body)
    assert len(receiver.bodies) == 5, receiver.bodies  # one each: the failed run made progress, it ended
