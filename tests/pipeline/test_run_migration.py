"""The migration pipeline: its steps in their one order through a runner, its gates consulted where a
person decides (issue 15). The same ``run_migration`` serves the CLI, the flow and scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dos2hl.params import MigrateParams
from dos2hl.pipeline import (
    Approval,
    BulkResult,
    CsvImported,
    RunReport,
    bulk_step,
    open_env,
    prepare_step,
    report_step,
    rollback_step,
    run_migration,
    verify_step,
    write_step,
)
from tests.fakes import Snapshots
from tests.migrate.conftest import EXPORT_DATE, make_world


class Recorder:
    """Gates that answer as told and a runner that records each step it runs."""

    def __init__(self, approval: Approval) -> None:
        self.approval = approval
        self.log: list[str] = []

    def map_confirmed(self, mapping: str) -> None:
        self.log.append("gate:map")

    def approve(self, sample: RunReport) -> Approval:
        self.log.append(f"gate:approve({sample.status})")
        return self.approval

    def importer(self) -> Any:
        return None

    def imported(self, bulk: BulkResult) -> CsvImported:
        self.log.append("gate:imported")
        return CsvImported(imported=False)

    def published(self, key: str, report: RunReport) -> None:
        self.log.append(f"published:{key}")

    def run(self, step: Any, *args: Any, **kwargs: Any) -> Any:
        self.log.append(step.__name__)
        return step(*args, **kwargs)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20)
    yield w
    w.stop()


def _params(w: Any, **kw: Any) -> MigrateParams:
    return MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations), sample=3,
                         export_date=EXPORT_DATE, workers=2, **kw)


def test_steps_run_in_the_one_order_with_the_gates_between(world: Any) -> None:
    w = world
    rec = Recorder(Approval(approve=True))
    params = _params(w)
    rep = run_migration(params, open_env(params, client_factory=w.factory), rec, run=rec.run)
    assert rep.status == "completed" and rep.body["field_diff"]["mismatches"] == 0
    assert rec.log == ["gate:map", "prepare_step", "write_step", "verify_step", "report_step",
                       "published:sample-report", "gate:approve(incomplete)", "bulk_step", "write_step",
                       "verify_step", "report_step", "published:migration-report"]
    # every step is the library's: what the flow's runner turns into tasks
    assert {prepare_step, write_step, verify_step, bulk_step, report_step,
            rollback_step} <= set(_task_steps())


def _task_steps() -> list[Any]:
    from tasks.migrate import TASKS

    return list(TASKS)


def test_a_rejected_sample_is_rolled_back_when_the_gate_says_so(world: Any) -> None:
    w = world
    rec = Recorder(Approval(approve=False, rollback_sample=True, reason="wrong map"))
    params = _params(w)
    rep = run_migration(params, open_env(params, client_factory=w.factory), rec, run=rec.run)
    assert rep.status == "incomplete" and "rolled back" in (rep.next or "")
    assert rec.log[-1] == "rollback_step"  # nothing after the gate but the rollback
    assert all(not w.dump(loc)["contacts"] for loc in w.loc_ids)  # the sample's contacts are gone


def test_a_rejected_sample_without_rollback_stops_and_says_how_to_go_on(world: Any) -> None:
    w = world
    rec = Recorder(Approval(approve=False))
    params = _params(w)
    rep = run_migration(params, open_env(params, client_factory=w.factory), rec, run=rec.run)
    assert rep.status == "incomplete" and rep.run_id in (rep.next or "") and "rollback" in (rep.next or "")
    assert "bulk_step" not in rec.log
    assert sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) >= 3  # the sample stays until decided


def test_the_imported_gate_confirms_the_waiting_checklists_and_not_the_next_rounds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real HighLevel (no sandbox importer): the bulk step leaves round 1 waiting; the gate (a flow's
    pause, here an operator who imports them) confirms those checklists; round 2 (opportunities, written
    only once round 1 is reconciled) waits for a gate of its own instead of passing on the first answer."""
    from dos2hl.bulk import run as bulk
    from dos2hl.bulk.importer import import_package
    from dos2hl.phi import create_key_file
    from dos2hl.storage import open_store

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    monkeypatch.setattr(bulk, "is_sandbox", lambda client: False)
    w = make_world(tmp_path, monkeypatch, patients=20, crm=True)
    try:
        answered: list[list[str]] = []

        class Operator(Recorder):
            def imported(self, b: BulkResult) -> CsvImported:
                answered.append(list(b.waiting))
                run = open_store(tmp_path / "runs" / rep_id[0])
                for key in b.waiting:  # does what each waiting checklist says, in "the UI"
                    folder = key.rsplit("/", 1)[0]
                    for pkg_json in sorted(run.list(folder + "/")):
                        if pkg_json.endswith("/package.json"):
                            pkg = bulk.read_package(run, pkg_json.rsplit("/", 1)[0])
                            if bulk._state(run, pkg_json.rsplit("/", 1)[0]).get("status") == "written":
                                c = w.factory(pkg.location)
                                import_package(run, pkg, c)
                return CsvImported(imported=True)

        rep_id: list[str] = []
        params = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                               sample=0,
                               export_date=EXPORT_DATE, workers=2, bulk_threshold=15)
        env = open_env(params, client_factory=w.factory)
        rec = Operator(Approval(approve=True))
        real_prepare = prepare_step

        def run(step: Any, *args: Any, **kw: Any) -> Any:
            out = rec.run(step, *args, **kw)
            if step is real_prepare:
                rep_id.append(out.run_id)
            return out

        rep = run_migration(params, env, rec, run=run)
        assert rep.status == "completed", rep.body["reconciliation"]
        assert len(answered) >= 2  # one answer per round: the opportunities' checklist waited for its own
        assert not set(answered[0]) & set(answered[1])
        assert rec.log.count("bulk_step") == len(answered) + 1
        for loc in w.loc_ids:  # both rounds reconciled by the CSV path (the report adds up every bulk step)
            imported = rep.body["bulk_imported"][loc]
            assert imported["patient"] > 0 and imported["appointment"] > 15, imported
            contacts = len(w.dump(loc)["contacts"])
            assert contacts == rep.body["locations"][loc]["objects"]["patient"]["written"]  # none twice
    finally:
        w.stop()


