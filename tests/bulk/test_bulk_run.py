"""The bulk path end to end against the sandbox: objects above the threshold go by CSV packages, the
sandbox's importer takes them, reconciliation rebuilds the ID map, the API sends only what CSV cannot
do, counts reconcile, and the planner's request count matches what the run sent (within 3 %)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.migrate.conftest import EXPORT_DATE, make_world


@pytest.fixture()
def world(request, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Every seed object (``@pytest.mark.parametrize("world", ["core"], indirect=True)``: patients and
    the custom objects only, for tests of the gate's mechanics)."""
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20, crm=getattr(request, "param", "all") == "all")
    yield w
    w.stop()


def _opts(w: Any, **kw: Any) -> Any:
    from dos2hl.params import MigrateParams

    return MigrateParams(**{"source": str(w.export), "mapping": str(w.mapping), "locations": str(w.locations),
                             "sample": 0, "executor": "threads", "workers": 2, "export_date": EXPORT_DATE,
                             "bulk_threshold": 15, **kw})


def test_bulk_path_imports_reconciles_and_matches_the_planner(world: Any) -> None:
    from dos2hl.pipeline import migrate
    from dos2hl.quota import plan_quota

    w = world
    planned = plan_quota(w.export, w.mapping, bulk_threshold=15, sample=0, export_date=EXPORT_DATE)
    journal = w.state / "journal.jsonl"
    seen = len(journal.read_text().splitlines())
    for loc in w.loc_ids:
        assert "contact" in planned["locations"][loc]["bulk_kinds"]
        assert "record:ledger_entry" in planned["locations"][loc]["bulk_kinds"]
    w.sent.clear()
    rep = migrate(_opts(w), client_factory=w.factory)
    assert rep["status"] == "completed", (rep["reconciliation"], rep.get("pending"))
    # records imported by CSV have no owner (the import row has no owner column): the diff shows each one
    # as a missing owner (known gap, docs/architecture.md issue 13); every other field must match
    bad = {(o, f): c for o, fs in rep["field_diff"]["fields"].items() for f, c in fs.items()
           if c["mismatch"] + c["missing"] and not (f == "owner" and o != "patient")}
    assert bad == {}, bad
    for loc in w.loc_ids:
        imported = rep["bulk_imported"][loc]
        assert imported["patient"] == rep["locations"][loc]["objects"]["patient"]["written"]
        assert imported["ledger_entry"] == rep["locations"][loc]["objects"]["ledger_entry"]["written"] > 15
        assert imported.get("appointment", 0) > 15
        state = w.dump(loc)
        # no duplicates
        assert len(state["contacts"]) == rep["locations"][loc]["objects"]["patient"]["written"]
        assert len(state["relations"]) == sum(len(v)
                                              for v in state["objects"].values())  # every record related
    # the API created nothing the CSV packages carried (contacts, ledger entries, opportunities): it sent
    # relations, events, notes, files, the smaller objects, and the reads
    creates = [p for m, p, _s in w.sent if m == "POST" and p in ("/contacts/", "/opportunities/",
                                                                 "/objects/custom_objects.patient_ledger/records")]
    assert creates == []
    sent = len(journal.read_text().splitlines()) - seen  # every request of the run, as the sandbox saw it
    assert rep["requests"]["sent"] == sent
    want = sum(v["with_bulk_path"]["requests"] for v in planned["locations"].values())
    assert abs(sent - want) <= 0.03 * want, (sent, want, rep["requests"]["by_class"])
    checklists = [p for p in (w.root / "runs" / rep["run_id"] / "bulk").rglob("checklist-*.md")]
    assert checklists and all("30 MB" in p.read_text() or "Import" in p.read_text() for p in checklists)
    # user-defined fields ride in the contacts' CSV rows: every PATUDF value of a migrated patient is there
    import csv

    from dos2hl.mapping.objectmap import user_field

    with (w.export / "USERFLD.CSV").open(encoding="utf-8-sig", newline="") as fh:
        keys = {r["FIELD_ID"]: user_field({k.lower(): v for k, v in r.items()}).key
                for r in csv.DictReader(fh)}
    have, migrated = set(), set()
    for loc in w.loc_ids:
        state = w.dump(loc)
        by_id = {f["id"]: f["fieldKey"] for f in state["custom_fields"]}
        for c in state["contacts"]:
            cf = {by_id[x["id"]]: x["value"] for x in c.get("customFields") or []}
            migrated.add(cf["contact.source_system_id"])
            have |= {(cf["contact.source_system_id"], k) for k in cf if k in keys.values()}
    with (w.export / "PATUDF.CSV").open(encoding="utf-8-sig", newline="") as fh:
        want = {(r["PAT_ID"], keys[r["FIELD_ID"]]) for r in csv.DictReader(fh)
                if r["PAT_ID"] in migrated and r["VALUE"].strip().upper() not in ("N", "0")}
    assert want and want == have


