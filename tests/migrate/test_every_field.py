"""The structural guarantee of issue 13: every source column the confirmed map sends arrives in HighLevel
(read back equal in the field diff) or is listed in the report's "fields not migrated" with a reason.

One run of the reference map with every object on (as ``make_world(crm=True)``) over a generated
practice plus a hand-made export merged into it (tests/fixtures/every_field/: the columns a generated
practice leaves empty, and the user-defined fields of tests/fixtures/udf/), read back in full
(``verify="full"``). For each sent entry of the map the test finds its place in the diff from its target
(a contact field by key, a record property, an opportunity field, a note or file by presence...), and
asserts the column had values in the export, then: matched with no mismatch or missing, or reported.
A mapped field that silently never arrives fails here, whatever its object."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dos2hl.mapping.model import Entry, load_mapping
from dos2hl.mapping.objectmap import UDF_TARGET, user_field
from dos2hl.planning.transform import CONTACT_STANDARD, OBJECT_NAMES
from tests.migrate.conftest import EXPORT_DATE, make_world

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# the object (diff name) a table's rows become
_OBJECT_OF = {"patient": "patient", "patins": "insurance_record", "inssub": "insurance_record",
              "insplan": "insurance_record", "insco": "insurance_record", "txplan": "treatment_plan",
              "txitem": "treatment_plan", "clinnote": "clinical_note", "ledger": "ledger_entry",
              "claim": "insurance_claim", "claimln": "insurance_claim", "appt": "appointment",
              "apptproc": "appointment", "recall": "recall", "commlog": "activity", "document": "document",
              "patref": "patient", "refsrc": "patient", "provider": "patient", "patudf": "patient"}


def slots(e: Entry, udf_keys: list[str]) -> list[tuple[str, str, str]]:
    """Where ``e``'s values show in the field diff: (object, field, "value" | "presence")."""
    t, obj = e.target, _OBJECT_OF.get(e.table or "", "?")
    if t == UDF_TARGET:
        return [("patient", k, "value") for k in udf_keys]
    if t.startswith("contact."):
        name = t.split(".", 1)[1]
        return [("patient", name if e.type == "STANDARD" and name in CONTACT_STANDARD else t, "value")]
    if t.startswith("custom_objects."):
        key, short = t.rsplit(".", 1)
        return [(OBJECT_NAMES[key], short, "value")]
    if t.startswith("opportunity."):
        name = t.split(".", 1)[1]
        std = {"stage": "pipelineStageId", "name": "name", "monetaryValue": "monetaryValue"}
        return [(obj, std.get(name, t), "value")]
    if t == "user":  # the owner: assignedTo of contacts and opportunities, owner of records
        return [(obj, "assignedTo" if obj in ("patient", "appointment") else "owner", "value")]
    if t == "tag":
        return [("patient", "tags", "value"), ("patient", "contact.referral_source", "value")]
    if t.startswith("note."):
        return [("activity", "body", "presence")]
    if t.startswith("file."):
        return [("document", "linked_to_contact", "presence")]
    if t in ("location", "relation.contact", "relation.opportunity"):
        return [(obj, "", "presence")]  # routing / association: the object was read back where it belongs
    return []


def _merge_fixture(export: Path, fixture: Path) -> None:
    """Append the fixture's rows to the generated export's files (columns by name)."""
    for f in sorted(fixture.glob("*.CSV")):
        target = export / f.name
        with f.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not target.exists():
            target.write_bytes(f.read_bytes())
            continue
        raw = target.read_bytes()
        enc = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "cp1252"
        header = next(csv.reader([raw.decode(enc).splitlines()[0]]))
        with target.open("a", newline="", encoding=enc) as fh:
            if not raw.endswith(b"\n"):
                fh.write("\r\n")
            w = csv.DictWriter(fh, fieldnames=header, lineterminator="\r\n")
            for r in rows:
                w.writerow({k: r.get(k, "") for k in header})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("every")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    # the merge happens before provisioning (make_world provisions from the export it finds)
    from dos2hl.generate import GenerateParams, generate

    generate(root / "gen", GenerateParams(seed=3, patients=40, locations=2, mess="clean", images="stub",
                                          history_years=2))
    _merge_fixture(root / "gen" / "export", FIXTURES / "every_field")
    w = make_world(root, mp, crm=True, export=root / "gen" / "export")
    rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 export_date=EXPORT_DATE, verify="full", workers=2),
                  approve=lambda r: True, client_factory=w.factory)
    yield w, rep, root / "runs" / rep["run_id"]
    w.stop()
    mp.undo()


def _values(run: Path, table: str, columns: list[str]) -> list[dict[str, Any]]:
    files = sorted((run / "staged" / table).rglob("*.parquet"))
    return [r for f in files for r in pq.read_table(f, columns=columns).to_pylist()]


def _has_values(run: Path, e: Entry) -> bool:
    """A value that must arrive: not blank; a ticked checkbox (unticked is no value in HighLevel)."""
    return any(r[e.column or ""] not in (None, "",
                                         False) for r in _values(run, e.table or "", [e.column or ""]))


def test_every_mapped_column_arrives_or_is_reported(run: Any) -> None:
    w, rep, path = run
    assert rep["status"] == "completed", rep["reconciliation"]
    fmap = load_mapping(w.mapping)
    defs = {
        u.field_id: u.key
        for u in map(
            user_field, _values(path, "userfld", ["field_id", "field_name", "field_type", "picklist"])
        )
        if u
    }
    udf_keys = sorted({defs[r["field_id"]] for r in _values(path, "patudf", ["field_id", "value"])
                       if r["value"] and r["field_id"] in defs})
    assert len(udf_keys) >= 6  # the generated practice's and the fixture's definitions
    diff = rep["field_diff"]
    fields, read_back = diff["fields"], diff["read_back"]
    reported = {f["source"] for f in rep["fields_not_migrated"]} | {
        f.get("target") for f in rep["fields_not_migrated"]}
    sent = [e for e in fmap.fields if e.phi != "omit" and e.target not in ("skip", "reference")]
    assert len(sent) > 250 and rep["field_diff"]["mismatches"] == 0, rep["field_diff"]["examples"]
    problems = []
    for e in sent:
        if e.source in reported:
            continue
        if not _has_values(path, e):
            problems.append(f"{e.source} -> {e.target}: no value in the test export (add one to the fixture)")
            continue
        where = slots(e, udf_keys)
        if not where:
            problems.append(f"{e.source} -> {e.target}: not in the diff and not reported")
            continue
        for obj, name, how in where:
            if how == "presence" and not name:
                ok = read_back.get(obj, 0) > 0
            else:
                c = fields.get(obj, {}).get(name)
                ok = c is not None and c["match"] > 0 and (how == "presence"
                                                           or c["mismatch"] + c["missing"] == 0)
            if not ok:
                problems.append(f"{e.source} -> {e.target}: {obj}.{name} {fields.get(obj, {}).get(name)}")
    assert not problems, "\n".join(problems)
