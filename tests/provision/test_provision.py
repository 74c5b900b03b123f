"""Provisioning against the in-process sandbox: plan, apply, idempotence, conflicts, the object cap,
options from the export."""

from __future__ import annotations

from pathlib import Path

import pytest

from dos2hl.highlevel.models import (
    LocationCustomFieldCreate,
    ObjectLabels,
    ObjectSchemaCreate,
    PrimaryDisplayProperty,
)
from dos2hl.locations import LocationsFile, LocationTarget
from dos2hl.mapping.model import Mapping
from dos2hl.mapping.objectmap import CUSTOM_OBJECTS, VALUE_LABELS
from dos2hl.provision import ProvisionError, apply_plan, desired_schema, plan_location, provision
from dos2hl.sources.reader import ExportReader

from .conftest import Sandbox

OBJECT_KEYS = set(CUSTOM_OBJECTS)


def _locations(a, b) -> LocationsFile:  # type: ignore[no-untyped-def]
    return LocationsFile(locations=[LocationTarget(source="L001", location_id=a.location_id, token_env="T1"),
                                    LocationTarget(source="L002", location_id=b.location_id, token_env="T2")])


def _keys(plan, kind: str, action: str = "create") -> set[str]:  # type: ignore[no-untyped-def]
    return {c.key for c in plan.changes if c.kind == kind and c.action == action}


def test_plan_on_an_empty_location_lists_everything_and_writes_nothing(sandbox: Sandbox,
                                                                       mapping: Mapping) -> None:
    client, rec = sandbox.client()
    plan = plan_location(client, desired_schema(mapping), location="L001")
    assert rec.writes() == []
    assert _keys(plan, "custom_object") == OBJECT_KEYS
    assert _keys(plan, "association") == {k.split(".", 1)[1] + "_contact" for k in OBJECT_KEYS}
    fields = {c.key: c for c in plan.changes if c.kind == "object_field"}
    assert fields["custom_objects.treatment_plans.status"].data_type == "SINGLE_OPTIONS"
    assert set(fields["custom_objects.treatment_plans.status"].options) >= \
        set(VALUE_LABELS[("txplan", "status")].values()) | set(VALUE_LABELS[("txitem", "status")].values())
    assert fields["custom_objects.clinical_notes.note_type"].data_type == "LARGE_TEXT"  # encrypted: text
    contact = {c.key: c for c in plan.changes if c.kind == "contact_field"}
    assert contact["contact.source_system_id"].data_type == "TEXT"
    assert contact["contact.gender"].options == ("Male", "Female", "Unknown", "Other")
    bill = contact["contact.bill_type"]
    assert bill.data_type == "TEXT" and "--source" in bill.detail
    opp = {c.key: c for c in plan.changes if c.kind == "opportunity_field"}
    assert opp["opportunity.cdt_codes"].data_type == "MULTIPLE_OPTIONS"
    assert "D0120" in opp["opportunity.cdt_codes"].options  # bundled cdt_codes.csv without --source
    assert "referral: marketing" in _keys(plan, "tag")
    manual = {c.key: c.detail for c in plan.manual()}
    assert "Cancelled" in manual["Appointments"] and "Missed" in manual["Recall"]  # seeded stages differ
    assert "HIPAA" in manual["hipaa"]
    assert plan.conflicts() == []
    text = plan.render()
    assert "+ custom_object custom_objects.insurance_records (Insurance Record" in text
    assert "~ manual: add stage(s)" in text
    assert text.splitlines()[-1] == (f"Plan: {len(plan.to_create())} to create, 0 already exist, "
                                     f"0 conflicts, {len(plan.manual())} manual steps.")
    assert plan.to_dict()["summary"]["create"] == len(plan.to_create())


