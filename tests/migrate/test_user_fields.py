"""User-defined fields (USERFLD/PATUDF, EXPORT_FORMAT.md §13) reach the contact with their declared type,
are verified by read-back like every other field, and every value that cannot be sent is in the report.

The export is hand-made (tests/fixtures/udf/): two offices in Honolulu and Nome, typed definitions
(pick-list, date, checkbox, number, text, a hidden date, a pick-list without options), and values as
practices type them: ``2/4/11``, ``02/04/2011``, ``  english  ``, ``$25.00``, ``X``, plus values that are
no date (``Feb 2011``), no number, no option, and a value of a field that has no definition."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from dos2hl.mapping.objectmap import user_field
from dos2hl.planning.transform import udf_value
from dos2hl.sources.values import ParseContext
from tests.migrate.conftest import EXPORT_DATE, make_world

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_each_declared_type_converts_its_values_as_typed() -> None:
    ctx = ParseContext(export_date=dt.date(2024, 6, 28))
    date = user_field({"field_id": 2, "field_name": "Ortho Start Date", "field_type": "D"})
    pick = user_field({"field_id": 1, "field_name": "Preferred Language", "field_type": "L",
                       "picklist": "English| Spanish |Portuguese"})
    box = user_field({"field_id": 3, "field_name": "Marketing Opt-out", "field_type": "c"})
    num = user_field({"field_id": 4, "field_name": "Copay Amount", "field_type": "N"})
    free = user_field({"field_id": 7, "field_name": "Shirt Size", "field_type": "L", "picklist": ""})
    assert date and pick and box and num and free
    assert (date.key, date.data_type, pick.options, box.options, free.data_type) == (
        "contact.ortho_start_date", "DATE", ("English", "Spanish", "Portuguese"), ("Yes",), "TEXT")
    assert user_field({"field_id": 8, "field_name": " -- ", "field_type": "T"}) is None
    assert [udf_value(date, v, ctx)[0] for v in ("2/4/11", "02/04/2011", "2011-02-04")] == ["2011-02-04"] * 3
    assert udf_value(date, "Feb 2011", ctx)[0] is None and "date" in udf_value(date, "Feb 2011", ctx)[1]
    assert udf_value(pick, "  english ", ctx) == ("English", "")
    assert udf_value(pick, "Tagalog", ctx)[1] == "not among the pick-list's options"
    assert [udf_value(box, v, ctx) for v in ("1", "X", "y", "N")] == [(["Yes"], "")] * 3 + [(None, "")]
    assert udf_value(box, "maybe", ctx)[0] is None and udf_value(box, "maybe", ctx)[1]
    assert [udf_value(num, v, ctx)[0] for v in ("$25.00", "12.50", "0", "1,200")] == [25, 12.5, 0, 1200]
    assert udf_value(num, "about ten", ctx) == (None, "not a number (NUMERICAL field)")
    assert udf_value(free, "  XL ", ctx) == ("XL", "")
    dmy = ParseContext(date_order="DMY", export_date=dt.date(2024, 6, 28))
    assert udf_value(date, "2/4/11", dmy)[0] == "2011-04-02"  # the export's date order, not a guess


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("udf")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    w = make_world(root, mp, export=FIXTURES / "udf")
    rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 export_date=EXPORT_DATE, verify="full", workers=2),
                  approve=lambda r: True, client_factory=w.factory)
    yield w, rep, root / "runs" / rep["run_id"]
    w.stop()
    mp.undo()


def _contacts(w: Any) -> dict[str, dict[str, Any]]:
    """source id -> {field key: value} of every contact in both sub-accounts."""
    out = {}
    for loc in w.loc_ids:
        d = w.dump(loc)
        keys = {f["id"]: f["fieldKey"] for f in d["custom_fields"]}
        for c in d["contacts"]:
            custom = {keys[cf["id"]]: cf["value"] for cf in c.get("customFields") or []}
            out[custom["contact.source_system_id"]] = custom
    return out


def test_user_fields_arrive_typed_and_verified(migrated: Any) -> None:
    w, rep, _run = migrated
    assert rep["status"] == "completed", rep["reconciliation"]
    got = _contacts(w)
    assert set(got) == {"101", "102", "103", "104"}  # 105 is deleted: excluded with its values
    assert {k: v for k, v in got["101"].items() if k in (
        "contact.preferred_language", "contact.ortho_start_date", "contact.marketing_opt_out",
        "contact.copay_amount", "contact.school")} == {
        "contact.preferred_language": "Spanish", "contact.ortho_start_date": "2011-02-04",
        "contact.marketing_opt_out": ["Yes"], "contact.copay_amount": 25,
        "contact.school": "Lincoln Elementary, room 4"}
    assert got["102"]["contact.preferred_language"] == "English"
    assert got["102"]["contact.ortho_start_date"] == "2011-02-04"
    assert got["102"]["contact.copay_amount"] == 12.5 and got["102"]["contact.shirt_size"] == "XL"
    assert got["104"]["contact.insurance_verified_on"] == "2011-02-04"  # a hidden definition still migrates
    assert (
        got["104"]["contact.copay_amount"] == 0 and got["104"]["contact.preferred_language"] == "Portuguese"
    )
    # 103: only what converts is sent; an unticked checkbox is no value
    assert {k for k in got["103"] if k in ("contact.preferred_language", "contact.ortho_start_date",
                                           "contact.copay_amount", "contact.marketing_opt_out")} == set()
    assert got["103"]["contact.school"] == "Kalani High"
    # the wide variant PATIENT.USER1..USER4 / USER_CODES: plain contact fields
    assert (got["101"]["contact.user1"], got["102"]["contact.user4"], got["104"]["contact.user_codes"]) == (
        "Prefers mornings", "Ref 42", "VIP")
    fields = rep["field_diff"]["fields"]["patient"]
    for key, n in (("contact.ortho_start_date", 2), ("contact.insurance_verified_on", 1),
                   ("contact.preferred_language", 3), ("contact.marketing_opt_out", 3),
                   ("contact.copay_amount", 3), ("contact.school", 2), ("contact.shirt_size", 1)):
        assert fields[key] == {"match": n, "mismatch": 0, "missing": 0}, key


def test_every_value_not_sent_is_in_the_report_with_its_reason(migrated: Any) -> None:
    _w, rep, run = migrated
    nots = {f["target"]: f for f in rep["fields_not_migrated"] if "rows" in f}  # values not sent
    assert {k: v["rows"] for k, v in nots.items()} == {
        "contact.preferred_language": 1, "contact.ortho_start_date": 1, "contact.copay_amount": 1,
        "PATUDF.FIELD_ID": 1}
    assert "pick-list" in nots["contact.preferred_language"]["reason"]
    assert "date" in nots["contact.ortho_start_date"]["reason"]
    assert nots["contact.copay_amount"]["source"] == "PATUDF.VALUE"
    rows = list(csv.DictReader(io.StringIO((run / "report" / "excluded.csv").read_text())))
    udf = sorted((r["location"], r["source_id"]) for r in rows if r["object"] == "user_field")
    assert udf == [("L001", "103:1"), ("L001", "103:2"), ("L001", "103:4"), ("L001", "103:9")]
    md = (run / "report" / "report.md").read_text()
    assert "value(s) not sent to contact.ortho_start_date" in md
    text = json.dumps(rep) + md
    for value in ("Tagalog", "Feb 2011", "about ten", "orphan definition", "Kalani"):  # ids and counts only
        assert value not in text