@pytest.mark.parametrize("world", ["core"], indirect=True)
def test_without_the_sandbox_the_run_waits_for_the_operator_then_resumes(world: Any, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.bulk import run as bulk
    from dos2hl.pipeline import migrate

    w = world
    monkeypatch.setattr(bulk, "is_sandbox", lambda client: False)  # a real HighLevel: a person imports
    first = migrate(_opts(w), client_factory=w.factory)
    assert first["status"] == "incomplete" and first["bulk_waiting"] and "--imported" in first["next"]
    assert all(not w.dump(loc)["contacts"] for loc in w.loc_ids)  # nothing written before the import
    run = w.root / "runs" / first["run_id"]
    packages = sorted(run.glob("bulk/*/*/package.json"))
    assert packages

    def operator(pkgs: list[Any], checklist: str) -> bool:  # does what the checklist says, in "the UI"
        from dos2hl.bulk.importer import import_package
        from dos2hl.storage import open_store

        for p in pkgs:
            c = w.factory(p.location)
            import_package(open_store(run), p, c)
        return True

    done = migrate(_opts(w, run_id=first["run_id"]), client_factory=w.factory, imported=operator)
    assert done["status"] == "completed", done["reconciliation"]
    for loc in w.loc_ids:
        assert len(w.dump(loc)["contacts"]) == done["locations"][loc]["objects"]["patient"]["written"]
    states = [json.loads((p.parent / "state.json").read_text())["status"] for p in packages]
    assert set(states) == {"reconciled"}


@pytest.mark.parametrize("world", ["core"], indirect=True)
def test_a_row_the_importer_refuses_is_a_dead_letter_then_written_through_the_api(world: Any,
                                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.bulk import packages
    from dos2hl.pipeline import migrate
    from dos2hl.storage import open_store
    from dos2hl.writing.ledger import read_ledger

    w = world
    real = packages.record_row

    def broken(properties: dict, **kw: Any) -> dict:  # one ledger entry with a value the importer refuses
        row = real(properties, **kw)
        if str(properties.get("source_id")).endswith("7") and "amount" in row:
            row["amount"] = "not a number"
        return row

    monkeypatch.setattr("dos2hl.bulk.run.record_row", broken)
    rep = migrate(_opts(w), client_factory=w.factory)
    assert rep["status"] == "completed", rep["reconciliation"]
    led = read_ledger(open_store(w.root / "runs" / rep["run_id"])).to_pylist()
    refused = [r for r in led if r["op"] == "import" and r["outcome"] == "failed"]
    assert refused and all(r["error"].startswith("CsvImportError") for r in refused)
    later = {r["stable_key"] for r in led if r["op"] == "create" and r["outcome"] == "created"}
    assert {r["stable_key"] for r in refused} <= later


def test_lookup_field_policy_sends_no_relation_and_the_planner_knows(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Ledger entries under ``relations: {custom_objects.patient_ledger: lookup_field}``: the records carry
    the contact's id and patient id (CSV column and API alike), no relation call is made for them, and
    the planner counts exactly that."""
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import migrate
    from dos2hl.quota import plan_quota

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20,
                   relations={"custom_objects.patient_ledger": "lookup_field"})
    try:
        planned = plan_quota(w.export, w.mapping, bulk_threshold=15, sample=0, export_date=EXPORT_DATE)
        assert not any(r["object"] == "relation:ledger_entry" for v in planned["locations"].values()
                       for r in v["rows"])
        journal = w.state / "journal.jsonl"
        seen = len(journal.read_text().splitlines())
        rep = migrate(_opts(w), client_factory=w.factory)
        assert rep["status"] == "completed", rep["reconciliation"]
        bad = {(o, f): c for o, fs in rep["field_diff"]["fields"].items() for f, c in fs.items()
               if c["mismatch"] + c["missing"] and not (f == "owner" and o != "patient")}
        assert bad == {}, bad  # CSV-imported records have no owner (see the test above)
        for loc in w.loc_ids:
            state = w.dump(loc)
            ledger = state["objects"]["custom_objects.patient_ledger"]
            contacts = {c["id"] for c in state["contacts"]}
            assert ledger and all(r["properties"]["contact_id"] in contacts for r in ledger)
            related = {r["firstRecordId"] for r in state["relations"]} | {r["secondRecordId"]
                                                                          for r in state["relations"]}
            assert not related & {r["id"] for r in ledger}
        sent = len(journal.read_text().splitlines()) - seen
        assert rep["requests"]["sent"] == sent
        want = sum(v["with_bulk_path"]["requests"] for v in planned["locations"].values())
        assert abs(sent - want) <= 0.03 * want, (sent, want, rep["requests"]["by_class"])
    finally:
        w.stop()


@pytest.mark.parametrize("world", ["core"], indirect=True)
def test_a_second_bulk_run_with_a_new_run_id_packages_nothing_that_exists(world: Any) -> None:
    """Issue 13.1: the CSV packages never carry a row HighLevel already holds under our keys."""
    from dos2hl.pipeline import migrate

    w = world
    first = migrate(_opts(w, run_id="bulk-a"), client_factory=w.factory)
    assert first["status"] == "completed" and first["bulk_imported"]
    assert list((w.root / "runs" / "bulk-a" / "bulk").rglob("*.csv"))  # the first run did package
    counts = {loc: len(w.dump(loc)["contacts"]) for loc in w.loc_ids}
    w.sent.clear()
    again = migrate(_opts(w, run_id="bulk-b"), client_factory=w.factory)
    assert again["status"] == "completed", again["reconciliation"]
    assert not again["bulk_imported"]
    assert not list((w.root / "runs" / "bulk-b" / "bulk").rglob("*.csv"))  # no package written
    assert {loc: len(w.dump(loc)["contacts"]) for loc in w.loc_ids} == counts
    assert [s for s in w.sent if s[0] == "POST" and not s[1].endswith("/search")] == []


@pytest.mark.parametrize("where", ["discovery", "reconciliation"])
def test_a_location_refused_in_the_bulk_phase_pauses_there_and_resumes(world: Any, monkeypatch: Any,
                                                                       where: str) -> None:
    """Issue 17 on the CSV path: a token revoked before the bulk phase's reads (discovery), or after the
    sandbox imported its packages (reconciliation), pauses that location: nothing failed, the full run
    leaves it alone, the other location completes; restored, the run resumes with every record once."""
    from dos2hl.bulk import run as bulk_run
    from dos2hl.pipeline import migrate
    from tests.migrate.test_pause import _sandbox, held_once

    w = world
    lid = w.loc_ids["L001"]
    originals = {"discover": bulk_run.discover, "_reconcile": bulk_run._reconcile}
    if where == "discovery":  # revoked after prepare (its tenancy check would refuse the run outright)
        real_discover = bulk_run.discover

        def revoke_then_discover(*a: Any, **kw: Any) -> Any:
            _sandbox(w, "POST", json={"location_id": lid, "after": 0, "kind": "token"})
            return real_discover(*a, **kw)

        monkeypatch.setattr(bulk_run, "discover", revoke_then_discover)
    else:
        real = bulk_run._reconcile
        revoked: list[str] = []

        def revoke_then_read(*a: Any, **kw: Any) -> Any:
            client = a[2]
            if client.location_id == lid and not revoked:  # L001's packages are imported by now
                revoked.append(lid)
                _sandbox(w, "POST", json={"location_id": lid, "after": 0, "kind": "token"})
            return real(*a, **kw)

        monkeypatch.setattr(bulk_run, "_reconcile", revoke_then_read)
    rep = migrate(_opts(w, run_id="r-bulk-pause"), client_factory=w.factory)
    assert rep["status"] == "paused" and list(rep["paused"]) == ["L001"], rep["reconciliation"]
    assert rep["paused"]["L001"].startswith("HighLevel answered 401 (token) on ")
    assert sum(r["failed"] + r["held"] for d in rep["locations"].values() for r in d["objects"].values()) == 0
    l2 = rep["locations"]["L002"]["objects"]
    assert all(r["written"] + r["excluded"] == r["staged"] for r in l2.values())  # the other one completed
    l1 = rep["locations"]["L001"]["objects"]
    assert sum(r["written"] for r in l1.values()) == 0  # neither reconciled nor written by the API
    for name, fn in originals.items():  # the token is good again from here on
        monkeypatch.setattr(bulk_run, name, fn)
    _sandbox(w, "DELETE")
    again = migrate(_opts(w, run_id="r-bulk-pause"), client_factory=w.factory)
    assert again["status"] == "completed", again["reconciliation"]
    assert again["bulk_imported"]["L001"]["patient"] == again["locations"]["L001"]["objects"]["patient"][
        "written"]
    contacts, _records = held_once(w)
    assert contacts == sum(d["objects"]["patient"]["written"] for d in again["locations"].values())