def test_apply_creates_everything_and_a_second_apply_sends_no_create(sandbox: Sandbox,
                                                                     mapping: Mapping) -> None:
    client, rec = sandbox.client()
    desired = desired_schema(mapping)
    after = apply_plan(client, plan_location(client, desired, location="L001"))
    assert after.to_create() == [] and after.conflicts() == []
    # read back through the client
    assert {s.key for s in client.list_object_schemas() if s.key.startswith("custom_objects.")} == OBJECT_KEYS
    of = client.list_object_fields("custom_objects.treatment_plans")
    status = next(f for f in of.fields if f.fieldKey == "custom_objects.treatment_plans.status")
    assert status.dataType == "SINGLE_OPTIONS"
    assert "Proposed" in [o["label"] for o in status.model_extra["options"]]
    primary = next(f for f in of.fields if f.fieldKey == "custom_objects.treatment_plans.procedure")
    assert primary.dataType == "TEXT"
    claim_fields = client.list_object_fields("custom_objects.insurance_claims").fields
    claims = {f.fieldKey: f.dataType for f in claim_fields}
    assert claims["custom_objects.insurance_claims.claim_id"] == "NUMERICAL"  # the primary, typed by the map
    cf = {f.fieldKey: f for f in client.list_custom_fields("all")}
    src = cf["contact.source_system_id"]
    assert src.dataType == "TEXT" and src.model == "contact"
    assert cf["contact.gender"].picklistOptions == ["Male", "Female", "Unknown", "Other"]
    assert cf["contact.txt_ok"].dataType == "CHECKBOX"  # key from the name, not the label "Text OK"
    assert cf["opportunity.cdt_codes"].dataType == "MULTIPLE_OPTIONS"
    assoc = {a.key: a for a in client.list_associations()}
    assert assoc["clinical_notes_contact"].firstObjectKey == "contact"
    assert assoc["clinical_notes_contact"].secondObjectKey == "custom_objects.clinical_notes"
    assert {"referral: doctor", "referral: marketing"} <= {t.name for t in client.list_location_tags()}
    # idempotent: a new plan has nothing to create, and apply sends no write at all
    rec.clear()
    again = plan_location(client, desired, location="L001")
    assert again.to_create() == [] and len(again.exists()) == len(after.exists())
    apply_plan(client, again)
    assert rec.writes() == []
    assert [c.key for c in again.manual()] == ["Appointments", "Recall", "hipaa"]


def test_a_field_with_another_type_is_a_conflict_and_nothing_is_created(sandbox: Sandbox, mapping: Mapping,
                                                                        export: Path) -> None:
    client, rec = sandbox.client()
    client.create_custom_field(LocationCustomFieldCreate(name="Gender", dataType="TEXT", model="contact"))
    rec.clear()
    plan = plan_location(client, desired_schema(mapping), location="L001")
    [conflict] = plan.conflicts()
    assert conflict.key == "contact.gender"
    assert "TEXT" in conflict.detail and "SINGLE_OPTIONS" in conflict.detail
    assert "! conflict: contact_field contact.gender" in plan.render()
    with pytest.raises(ProvisionError, match=r"location L001.*contact\.gender"):
        apply_plan(client, plan)
    assert rec.writes() == []
    # through provision(): every location is planned first; the conflict in L001 stops L002 too
    other, rec2 = sandbox.client(1)
    lf = _locations(client, other)
    with pytest.raises(ProvisionError, match="contact.gender"):
        provision(mapping, lf, source=export, apply=True, clients={"L001": client, "L002": other})
    assert rec.writes() == [] and rec2.writes() == []


def test_the_ten_object_cap_is_checked_before_any_create(sandbox: Sandbox, mapping: Mapping) -> None:
    client, rec = sandbox.client()
    for i in range(8):
        client.create_object_schema(ObjectSchemaCreate(
            key=f"custom_objects.other_{i}", labels=ObjectLabels(singular=f"Other {i}", plural=f"Others {i}"),
            primaryDisplayPropertyDetails=PrimaryDisplayProperty(key=f"custom_objects.other_{i}.name",
                                                                 name="Name", dataType="TEXT")))
    rec.clear()
    plan = plan_location(client, desired_schema(mapping), location="L001")
    assert plan.existing_objects == 8
    assert any("13 > HighLevel's cap of 10" in c.detail for c in plan.conflicts())
    with pytest.raises(ProvisionError, match="location L001.*cap of 10"):
        apply_plan(client, plan)
    assert rec.writes() == []


