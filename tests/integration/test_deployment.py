"""The ``migrate`` deployment end to end on real servers (issue 8).

PostgreSQL (initdb into a temp dir, as the ``postgres`` user when run as root) backs a real
``prefect server`` on loopback; a process worker polls the ``dos2hl-process`` pool; the ``migrate``
deployment of the repo's prefect.yaml is deployed with ``prefect deploy --name migrate`` (parameters
overridden for a 20-patient world, threads executor, approve=true, a confirmed map) and run against the
HighLevel sandbox served over HTTP. The run must complete, leave its artifacts, and the sandbox must
hold the migrated contacts. Everything is stopped by PID at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.integration import _servers
from tests.migrate.conftest import EXPORT_DATE, make_world

REPO = Path(__file__).resolve().parents[2]
POOL = "dos2hl-process"


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
def test_migrate_deployment_runs_on_a_real_server_and_worker(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if not (_servers.PG_BIN / "initdb").exists():
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
    logs = tmp_path / "logs"
    logs.mkdir()
    home = Path(tempfile.mkdtemp(prefix="dos2hl-prefect-home-"))
    env = _prefect_env(home)
    timings: dict[str, float] = {"world": time.monotonic() - started}
    try:
        with (_servers.postgres() as db_url,
              _servers.prefect_server(db_url, env, logs) as api,
              running(w.state, burst=(100000, 1.0), request_checks=25) as sandbox):
            timings["server up"] = time.monotonic() - started
            env["PREFECT_API_URL"] = api
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
        shutil.rmtree(home, ignore_errors=True)
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
