"""The migration, delta and rollback flows under Prefect against the sandbox over HTTP (threads; the Ray
run is test_migrate_flow_ray.py, a file of its own so the test workers can balance the long ones)."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.migrate.conftest import EXPORT_DATE, http_world
from tests.migrate.test_status_cli import _patient_values


def _counting(init, seen: list):  # type: ignore[no-untyped-def]
    def counted(self, *a, **kw):  # type: ignore[no-untyped-def]
        seen.append(self)
        return init(self, *a, **kw)
    return counted


def test_the_tasks_of_a_threads_run_share_one_governor_and_take_the_bulk_path(prefect_harness, tmp_path,
                                                                              monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.governor import local
    from flows.migrate import MigrateParams, migrate_flow

    opened: list = []
    monkeypatch.setattr(local.LocalGovernor, "__init__", _counting(local.LocalGovernor.__init__, opened))
    with http_world(tmp_path, monkeypatch) as (w, base):
        opened.clear()  # the world's own set-up
        params = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                               target=base, sample=3, approve=True, executor="threads", workers=2,
                               export_date=EXPORT_DATE, bulk_threshold=15)
        done = migrate_flow(params)
    assert done["status"] == "completed", done["reconciliation"]
    assert len(opened) == 1  # prepare, sample, verify, bulk, full and verify again: one governor, opened once
    # above the threshold the flow took the CSV path (the sandbox imports packages itself)
    assert all(imp.get("ledger_entry", 0) > 15
               for imp in done["bulk_imported"].values()), done["bulk_imported"]


def test_delta_and_rollback_flows(prefect_harness, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The nightly delta deployment's flow follows the latest completed run; the rollback flow undoes it."""
    from dos2hl.pipeline import MigrateParams, migrate
    from flows.delta import DeltaParams, delta_flow
    from flows.rollback import RollbackParams, rollback_flow
    from tests.migrate.test_delta import _new_export

    with http_world(tmp_path, monkeypatch) as (w, _base):
        first = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping),
                                      locations=str(w.locations),
                                       sample=0, export_date=EXPORT_DATE, workers=2))
        assert first["status"] == "completed"
        new, _moved, _gone = _new_export(w)
        out = delta_flow(DeltaParams(source=str(new), since_run="latest", mapping=str(w.mapping),
                                     locations=str(w.locations), export_date=EXPORT_DATE))
        assert out["status"] == "completed" and out["delta"]["since"] == first["run_id"]
        assert out["delta"]["updated"] == {"patient": 1}
        undone = rollback_flow(RollbackParams(run_id=out["run_id"], locations=str(w.locations)))
        assert undone["restored"] == {"patient": 1} and undone["deleted"] == {"patient": 1}


def test_a_paused_location_ends_the_flow_run_in_a_paused_named_state(prefect_harness, tmp_path,
                                                                     monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 17: a token revoked mid-run: the flow run's final state is Completed, named Paused, with the
    reason in its message; its result is the report (status paused, nothing failed)."""
    import httpx

    from flows.migrate import MigrateParams, migrate_flow

    with http_world(tmp_path, monkeypatch) as (w, base):
        lid = w.loc_ids["L002"]
        httpx.post(f"{base}/_sandbox/outages", json={"location_id": lid, "after": 2, "kind": "token"})
        params = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                               target=base, sample=0, executor="threads", workers=2, export_date=EXPORT_DATE)
        state = migrate_flow(params, return_state=True)
    assert state.is_completed() and state.name == "Paused"
    assert "L002: HighLevel answered 401 (token)" in (state.message or "")
    out = state.result()
    assert out["status"] == "paused" and list(out["paused"]) == ["L002"]
    assert sum(r["failed"] for d in out["locations"].values() for r in d["objects"].values()) == 0
    _progress_artifacts(state.state_details.flow_run_id, out, _patient_values(w.export))


def _progress_artifacts(flow_run: Any, out: dict[str, Any], canaries: set[str]) -> None:
    """Issue 17: the run's progress artifact (every shard ended: 100 %), its counts table (one version per
    update as shards ended, the last one equal to the report's counts), the read-back's progress artifact
    and counts, the report's Markdown (not its path), its log's progress lines: ids and counts only."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run])))
        # the run's log lines reach the API through Prefect's background log worker: read until the
        # progress line is there (bounded: 30 s)
        deadline = time.monotonic() + 30
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run])))
            if any(x.message.startswith(f"progress {out['run_id']} full L001 (") for x in logs) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.5)
    by_key: dict[str, list[Any]] = {}
    for a in sorted(found, key=lambda a: a.created):
        by_key.setdefault(a.key or "", []).append(a)
    (progress,) = by_key["migration-progress"]  # one per run, updated in place
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert progress.description.startswith(f"run {out['run_id']} full: ") and "paused" in progress.description
    tables = by_key["migration-progress-counts"]
    assert len(tables) >= 2 and all(t.type == "table" for t in tables)  # first shard, ..., the phase's end
    rows = json.loads(tables[-1].data)
    by = {(r["location"], r["object"]): r for r in rows}
    for loc, d in out["locations"].items():
        for obj, row in d["objects"].items():
            if row.get("source"):
                assert by[(loc, obj)]["written"] == row["written"], (loc, obj)
    assert {r["state"] for r in rows if r["location"] == "L002"} == {"paused"}
    # the read-back's own progress artifact and counts (L001's records; L002, paused, is not read back)
    (verifying,) = by_key["verification-progress"]
    assert verifying.type == "progress" and float(verifying.data) == 100.0
    assert verifying.description.startswith(f"run {out['run_id']} verifying: ")
    assert verifying.description.endswith(", paused")
    checked = json.loads(by_key["verification-progress-counts"][-1].data)
    assert {r["location"] for r in checked} == {"L001"} and checked
    assert sum(r["verified"] for r in checked if r["object"] == "patient") == \
        out["field_diff"]["read_back"]["patient"] > 0
    assert all(r["not_found"] == 0 and r["pending"] == 0 for r in checked)
    report = by_key["migration-report"][-1]
    assert report.data.startswith("#") and "Report: " not in report.data  # the Markdown itself
    texts = [str(a.data) + str(a.description) for a in found] + [x.message for x in logs]
    assert not [v for v in canaries for t in texts if v in t]
    assert [x.message for x in logs if x.message.startswith(f"progress {out['run_id']} full L001 (")]
