"""The migration, delta and rollback flows under Prefect against the sandbox over HTTP (threads; the Ray
run is test_migrate_flow_ray.py, a file of its own so the test workers can balance the long ones)."""

from __future__ import annotations

from tests.migrate.conftest import EXPORT_DATE, http_world


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
