"""The provisioning gate tells the truth (issue 13.5): the schema never depends on a flag, migrate
refuses before any write when a field the map sends is missing or mistyped, and provision repairs the
type conflicts it caused itself (its ledger) while leaving the admin's fields alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dos2hl.cli import app
from dos2hl.errors import ConfigError
from dos2hl.highlevel.models import ContactCreate, CustomFieldInput, LocationCustomFieldCreate
from dos2hl.locations import load_locations
from dos2hl.mapping.model import Mapping, load_mapping, require_confirmed, save_mapping
from dos2hl.pipeline import MigrateParams, migrate
from dos2hl.provision import (
    ProvisionError,
    ProvisionLedger,
    apply_plan,
    desired_schema,
    plan_location,
    provision,
)
from tests.migrate.conftest import EXPORT_DATE, World, make_world

from .conftest import Sandbox

WRITES = ("/contacts/", "/records", "/opportunities/")


def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    return make_world(tmp_path, monkeypatch, patients=20, provisioned=False)


def _flagless_provision(w: World, ledger: str | None) -> None:
    """What `provision --apply` without --source did before: lookup pick-lists as TEXT, no USERFLD
    fields; recorded in the ledger when one is given."""
    from dos2hl.demo import do_manual_steps

    fmap = load_mapping(w.mapping)
    desired = desired_schema(fmap)  # no export
    plans = {}
    for loc in w.loc_ids:
        client = w.factory(loc)
        led = ProvisionLedger.open(ledger, w.loc_ids[loc]) if ledger else None
        plans[loc] = apply_plan(client, plan_location(client, desired, location=loc), led)
    do_manual_steps(w.state, plans, w.loc_ids)
    w.sent.clear()


def _opts(w: World, **kw: object) -> MigrateParams:
    return MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations), sample=0,
                          export_date=EXPORT_DATE, **kw)  # type: ignore[arg-type]


def _record_writes(w: World) -> list[tuple[str, str, int]]:
    return [s for s in w.sent if s[0] in ("POST", "PUT") and any(p in s[1] for p in WRITES)]


def test_migrate_refuses_before_any_write_when_fields_are_missing_or_mistyped(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    w = _world(tmp_path, monkeypatch)
    try:
        _flagless_provision(w, None)
        with pytest.raises(ConfigError) as err:
            migrate(_opts(w), client_factory=w.factory)
        msg = str(err.value)
        assert "contact.bill_type (TEXT, the map needs SINGLE_OPTIONS)" in msg  # mistyped, named
        assert "contact.preferred_language (missing)" in msg  # a USERFLD field, never created
        assert "--source EXPORT --apply" in msg
        assert _record_writes(w) == []  # nothing written: no contact, record or opportunity
        assert all(not w.dump(loc)["contacts"] for loc in w.loc_ids)
    finally:
        w.stop()


def test_a_field_not_created_by_dos2hl_stops_provision_and_migrate(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    w = _world(tmp_path, monkeypatch)
    try:
        admin = w.factory("L001")  # the practice's admin made "Bill Type" as text, by hand
        admin.create_custom_field(LocationCustomFieldCreate(name="Bill Type", dataType="TEXT",
                                                            model="contact"))
        fmap = require_confirmed(w.mapping)
        lf = load_locations(w.locations)
        clients = {loc: w.factory(loc) for loc in w.loc_ids}
        plans = provision(fmap, lf, source=w.export, clients=clients, ledger=str(tmp_path / "runs"))
        [conflict] = plans["L001"].conflicts()
        assert conflict.key == "contact.bill_type" and "did not create it" in conflict.detail
        assert plans["L001"].repairs() == []
        w.sent.clear()
        with pytest.raises(ProvisionError, match=r"contact\.bill_type"):
            provision(fmap, lf, source=w.export, apply=True, clients=clients, ledger=str(tmp_path / "runs"))
        assert [s for s in w.sent if s[0] != "GET"] == []
        with pytest.raises(ConfigError, match=r"contact\.bill_type \(TEXT, the map needs SINGLE_OPTIONS\)"):
            migrate(_opts(w), client_factory=w.factory)
        assert _record_writes(w) == []
    finally:
        w.stop()


def test_a_field_of_ours_holding_values_is_not_deleted(sandbox: Sandbox, mapping: Mapping, export: Path,
                                                       tmp_path: Path) -> None:
    client, rec = sandbox.client()
    ledger = ProvisionLedger.open(str(tmp_path / "runs"), client.location_id)
    apply_plan(client, plan_location(client, desired_schema(mapping), location="L001"), ledger)
    fields = {f.fieldKey: f for f in client.list_custom_fields("contact")}
    assert {fields["contact.bill_type"].id, fields["contact.rel_to_guar"].id} <= ledger.owned()
    client.create_contact(ContactCreate(firstName="A", customFields=[
        CustomFieldInput(key="contact.bill_type", field_value="x")]))
    rec.clear()
    plan = plan_location(client, desired_schema(mapping, export), location="L001", owned=ledger.owned())
    bill = next(c for c in plan.changes if c.key == "contact.bill_type")
    assert bill.action == "conflict" and "1 contact(s) hold a value" in bill.detail
    assert "contact.rel_to_guar" in {c.key for c in plan.repairs()}  # empty: repairable
    # a count per contact field in question, once per object / for opportunities (no value is read)
    probes = {c.key for c in plan.repairs() + plan.conflicts() if c.kind == "contact_field"}
    probes |= {c.key.rsplit(".", 1)[0] for c in plan.repairs() if c.kind == "object_field"}
    probes |= {"opportunity" for c in plan.repairs() if c.kind == "opportunity_field"}
    assert len([p for _, p in rec.sent if p.endswith("/search")]) == len(probes) >= 4
    assert all(p.endswith("/search") for _, p in rec.writes())
    with pytest.raises(ProvisionError, match=r"contact\.bill_type"):
        apply_plan(client, plan, ledger)
    assert all(m == "POST" and p.endswith("/search") for m, p in rec.writes())  # nothing deleted


def test_provision_without_source_uses_the_export_the_map_records(
    sandbox: Sandbox, mapping: Mapping, export: Path
) -> None:
    from dos2hl.locations import LocationsFile, LocationTarget

    a, rec = sandbox.client(0)
    lf = LocationsFile(locations=[LocationTarget(source="L001", location_id=a.location_id, token_env="T1")])
    with pytest.raises(ProvisionError, match=r"contact\.bill_type.*--source EXPORT"):
        provision(mapping, lf, clients={"L001": a})  # the map records no export: refuse, say what to pass
    assert rec.sent == []
    recorded = mapping.model_copy(
        update={"export": mapping.export.model_copy(update={"source": str(export)})}
    )
    without = provision(recorded, lf, clients={"L001": a})["L001"]
    with_flag = provision(mapping, lf, source=export, clients={"L001": a})["L001"]
    assert without.changes == with_flag.changes  # the same schema, flag or not
    gone = recorded.model_copy(update={"export": recorded.export.model_copy(update={"source": "/nowhere"})})
    with pytest.raises(ProvisionError, match="the export the map records is not there"):
        provision(gone, lf, clients={"L001": a})


def test_map_propose_records_the_export_outside_the_confirmation_hash(tmp_path: Path, export: Path) -> None:
    res = CliRunner().invoke(app, ["map", "propose", str(export), "--out", str(tmp_path / "m.yaml")])
    assert res.exit_code == 0, res.output
    m = load_mapping(tmp_path / "m.yaml")
    assert m.export.source == str(export.resolve())
    save_mapping(m.confirm("Dr. Rivera"), tmp_path / "m.yaml")
    moved = load_mapping(tmp_path / "m.yaml")
    moved = moved.model_copy(update={"export": moved.export.model_copy(update={"source": "/elsewhere"})})
    save_mapping(moved, tmp_path / "m.yaml")
    assert require_confirmed(tmp_path / "m.yaml").export.source == "/elsewhere"  # still confirmed


def test_cli_repairs_our_text_fields_then_migrate_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.sandbox import running

    monkeypatch.setenv("DOS2HL_GOVERNOR_BURST", "100000")
    monkeypatch.setenv("DOS2HL_GOVERNOR_WINDOW_S", "1")
    w = _world(tmp_path, monkeypatch)
    _flagless_provision(w, str(tmp_path / "runs"))  # provision without --source, recorded in the ledger
    w.stop()
    run = CliRunner().invoke
    common = ["--mapping", str(w.mapping), "--locations", str(w.locations)]
    date = ["--export-date", EXPORT_DATE.isoformat()]
    # as make_world's in-process app: each operation's first 25 requests validated against the contract
    # and one in 25 after (over HTTP the default validates every request; the contract has its own tests)
    with running(w.state, burst=(100000, 1.0), request_checks=25) as base:
        lf = yaml.safe_load(w.locations.read_text())
        lf["target"] = base
        w.locations.write_text(yaml.safe_dump(lf))
        res = run(app, ["provision", *common, "--plan"])  # the map records no export: refuse, exit 2
        assert res.exit_code == 2 and "--source EXPORT" in res.output, res.output
        res = run(app, ["migrate", str(w.export), *common, "--sample", "0", *date])
        assert res.exit_code == 2 and "contact.bill_type (TEXT, the map needs SINGLE_OPTIONS)" in res.output
        assert sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) == 0
        res = run(app, ["provision", *common, "--source", str(w.export), "--plan"])
        assert res.exit_code == 0, res.output
        assert "-/+ repair: contact_field contact.bill_type SINGLE_OPTIONS" in res.output
        assert "to repair" in res.output
        res = run(app, ["provision", *common, "--source", str(w.export), "--apply"])
        assert res.exit_code == 0, res.output
        res = run(app, ["provision", *common, "--source", str(w.export), "--plan", "--json"])
        plans = json.loads(res.stdout)
        assert all(p["summary"]["create"] == 0 and p["summary"]["repair"] == 0
                   and p["summary"]["conflict"] == 0
                   for p in plans.values())
        res = run(app, ["migrate", str(w.export), *common, "--sample", "0", "--json", *date])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["status"] == "completed"
        assert sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) > 0
