"""Delta pickup (issue 8): a new export after a migration -> a changed patient updates the same contact
(before-image kept), a new patient is created, a row deleted in the source is reported (its contact
tagged), nothing is duplicated; a second delta writes nothing; rolling the delta back restores the
contact as it was."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.migrate.conftest import EXPORT_DATE, World, make_world


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20)
    yield w
    w.stop()


def _edit(path: Path, fn: Any) -> None:
    text = path.read_text(encoding="latin-1")
    rows = list(csv.reader(io.StringIO(text)))
    rows = fn(rows)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="latin-1")


def _new_export(w: World) -> tuple[Path, str, str]:
    """A copy of the export taken later: the first patient moved town, a new patient, one ledger row
    deleted."""
    new = w.root / "export2"
    shutil.copytree(w.export, new)
    moved: dict[str, str] = {}

    def patients(rows: list[list[str]]) -> list[list[str]]:
        h = rows[0]
        city, pid = h.index("CITY"), h.index("PAT_ID")
        first = rows[1]
        moved["id"] = first[pid]
        first[city] = "Deltaville"
        extra = list(first)
        extra[pid], extra[h.index("CHART_NO")] = "9001", "Z9001"
        extra[h.index("GUAR_ID")], extra[h.index("LNAME")] = "9001", "Testdelta"
        extra[h.index("EMAIL")], extra[h.index("CPHONE")] = "testdelta9001@example.com", "(555) 555-0100"
        extra[h.index("HPHONE")], extra[city] = "", "Newtown"
        return [*rows, extra]

    _edit(new / "PATIENT.CSV", patients)
    gone: dict[str, str] = {}

    def ledger(rows: list[list[str]]) -> list[list[str]]:
        gone["id"] = rows[-1][0]
        return rows[:-1]

    _edit(new / "LEDGER.CSV", ledger)
    return new, moved["id"], gone["id"]


def _delta(w: World, source: Path, since: str, **kw: Any) -> dict[str, Any]:
    from dos2hl.execution.delta import run_delta
    from dos2hl.params import DeltaParams

    return run_delta(DeltaParams(source=str(source), since_run=since, mapping=str(w.mapping),
                                  locations=str(w.locations), export_date=EXPORT_DATE, workers=2, **kw),
                     client_factory=w.factory)


def test_delta_updates_creates_reports_and_a_second_delta_writes_nothing(world: World) -> None:
    from dos2hl.pipeline import MigrateParams, migrate
    from dos2hl.storage import open_store
    from dos2hl.writing.ledger import read_ledger
    from dos2hl.writing.removal import DELETED_TAG
    from dos2hl.writing.rollback import rollback

    w = world
    first = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                   sample=0, export_date=EXPORT_DATE, workers=2), client_factory=w.factory)
    assert first["status"] == "completed"
    before = {loc: {c["id"]: c for c in w.dump(loc)["contacts"]} for loc in w.loc_ids}
    new, moved, gone_trans = _new_export(w)
    w.sent.clear()
    d1 = _delta(w, new, first["run_id"])
    assert d1["status"] == "completed", (d1["reconciliation"], d1["delta"])
    changes = {k: sum(c[k].get("patient", 0) for c in d1["delta"]["changes"].values())
               for k in ("new", "changed")}
    assert changes == {"new": 1, "changed": 1}
    assert sum(c["gone"].get("ledger_entry", 0) for c in d1["delta"]["changes"].values()) == 1
    assert d1["delta"]["updated"].get("patient") == 1
    after = {loc: {c["id"]: c for c in w.dump(loc)["contacts"]} for loc in w.loc_ids}
    assert sum(len(v) for v in after.values()) == sum(len(v) for v in before.values()) + 1  # no duplicate
    moved_now = [c for v in after.values() for c in v.values() if c.get("city") == "Deltaville"]
    assert len(moved_now) == 1 and any(moved_now[0]["id"] in v for v in before.values())  # the same contact
    writes = [(m, p) for m, p, _s in w.sent if m in ("POST", "PUT", "DELETE")]
    assert ("PUT", f"/contacts/{moved_now[0]['id']}") in writes
    led = read_ledger(open_store(w.root / "runs" / d1["run_id"])).to_pylist()
    upd = [r for r in led if r["op"] == "update" and r["outcome"] == "updated"]
    kept = [r for r in led if r["op"] == "update" and r["outcome"] == "before-image"]
    assert upd and {r["stable_key"] for r in kept} == {r["stable_key"] for r in upd}  # before-images kept
    assert all(r["before"].startswith("enc:v2:") for r in kept)  # sealed
    assert "Deltaville" not in "".join(r["before"] for r in kept)
    # the ledger row deleted in the source is reported, the record itself kept (policy: tag)
    assert any(r["op"] == "report" and r["outcome"] == "deleted-in-source" for r in led)

    w.sent.clear()
    d2 = _delta(w, new, d1["run_id"])  # the same export again: nothing to do
    assert d2["status"] == "completed"
    assert all(not c["new"] and not c["changed"] for c in d2["delta"]["changes"].values()), d2["delta"]
    # reads only (the inventory's search pages): no write
    assert [(m,
             p) for m, p, _s in w.sent if m in ("POST", "PUT", "DELETE") and not p.endswith("/search")] == []

    undone = rollback(str(w.root / "runs" / d1["run_id"]), d1["run_id"], w.factory)
    assert undone["status"] == "rolled back", undone
    assert undone["restored"].get("patient") == 1 and undone["deleted"].get("patient") == 1
    restored = {loc: {c["id"]: c for c in w.dump(loc)["contacts"]} for loc in w.loc_ids}
    assert {k: set(v) for k, v in restored.items()} == {k: set(v) for k, v in before.items()}
    assert not any(c.get("city") == "Deltaville" for v in restored.values() for c in v.values())
    assert not any(DELETED_TAG in (c.get("tags") or []) for v in restored.values() for c in v.values())
    again = rollback(str(w.root / "runs" / d1["run_id"]), d1["run_id"], w.factory)
    assert again["deleted"] == {} and again["restored"] == {}


def test_rollback_leaves_a_location_with_earlier_contacts_as_it_was(world: World) -> None:
    """The practice already had contacts in HighLevel: after a migration and its rollback every location
    holds exactly what it held before (the same contacts, fields and tags)."""
    from dos2hl.highlevel.models import ContactCreate
    from dos2hl.pipeline import MigrateParams, migrate
    from dos2hl.writing.rollback import rollback

    w = world
    for loc in w.loc_ids:
        c = w.factory(loc)
        for i in range(3):
            c.create_contact(ContactCreate(firstName=f"Existing{i}", lastName="Testlead", tags=["lead"],
                                           email=f"existing{i}.{loc.lower()}@example.com"))
    before = {loc: w.dump(loc) for loc in w.loc_ids}
    out = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 sample=0, export_date=EXPORT_DATE, workers=2), client_factory=w.factory)
    assert out["status"] == "completed"
    done = rollback(str(w.root / "runs" / out["run_id"]), out["run_id"], w.factory)
    assert done["status"] == "rolled back"
    for loc in w.loc_ids:
        now = w.dump(loc)
        for kind in ("contacts", "opportunities", "notes", "files", "relations", "appointments"):
            assert now[kind] == before[loc][kind], (loc, kind)
        assert {k: v for k, v in now["objects"].items() if v} == {
            k: v for k, v in before[loc]["objects"].items() if v
        }


def test_a_new_appointment_in_the_delta_gets_its_opportunity_and_silent_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20, crm=True)
    try:
        first = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping),
                                      locations=str(w.locations),
                                       sample=0, export_date=EXPORT_DATE, workers=2),
                                       client_factory=w.factory)
        assert first["status"] == "completed"
        opps = sum(len(w.dump(loc)["opportunities"]) for loc in w.loc_ids)
        events = sum(len(w.dump(loc)["appointments"]) for loc in w.loc_ids)
        new = w.root / "export2"
        shutil.copytree(w.export, new)

        def appt(rows: list[list[str]]) -> list[list[str]]:
            h = rows[0]
            extra = list(rows[1])
            extra[h.index("APPT_ID")] = "990001"
            extra[h.index("APPT_DATE")] = "07/15/2024"  # booked after the export the migration took
            extra[h.index("STATUS")] = "SCH"
            return [*rows, extra]

        _edit(new / "APPT.CSV", appt)
        w.sent.clear()
        d = _delta(w, new, first["run_id"])
        assert d["status"] == "completed", (d["reconciliation"], d["delta"])
        assert sum(c["new"].get("appointment", 0) for c in d["delta"]["changes"].values()) == 1
        assert sum(len(w.dump(loc)["opportunities"]) for loc in w.loc_ids) == opps + 1
        after = [e for loc in w.loc_ids for e in w.dump(loc)["appointments"]]
        assert len(after) == events + 1 and all(e["toNotify"] is False for e in after)
        creates = [p for m, p, _s in w.sent if m == "POST"]
        assert creates.count("/opportunities/") == 1 and creates.count("/calendars/events/appointments") == 1
    finally:
        w.stop()
