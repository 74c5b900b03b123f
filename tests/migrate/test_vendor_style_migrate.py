"""A vendor-shaped export of one office (``generate --vendor-style pascal_crm``: no location column,
coverage flattened into one file, procedure codes in one column) migrates end to end through the map
``map propose`` wrote: contacts, appointments with their procedure codes and the coverage arrive in the
sandbox location its proposed office (export.location) maps to."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from dos2hl.generate.vendors import STYLES, write_style
from dos2hl.mapping.propose import DEFAULT_LOCATION, propose
from tests.migrate.conftest import make_world


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.generate import GenerateParams, generate
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("vendor")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    generate(root / "practice", GenerateParams(seed=3, patients=20, locations=1, mess="clean", images="none"))
    export = root / "vendor"
    write_style(root / "practice" / "export", export, STYLES["pascal_crm"])
    fmap = propose(export)
    assert fmap.export.location == DEFAULT_LOCATION
    w = make_world(root / "world", mp, crm=True, export=export, fmap=fmap, locations=1)
    rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 sample=0, verify="full", executor="threads", workers=2),
                  client_factory=w.factory)
    yield w, rep, export
    w.stop()
    mp.undo()


def test_contacts_appointments_codes_and_coverage_arrive(migrated: Any) -> None:
    w, rep, export = migrated
    assert rep["status"] == "completed", rep["reconciliation"]
    assert not rep["quarantine_by_code"]
    state = w.dump(DEFAULT_LOCATION)
    patients = _rows(export / "Patients.csv")
    assert len(state["contacts"]) == len(patients)
    appts = _rows(export / "Appointments.csv")
    opps = state["opportunities"]
    assert len(opps) == len(appts)
    cdt = {f["id"] for f in state["custom_fields"] if f.get("fieldKey") == "opportunity.cdt_codes"}
    sent = {int(o["name"].rsplit("#", 1)[1].rstrip(")")): sorted(
        c for f in o["customFields"] if f["id"] in cdt for c in f["fieldValue"]) for o in opps}
    codes = {int(a["AppointmentId"]): sorted({c.strip() for c in a["ProcedureCodes"].split(";") if c.strip()})
             for a in appts}
    assert sum(map(len, codes.values())) > len(codes)  # most appointments list several codes
    assert sent == codes  # every appointment's procedure codes, none lost or invented
    records = state["objects"]["custom_objects.insurance_records"]
    assert len(records) == len(_rows(export / "InsuranceCoverage.csv")) > 0
    assert all(r["properties"].get("carrier") for r in records)
