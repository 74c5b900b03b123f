"""Issue 17 in a deployment: a run that only waits for a spent daily quota ends ``AwaitingQuota`` and
schedules its own continuation (a new flow run of its deployment, the same run id) for the reset."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

from dos2hl.params import MigrateParams

OUT = {"status": "waiting_for_quota", "run_id": "r-q",
       "paused": {"L001": "waiting for the daily quota reset"}, "resume_at": {"L001": "2026-12-06T00:00:00Z"}}


def _params() -> MigrateParams:
    return MigrateParams(source="export", mapping="mapping.yaml", locations="locations.yaml", sample=0)


def test_in_a_deployment_the_run_schedules_its_continuation_at_the_reset() -> None:
    from flows.migrate import RESUME_SLACK_S, final_state

    calls: list[tuple[Any, dict[str, Any]]] = []

    def schedule(name: Any, **kw: Any) -> Any:
        calls.append((name, kw))
        return SimpleNamespace(id="fr-next")

    dep = uuid.uuid4()
    state = final_state(dict(OUT), _params(), dep, schedule)
    assert state.name == "AwaitingQuota" and state.is_completed()  # type: ignore[union-attr]
    assert "flow run fr-next continues run_id=r-q" in (state.message or "")  # type: ignore[union-attr]
    [(name, kw)] = calls
    assert name == dep
    assert kw["scheduled_time"] == dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc) + dt.timedelta(
        seconds=RESUME_SLACK_S)
    assert kw["timeout"] == 0 and kw["as_subflow"] is False  # returns at once: the run ends, frees its worker
    assert kw["parameters"]["params"]["run_id"] == "r-q"  # the continuation resumes this run's ledger
    assert kw["parameters"]["params"]["source"] == "export"
    assert kw["idempotency_key"] == "r-q-quota-2026-12-06T00:00:00Z"  # a retried ending schedules it once


def test_outside_a_deployment_it_says_when_to_resume_and_schedules_nothing() -> None:
    from flows.migrate import final_state

    def schedule(*_a: Any, **_kw: Any) -> Any:
        raise AssertionError("nothing to schedule outside a deployment")

    state = final_state(dict(OUT), _params(), None, schedule)
    assert state.name == "AwaitingQuota"  # type: ignore[union-attr]
    assert "resume with run_id=r-q after 2026-12-06T00:00:00Z" in (state.message or "")  # type: ignore[union-attr]
    assert final_state({"status": "completed"}) == {"status": "completed"}


def test_run_deployment_creates_the_scheduled_continuation(prefect_harness) -> None:  # type: ignore[no-untyped-def]
    """Against Prefect's API (the test harness's): the continuation is a flow run of the deployment, in
    state Scheduled at the reset, with the run id in its parameters."""
    from prefect import get_client
    from prefect.deployments import run_deployment

    from flows.migrate import final_state, migrate_flow

    dep = migrate_flow.to_deployment(name="quota-test").apply()
    state = final_state(dict(OUT), _params(), dep, run_deployment)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    [run] = [r for r in runs if r.deployment_id == dep]
    assert run.state is not None and run.state.is_scheduled()
    assert run.next_scheduled_start_time is not None
    assert run.next_scheduled_start_time >= dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)
    assert run.parameters["params"]["run_id"] == "r-q"
    assert str(run.id) in (state.message or "")  # type: ignore[union-attr]


def test_a_flow_run_whose_location_spent_its_day_ends_awaiting_quota(prefect_harness, tmp_path,
                                                                     monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The whole flow outside a deployment: L002's day runs out mid-run, L001 completes, nothing fails,
    the run ends ``Completed`` named ``AwaitingQuota`` saying when to resume; its result is the report."""
    import httpx

    from flows.migrate import migrate_flow
    from tests.migrate.conftest import EXPORT_DATE, http_world

    with http_world(tmp_path, monkeypatch) as (w, base):
        httpx.post(f"{base}/_sandbox/quota", json={"location_id": w.loc_ids["L002"], "daily": 40})
        params = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                               target=base, sample=0, executor="threads", workers=2, export_date=EXPORT_DATE)
        state = migrate_flow(params, return_state=True)
    assert state.is_completed() and state.name == "AwaitingQuota", state
    out = state.result()
    assert out["status"] == "waiting_for_quota" and list(out["resume_at"]) == ["L002"]
    assert f"resume with run_id={out['run_id']} after {out['resume_at']['L002']}" in (state.message or "")
    assert sum(r["failed"] for d in out["locations"].values() for r in d["objects"].values()) == 0
