"""The reader on small, hand-written exports: every edge case names its file and line, loses nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from dos2hl.errors import MissingFileError, SourceError
from dos2hl.sources.discover import discover
from dos2hl.sources.profile import load_profile
from dos2hl.sources.reader import ExportReader
from dos2hl.storage import LocalStore

EXPORT_DATE = dt.date(2024, 6, 28)
LOCATION = (
    b"LOC_ID,LOC_NAME,ADDR1,CITY,ST,ZIP,PHONE\r\n"
    b"L001,Main St Office,1 Main St,Springfield,MA,01103,(413) 555-0100\r\n"
)
PAT_HEADER = b"PAT_ID,LOC_ID,LNAME,FNAME,BIRTHDATE,HPHONE,EMAIL,ZIP,MED_ALERT,BAL_TOTAL\r\n"


def write_export(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def read_all(root: Path, profile: str = "reference") -> tuple[ExportReader, dict[str, pa.Table]]:
    reader = ExportReader(discover(LocalStore(root), load_profile(profile)), export_date=EXPORT_DATE)
    parts: dict[str, list[pa.Table]] = {"data": [], "findings": [], "quarantine": []}
    tables: dict[str, list[pa.Table]] = {}
    for chunk in reader.iter_all():
        tables.setdefault(chunk.table, []).append(chunk.data)
        parts["findings"].append(chunk.findings)
        parts["quarantine"].append(chunk.quarantine)
    out = {t: pa.concat_tables(v) for t, v in tables.items()}
    out["_findings"] = pa.concat_tables(parts["findings"])
    out["_quarantine"] = pa.concat_tables(parts["quarantine"])
    return reader, out


def test_reference_rows_parse_to_canonical_values(tmp_path: Path) -> None:
    patient = PAT_HEADER + (
        '000412,L001,"GARCIA JR",JOSÉ,03/15/45,(413) 555-0142,"pepe@example.com; fam@example.com",1103,'
        '"PCN allergy\r\npremed - knee",(45.00)\r\n'
        "413,L001,Garcia,Maria,07/30/1978,413.555.0187,,01103,,\r\n"
    ).encode("cp1252")
    reader, out = read_all(write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": patient}))
    rows = {r["pat_id"]: r for r in out["patient"].to_pylist()}
    a = rows[412]
    assert (a["lname"], a["suffix"], a["fname"]) == ("Garcia", "JR", "José")
    assert a["birthdate"] == dt.date(1945, 3, 15)
    assert a["hphone"] == "+14135550142"
    assert a["email"] == "pepe@example.com"
    assert a["zip"] == "01103"
    assert a["med_alert"] == "PCN allergy\npremed - knee"
    assert a["bal_total"] == Decimal("-45.00")
    assert (a["_record"], a["_line"]) == (1, 2)
    assert (rows[413]["_record"], rows[413]["_line"]) == (2, 4)  # the memo above spans two lines
    st = reader.stats["PATIENT.CSV"]
    assert st.balanced and st.records == 2 and st.quarantined == 0
    codes = set(out["_findings"]["code"].to_pylist())
    assert {"NM2", "NM1", "DT2", "ZIP1", "EM2", "$1"} <= codes
    assert st.repaired == 1 and st.clean == 1 or st.repaired == 2


def test_bad_rows_are_quarantined_with_line_and_nothing_is_lost(tmp_path: Path) -> None:
    patient = PAT_HEADER + (
        b"1,L001,Smith,Ann,01/02/1980,,,,,\r\n"
        b"2,L001,Jones,Bob,01/02/1981,,,,,,EXTRA\r\n"      # too many fields: line 3
        b"\r\n"                                            # blank line 4: not a record
        b"3,L001,Brown\r\n"                                # too few fields: line 5
        b",L001,NoKey,Pat,01/01/1990,,,,,\r\n"             # blank primary key: line 6
        b"4,L001,White,Cy,01/02/1982,,,,\"open memo,\r\n"   # unterminated quote to EOF: line 7
        b"5,L001,Black,Di,01/02/1983,,,,,\r\n"
    )
    reader, out = read_all(write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": patient}))
    st = reader.stats["PATIENT.CSV"]
    q = {r["line"]: r for r in out["_quarantine"].to_pylist()}
    assert set(q) >= {3, 5, 6, 7}
    assert q[3]["code"] == "CSV2" and "11 fields where 10 were expected" in q[3]["reason"]
    assert q[5]["code"] == "CSV2"
    assert q[6]["code"] == "KEY1" and "pat_id" in q[6]["reason"]
    assert q[7]["code"] == "CSV2" and "unterminated" in q[7]["reason"]
    assert st.blank_lines == 1
    assert st.balanced, st.identity()
    assert st.records == st.clean + st.repaired + st.quarantined == 6
    # The line swallowed by the unterminated quote is given back as a record of its own.
    staged = {r["pat_id"]: r["_line"] for r in out["patient"].to_pylist()}
    assert staged == {1: 2, 5: 8}


def test_record_split_by_a_bare_line_break_is_rejoined(tmp_path: Path) -> None:
    patient = PAT_HEADER + (
        b"1,L001,Smith,Ann,01/02/1980,,,,allergic to\r\n"   # the MED_ALERT value breaks here ...
        b"penicillin,\r\n"                                  # ... and goes on on the next line
        b"2,L001,Jones,Bob,01/02/1981,,,,,\r\n"
    )
    reader, out = read_all(write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": patient}))
    st = reader.stats["PATIENT.CSV"]
    assert (st.records, st.repaired, st.quarantined) == (2, 1, 0) and st.balanced
    rows = {r["pat_id"]: r for r in out["patient"].to_pylist()}
    assert rows[1]["med_alert"] == "allergic to\npenicillin"
    assert (rows[1]["_line"], rows[2]["_line"], rows[2]["_record"]) == (2, 4, 2)
    f = [r for r in out["_findings"].to_pylist() if r["code"] == "CSV2"]
    assert [(r["line"], r["column"], r["action"]) for r in f] == [(2, "MED_ALERT", "repaired")]


def test_softdent_style_file_with_banner_trailer_tilde_quotes(tmp_path: Path) -> None:
    appt = (
        b"Dent-O-Soft Export 2.3 - 06/28/2024 10:22\r\n"
        b"APPT_ID,PAT_ID,LOC_ID,APPT_DATE,APPT_TIME,STATUS,NOTE,PROC1,TOOTH1,PROC2,TOOTH2\r\n"
        b"10,1,L001,03/04/24,08:30a,CMP,~note, with comma~,0120,,D1110,\r\n"
        b"11,1,L001,03/05/24,01:15 PM,SCH,,2750.01,#3,,\r\n"
        b"*** 2 records ***\r\n"
    )
    patient = PAT_HEADER + b"1,L001,Smith,Ann,01/02/1980,,,,,\r\n"
    reader, out = read_all(write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": patient,
                                                   "APPT.CSV": appt}), profile="softdent_like")
    st = reader.stats["APPT.CSV"]
    assert st.banner_lines == 1 and st.trailer_lines == 1 and st.declared_records == 2 and st.records == 2
    assert st.balanced and not st.warnings
    rows = {r["appt_id"]: r for r in out["appt"].to_pylist()}
    assert rows[10]["note"] == "note, with comma"
    assert rows[10]["appt_date"] == dt.date(2024, 3, 4)
    assert rows[10]["appt_time"] == dt.time(8, 30)
    assert rows[11]["appt_time"] == dt.time(13, 15)
    procs = sorted((r["appt_id"], r["seq"], r["proc_code"], r["tooth"]) for r in out["apptproc"].to_pylist())
    assert procs == [(10, 1, "D0120", None), (10, 2, "D1110", None), (11, 1, "D2750", "3")]
    assert st.derived == 3


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_bom_encodings(tmp_path: Path, encoding: str) -> None:
    patient = (PAT_HEADER.decode() + "7,L001,Peña,Zoë,01/02/1980,,,,,\r\n").encode(encoding)
    reader, out = read_all(write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": patient}))
    assert out["patient"].to_pylist()[0]["lname"] == "Peña"
    assert reader.stats["PATIENT.CSV"].balanced


def test_missing_patient_file_is_refused_before_reading(tmp_path: Path) -> None:
    root = write_export(tmp_path, {"LOCATION.CSV": LOCATION})
    with pytest.raises(MissingFileError, match="no PATIENT.CSV") as err:
        discover(LocalStore(root), load_profile("reference"))
    assert err.value.exit_code == 2


def test_binary_patient_file_is_a_clear_error(tmp_path: Path) -> None:
    root = write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": bytes(range(256)) * 50})
    reader = ExportReader(discover(LocalStore(root), load_profile("reference")), export_date=EXPORT_DATE)
    with pytest.raises(SourceError, match="PATIENT"):
        reader.preflight()


def test_truncated_file_keeps_the_partial_last_record(tmp_path: Path) -> None:
    patient = PAT_HEADER + b"1,L001,Smith,Ann,01/02/1980,,,,,\r\n2,L001,Jon"
    reader, out = read_all(write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": patient}))
    st = reader.stats["PATIENT.CSV"]
    assert st.records == 2 and st.quarantined == 1 and st.balanced
    assert out["_quarantine"].to_pylist()[0]["line"] == 3


def test_renamed_export_is_a_profile_not_code(tmp_path: Path) -> None:
    profile = tmp_path / "northside.yaml"
    profile.write_text(
        "name: northside\n"
        "files:\n"
        "  patient:\n"
        "    file: Patients\n"
        "    columns: {PatNum: pat_id, Clinic: loc_id, PatLast: lname, Pt_First: fname, BirthDt: birthdate,"
        " CellNo: cphone}\n"
        "  location: {file: Clinics}\n"
        "ledger_amount: {mode: split_columns, columns: [CASH_AMT, CARD_AMT]}\n"
    )
    export = write_export(
        tmp_path / "export",
        {
            "Clinics.txt": LOCATION,
            "Patients.txt": b"PatNum|Clinic|PatLast|Pt_First|BirthDt|CellNo\n"
                            b"9|L001|Doe|Jan|1980-02-03|555-0199\n",
            "LEDGER.CSV": b"TRANS_ID,PAT_ID,TRANS_TYPE,AMOUNT,CASH_AMT,CARD_AMT\n"
                          b"1,9,PMT,,10.00,5.50\n2,9,CHG,99.00,,\n",
        },
    )
    reader, out = read_all(export, profile=str(profile))
    p = out["patient"].to_pylist()[0]
    assert (p["pat_id"], p["lname"], p["fname"], p["birthdate"]) == (9, "Doe", "Jan", dt.date(1980, 2, 3))
    assert p["cphone"] == "+14135550199"  # 7 digits: the location's area code
    amounts = {r["trans_id"]: r["amount"] for r in out["ledger"].to_pylist()}
    assert amounts == {1: Decimal("-15.50"), 2: Decimal("99.00")}
