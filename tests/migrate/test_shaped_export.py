"""A migration of another vendor's export shape (tests/fixtures/shaped/vendor_b): a coverage file whose
rows carry carrier, plan and subscriber, appointments with their procedure codes in one column. The
coverage and the procedures arrive in the sandbox through the map, as they would from the reference
layout's separate files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from dos2hl.mapping.model import load_mapping
from tests.migrate.conftest import EXPORT_DATE, make_world

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shaped"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("shaped")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    export = root / "export"
    shutil.copytree(FIXTURES / "vendor_b", export)
    w = make_world(root, mp, crm=True, export=export, fmap=load_mapping(FIXTURES / "vendor_b.mapping.yaml"))
    rep = migrate(MigrateParams(source=str(export), mapping=str(w.mapping), locations=str(w.locations),
                                 sample=0, verify="full", executor="threads", workers=2,
                                 export_date=EXPORT_DATE),
                  client_factory=w.factory)
    yield w, rep
    w.stop()
    mp.undo()


def test_the_coverage_file_arrives_as_insurance_records_of_each_patient(migrated: Any) -> None:
    w, rep = migrated
    assert rep["status"] == "completed", rep["reconciliation"]
    assert rep["quarantine_by_code"] == {"LST1": 1}  # the one bad procedure code of the list column
    got = {}
    for loc in w.loc_ids:
        state = w.dump(loc)
        records = state["objects"]["custom_objects.insurance_records"]
        got[loc] = sorted(tuple(r["properties"][k] for k in ("carrier", "payer_id", "group_no", "member_id",
                                                             "pat_member_id", "elig_stat")) for r in records)
        assert len(state["relations"]) == len(records), loc  # each record associated with its contact
    assert got == {
        "L001": [  # patients 101 and 103
            ("Cigna Dental", "62308", "G-200", "S2001", "M-2", "Inactive"),
            ("Cigna Dental", "62308", "G-200", "S2003", "M-6", "Unverified"),
            ("Delta Dental", "94276", "G-100", "S1001", "M-1", "Verified"),
            ("Delta Dental", "94276", "G-300", "S3001", "M-5", "Verified"),
        ],
        "L002": [  # patient 102
            ("Cigna Dental", "62308", "G-200", "S2002", "M-4", "Verified"),
            ("Delta Dental", "94276", "G-100", "S1002", "M-3", "Verified"),
        ],
    }


def test_the_procedure_codes_of_one_column_arrive_on_their_appointments(migrated: Any) -> None:
    w, _rep = migrated
    codes = {}
    for loc in w.loc_ids:
        for o in w.dump(loc)["opportunities"]:
            aid = int(o["name"].rsplit("#", 1)[1].rstrip(")"))
            lists = [f["fieldValue"] for f in o["customFields"] if isinstance(f["fieldValue"], list)]
            codes[aid] = (loc, sorted(lists[0]) if lists else [])
    assert codes == {
        5001: ("L001", ["D0120", "D1110"]), 5002: ("L001", ["D0120", "D0274"]), 5004: ("L001", []),
        5003: ("L002", ["D2391", "D2392"]), 5005: ("L002", ["D0140", "D0220"]),  # "??" quarantined alone
    }
