"""The proposer on shaped exports (issue 18): a denormalised coverage file, a procedure-code list column,
the patient table split over two files, renamed columns (PostCode), scored by bench/propose.py's core."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.propose import score, score_style
from dos2hl.generate.vendors import STYLES, write_style
from dos2hl.mapping.match import ColumnMatch, FileMatch, _split_tables, match_columns, normalize
from dos2hl.mapping.model import Mapping
from dos2hl.mapping.propose import propose
from dos2hl.mapping.shaped import find_list_column, linked_tables

#: bench/propose.py --quick measured 100 % on title_spaces after tuning; a regression guard, not a target
TITLE_SPACES_FLOOR = 0.98


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dos2hl.generate import GenerateParams, generate

    out = tmp_path_factory.mktemp("shapes")
    generate(out, GenerateParams(seed=1, patients=60, mess="clean", images="none"))
    return out / "export"


@pytest.fixture(scope="module")
def proposed(export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Mapping]:
    root = tmp_path_factory.mktemp("styles")
    out = {}
    for name in ("pascal_crm", "snake_split"):
        write_style(export, root / name, STYLES[name])
        out[name] = propose(root / name)
    return out


def _entry(m: Mapping, source: str):  # type: ignore[no-untyped-def]
    [e] = [e for e in m.fields if e.source == source]
    return e


def test_bench_core_keeps_its_accuracy_on_a_style(export: Path, tmp_path: Path) -> None:
    out = score_style(export, tmp_path, STYLES["title_spaces"])
    assert out["files_correct"] == out["files"], out["misses"]
    assert out["accuracy"] >= TITLE_SPACES_FLOOR, out["misses"]
    assert not out["holdout"]


def test_the_score_counts_a_wrong_table_and_a_missing_split(export: Path, tmp_path: Path) -> None:
    truth = write_style(export, tmp_path / "s", STYLES["pascal_crm"])
    m = propose(tmp_path / "s")
    fields = [e.model_copy(update={"split": None}) if e.split else e for e in m.fields]
    worse = score(m.model_copy(update={"fields": fields}), truth)
    best = score(m, truth)
    assert worse["correct"] == best["correct"] - 1
    assert any(x.get("column") == "Appointments.ProcedureCodes" for x in worse["misses"])


def test_a_coverage_files_columns_go_to_carrier_plan_subscriber_and_coverage(
        proposed: dict[str, Mapping]) -> None:
    m = proposed["pascal_crm"]
    assert m.files["InsuranceCoverage"] == "patins"
    want = {"CarrierName": ("insco", "carrier_name"), "GroupNumber": ("insplan", "group_no"),
            "EligibilityStatus": ("patins", "elig_stat"), "SubscriberId": ("inssub", "member_id"),
            "PatientId": ("patins", "pat_id")}
    for col, tc in want.items():
        e = _entry(m, f"InsuranceCoverage.{col}")
        assert (e.table, e.column) == tc, col
    carrier = _entry(m, "InsuranceCoverage.CarrierName")
    assert any("denormalised" in r and "insplan.carrier_id" in r for r in carrier.reasons)
    assert _entry(m, "InsuranceCoverage.VerificationBatch").column is None  # vendor-only


def test_a_code_list_column_is_split_into_appointment_procedures(proposed: dict[str, Mapping]) -> None:
    for name, source, seps in (("pascal_crm", "Appointments.ProcedureCodes", {";", " "}),
                               ("snake_split", "appointment_schedule.cdt_codes", {","})):
        e = _entry(proposed[name], source)
        assert (e.table, e.column) == ("apptproc", "proc_code"), source
        assert e.split is not None and set(e.split) == seps
        assert any("list column" in r for r in e.reasons)
    # the reason column holds codes joined by '/', one text value: not a list
    assert _entry(proposed["pascal_crm"], "Appointments.Reason").split is None


def test_a_postcode_column_is_the_patients_zip(proposed: dict[str, Mapping]) -> None:
    for name, source in (("pascal_crm", "Patients.PostCode"),
                         ("snake_split", "patient_contacts.postal_code")):
        e = _entry(proposed[name], source)
        assert (e.table, e.column, e.target) == ("patient", "zip", "contact.postalCode")
    assert set(normalize("Post Code")) == set(normalize("ZIP"))


def test_two_patient_files_are_both_the_patient_table_joined_on_its_key(proposed: dict[str, Mapping]) -> None:
    m = proposed["snake_split"]
    assert m.files["patient_demographics"] == m.files["patient_contacts"] == "patient"
    for stem in ("patient_demographics", "patient_contacts"):
        assert (_entry(m, f"{stem}.patient_id").column, _entry(m, f"{stem}.patient_id").table) == \
            ("pat_id", "patient")


def test_a_second_file_of_a_table_without_its_key_is_flagged() -> None:
    a = FileMatch("a.csv", "patient", 0.9, (), (ColumnMatch("Id", "pat_id", 1.0, ()),
                                                 ColumnMatch("Last", "lname", 1.0, ())))
    b = FileMatch("b.csv", "patient", 0.9, (), (ColumnMatch("Phone", "hphone", 1.0, ()),))
    out = {f.file: f for f in _split_tables([a, b], {"a.csv": ["1", "2"], "b.csv": []})}
    assert out["b.csv"].confidence <= 0.4 and "no column of it is patient's key" in out["b.csv"].reasons[-1]
    out = {f.file: f for f in _split_tables([a, b], {"a.csv": ["1", "2"], "b.csv": ["2", "1"]})}
    assert "joined on pat_id, 100 %" in out["b.csv"].reasons[-1] and out["b.csv"].confidence == 0.9
    out = {f.file: f for f in _split_tables([a, b], {"a.csv": ["1", "2"], "b.csv": ["7", "8"]})}
    assert "0 %" in out["b.csv"].reasons[-1] and out["b.csv"].confidence == 0.5  # keys do not meet


def test_two_files_with_the_same_columns_are_parts_of_the_rows() -> None:
    cols = (ColumnMatch("Id", "pat_id", 1.0, ()), ColumnMatch("Last", "lname", 1.0, ()))
    a, b = FileMatch("p1.csv", "patient", 0.9, (), cols), FileMatch("p2.csv", "patient", 0.9, (), cols)
    out = _split_tables([a, b], {"p1.csv": ["1"], "p2.csv": ["2"]})
    assert all("parts of its rows" in f.reasons[-1] and f.confidence == 0.9 for f in out)


def test_list_columns_need_codes_and_several_items() -> None:
    found = find_list_column("appt", "Codes", ["D0120;D1110", "D0150", "D2391, D2392", "D0274 D0210"])
    assert found is not None and (found.table, found.column) == ("apptproc", "proc_code")
    assert set(found.split) == {";", ",", " "}
    assert find_list_column("appt", "Reason", ["D0120/D1110", "D0150/D0274", "D2391/D2392"]) is None
    assert find_list_column("appt", "Name", ["Lee, Ann", "Chan, Bo", "Ortiz, Mia"]) is None
    assert find_list_column("appt", "Code", ["D0120", "D0150", "D2391"]) is None  # one code a row
    assert find_list_column("patient", "Codes", ["D0120;D1110", "D0150;D1110", "D2391"]) is None


def test_linked_tables_follow_foreign_keys_but_not_to_the_patient() -> None:
    links = dict(linked_tables("patins"))
    assert list(links) == ["inssub", "insplan", "insco"]
    assert links["insco"] == "patins.sub_rec_id -> inssub.plan_id -> insplan.carrier_id -> insco"
    assert "patient" not in dict(linked_tables("appt"))


def test_shaped_reasons_hold_no_values(proposed: dict[str, Mapping]) -> None:
    blob = "\n".join(r for m in proposed.values() for e in m.fields for r in e.reasons)
    assert not re.search(r"\bD\d{4}\b", blob), "a procedure code in a reason"
    assert not re.search(r"\(\d{3}\) \d{3}-\d{4}|@", blob), "a phone or e-mail in a reason"


@pytest.mark.parametrize(("table", "header", "column"), [
    ("patient", "FVISITDT", "first_visit"), ("patient", "LVISITDT", "last_visit"),
    ("patient", "MEDALRT", "med_alert"), ("patient", "MINIT", "mi"), ("insplan", "Group #", "group_no"),
    ("patient", "Entered On", "created_dt"), ("inssub", "EFFDT", "eff_dt"), ("appt", "OPNO", "op_id"),
    ("patient", "Post Code", "zip"), ("inssub", "relationship_info", "rel_info"),
])
def test_terse_and_spaced_headers_find_their_column(table: str, header: str, column: str) -> None:
    [m] = match_columns(table, [header])
    assert m.column == column, m.reasons


def test_generate_writes_vendor_styles_with_their_truth(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from dos2hl.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["generate", str(tmp_path / "x"), "--vendor-style", "nope"])
    assert bad.exit_code == 2 and "unknown --vendor-style nope" in bad.output
    assert not (tmp_path / "x").exists()  # refused before anything is written
    out = tmp_path / "p"
    ok = runner.invoke(app, ["generate", str(out), "--patients", "30", "--mess", "clean", "--images", "none",
                             "--vendor-style", "title_spaces", "--json"])
    assert ok.exit_code == 0, ok.output
    truth = json.loads((out / "vendors" / "title_spaces.truth.json").read_text())
    assert truth["Coverage Report.csv"]["primary"] == "patins"
    assert truth["Coverage Report.csv"]["columns"]["Carrier"] == "insco.carrier_name"
    assert truth["Appointment Report.csv"]["splits"] == {"Procedures": ";"}
    assert sorted(p.name for p in (out / "vendors" / "title_spaces").iterdir()) == sorted(truth)