def test_existing_object_with_other_labels_is_fine(sandbox: Sandbox, mapping: Mapping) -> None:
    client, _ = sandbox.client()
    client.create_object_schema(ObjectSchemaCreate(
        key="custom_objects.clinical_notes", labels=ObjectLabels(singular="Chart Note", plural="Chart Notes"),
        primaryDisplayPropertyDetails=PrimaryDisplayProperty(key="custom_objects.clinical_notes.title",
                                                             name="Title", dataType="TEXT")))
    plan = plan_location(client, desired_schema(mapping), location="L001")
    obj = next(c for c in plan.changes if c.key == "custom_objects.clinical_notes")
    assert obj.action == "exists" and "differ" in obj.detail
    assert plan.conflicts() == []
    after = apply_plan(client, plan)
    assert after.to_create() == []


def _rows(mapping: Mapping, export: Path, table: str) -> list[dict]:  # type: ignore[type-arg]
    from dos2hl.api import open_export

    reader = ExportReader(open_export(export, profile=mapping.to_profile(), documents=False))
    return [r for chunk in reader.iter_table(table) for r in chunk.data.to_pylist()]


def test_with_source_options_come_from_the_export(sandbox: Sandbox, mapping: Mapping, export: Path) -> None:
    desired = desired_schema(mapping, export)
    lookup = _rows(mapping, export, "lookup")
    billtype = [r["description"] for r in sorted((r for r in lookup if r["category"] == "BILLTYPE"),
                                                 key=lambda r: r["sort"])]
    assert desired.contact_fields["contact.bill_type"].data_type == "SINGLE_OPTIONS"
    assert list(desired.contact_fields["contact.bill_type"].options) == billtype
    codes = {r["proc_code"] for r in _rows(mapping, export, "proccode")}
    assert set(desired.opportunity_fields["opportunity.cdt_codes"].options) == codes
    recall = {r["description"] for r in _rows(mapping, export, "recalltyp")}
    assert set(desired.opportunity_fields["opportunity.recall_type"].options) == recall
    lang = desired.contact_fields["contact.preferred_language"]  # USERFLD type L
    assert lang.data_type == "SINGLE_OPTIONS" and "Spanish" in lang.options
    assert "referral: google" in desired.tags
    assert desired.notes == []

    client, rec = sandbox.client()
    after = apply_plan(client, plan_location(client, desired, location="L001"))
    assert after.to_create() == []
    cf = {f.fieldKey: f for f in client.list_custom_fields("all")}
    assert cf["contact.bill_type"].picklistOptions == billtype
    assert set(cf["opportunity.cdt_codes"].picklistOptions) == codes
    assert cf["contact.preferred_language"].dataType == "SINGLE_OPTIONS"
    # planning later without --source accepts the pick-lists made with it (no conflict, nothing to create)
    rec.clear()
    without = plan_location(client, desired_schema(mapping), location="L001")
    assert without.conflicts() == [] and without.to_create() == []


def test_provision_plans_every_location(sandbox: Sandbox, mapping: Mapping, export: Path) -> None:
    a, _ = sandbox.client(0)
    b, _ = sandbox.client(1)
    lf = _locations(a, b)
    plans = provision(mapping, lf, source=export, clients={"L001": a, "L002": b})
    assert set(plans) == {"L001", "L002"} and all(p.to_create() for p in plans.values())
    applied = provision(mapping, lf, source=export, apply=True, clients={"L001": a, "L002": b})
    assert all(p.to_create() == [] and p.location == src for src, p in applied.items())