def test_delta_and_rollback_steps_return_typed_results(world: Any) -> None:
    """The delta and rollback steps hand back models (the CLI and the flows read attributes, and the
    ``--json``/return shapes are the models' dumps); a second rollback undoes nothing; a rollback's
    deletions are progress (``_rollback_progress``)."""
    from dos2hl.params import DeltaParams, RollbackParams
    from dos2hl.pipeline import DeltaReport, RollbackResult, delta_step, migrate
    from tests.migrate.test_delta import _new_export

    w = world
    first = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                  sample=0, export_date=EXPORT_DATE, workers=2), client_factory=w.factory)
    new, _moved, _gone = _new_export(w)
    dp = DeltaParams(source=str(new), since_run="latest", mapping=str(w.mapping), locations=str(w.locations),
                     export_date=EXPORT_DATE, workers=2)
    out = delta_step(open_env(dp, client_factory=w.factory), dp)
    assert isinstance(out, DeltaReport) and out.status == "completed"
    assert out.delta.since == first["run_id"] and out.delta.updated == {"patient": 1}
    assert out.to_dict()["delta"] == out.delta.model_dump() and out.to_dict()["run_id"] == out.run_id
    rp = RollbackParams(run_id=out.run_id, locations=str(w.locations))
    undone = rollback_step(open_env(rp, client_factory=w.factory), rp)
    assert isinstance(undone, RollbackResult) and undone.complete and undone.status == "rolled back"
    assert undone.restored == {"patient": 1} and undone.deleted == {"patient": 1}
    again = rollback_step(open_env(rp, client_factory=w.factory), rp)
    assert again.complete and again.deleted == {} and again.restored == {}
    _rollback_progress(w, first["run_id"])  # the first run's rollback, shown as it goes


def _rollback_progress(w: Any, run_id: str) -> None:
    """Issue 17: rollback is a long phase too. Its deletions reach the progress sinks as they happen
    (``deleted`` of the ledger's records per location and object), the last snapshot says completed, the
    one-line form and the flow's table say "deleted", and the run's progress.json gives way to its report
    at the end; a rollback with nothing to undo shows nothing."""
    from dos2hl.execution.progress import read_progress
    from dos2hl.params import RollbackParams
    from dos2hl.progress import location_line
    from flows.progress import counts_table

    rp = RollbackParams(run_id=run_id, locations=str(w.locations))
    env = open_env(rp, client_factory=w.factory)
    sink = Snapshots()
    env.progress = [sink]
    undone = rollback_step(env, rp)
    assert undone.complete
    updates = [s for kind, s in sink.seen if kind == "update"]
    total = sum(undone.deleted.values())
    assert total > 0 and len(updates) >= total  # one update per deletion (and one per location's end)
    first, last = updates[0], sink.seen[-1]
    assert first["phase"] == "rollback" and first["verb"] == "deleted"
    assert sum(d["totals"]["written"] for d in first["locations"].values()) == 1  # as they happen
    assert first["percent"] == round(100.0 / total, 1)  # of the records (a location is one unit)
    assert last[0] == "close" and last[1]["state"] == "completed"
    by_object: dict[str, int] = {}
    for d in last[1]["locations"].values():
        assert d["totals"]["pending"] == 0 and d["state"] == "done"
        for obj, n in d["objects"].items():
            by_object[obj] = by_object.get(obj, 0) + n["written"]
    assert by_object == undone.deleted
    loc = next(iter(last[1]["locations"]))
    assert " deleted, 0 failed" in location_line(last[1], loc)
    assert {r["object"]: r["deleted"] for r in counts_table(last[1]) if r["location"] == loc}
    assert read_progress(env.run_uri(rp.run_id))["state"] == "reported"  # type: ignore[index]
    quiet = Snapshots()
    env.progress = [quiet]
    assert rollback_step(env, rp).deleted == {} and quiet.seen == []
