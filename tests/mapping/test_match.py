"""The schema matcher: accuracy on renamed variants of a generated export, PHI-free reasons, and the
building blocks (tokenisation, value profiling)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from dos2hl.mapping import synonyms
from dos2hl.mapping.match import (
    ColumnMatch,
    FileMatch,
    kind_fit,
    match_columns,
    match_export,
    normalize,
    profile_values,
    tokenize,
)
from dos2hl.model import TABLES

from .variants import VARIANTS, Truth, reference_truth, write_variant

MIN_ACCURACY = 0.95


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small clean practice in the reference layout (built once for the module)."""
    from dos2hl.generate import GenerateParams, generate

    out = tmp_path_factory.mktemp("mapping")
    generate(out, GenerateParams(seed=1, patients=60, mess="clean", images="none"))
    return out / "export"


def _score(result: list[FileMatch], truth: Truth) -> tuple[float, float, list[str]]:
    """(column top-1 accuracy, file accuracy, misses) of a result against the truth."""
    assert sorted(f.file for f in result) == sorted(truth)
    files_ok = cols = cols_ok = 0
    misses: list[str] = []
    for f in result:
        table, columns = truth[f.file]
        files_ok += f.table == table
        if f.table != table:
            misses.append(f"FILE {f.file}: {f.table} != {table}")
        assert [c.source for c in f.columns] == list(columns) or f.table != table
        for c in f.columns:
            cols += 1
            if c.column == columns[c.source]:
                cols_ok += 1
            else:
                misses.append(f"{f.file}: {c.source!r} -> {c.column} (want {columns[c.source]}, "
                              f"{c.confidence:.2f}, alt {c.alternatives})")
    return cols_ok / cols, files_ok / len(result), misses


def test_reference_layout_is_matched_exactly(export: Path) -> None:
    result = match_export(export)
    acc, file_acc, misses = _score(result, reference_truth(export))
    print(f"\nreference: columns {acc:.3f}, files {file_acc:.3f}")
    assert acc == 1.0 and file_acc == 1.0, misses
    low = [(f.file, c.source, c.confidence) for f in result for c in f.columns if c.confidence < 0.9]
    assert not low
    assert all(f.confidence >= 0.9 for f in result), [(f.file, f.confidence) for f in result]


@pytest.fixture(scope="module")
def variants(export: Path,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Truth, list[FileMatch]]]:
    """Every variant written and matched once: {name: (truth, result)}."""
    root = tmp_path_factory.mktemp("variants")
    out: dict[str, tuple[Truth, list[FileMatch]]] = {}
    for name, variant in VARIANTS.items():
        truth = write_variant(export, root / name, variant)
        out[name] = (truth, match_export(root / name))
    return out


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_accuracy(variants: dict[str, tuple[Truth, list[FileMatch]]], name: str) -> None:
    truth, result = variants[name]
    renamed = sum(1 for _, cols in truth.values() for new, canon in cols.items() if new != canon.upper())
    total = sum(len(cols) for _, cols in truth.values())
    assert renamed / total > 0.6, "a variant must rename most columns"
    acc, file_acc, misses = _score(result, truth)
    print(f"\n{name}: columns {acc:.3f} ({total} columns, {renamed} renamed), files {file_acc:.3f}")
    for m in misses:
        print("   miss", m)
    assert file_acc == 1.0, misses
    assert acc >= MIN_ACCURACY, misses


def _phi_values(export: Path) -> set[str]:
    """Distinctive row values of the PATIENT file (last names, e-mails, cities), not header words."""
    with (export / "PATIENT.CSV").open(encoding="cp1252", newline="") as fh:
        rows = list(csv.DictReader(fh))
    values = {r[k] for r in rows for k in ("LNAME", "FNAME", "EMAIL", "CITY", "ADDR1") if r.get(k)}
    header_words = {w.lower() for f in TABLES.values() for c in f.columns for w in c.name.split("_")}
    return {v for v in values if len(v) >= 4 and v.lower() not in header_words}


def test_reasons_hold_no_row_values(export: Path, variants: dict[str, tuple[Truth, list[FileMatch]]]) -> None:
    phi = _phi_values(export)
    assert len(phi) > 50
    results = [match_export(export), *(res for _, res in variants.values())]
    texts = [r for res in results for f in res for r in (*f.reasons,
                                                         *(x for c in f.columns for x in c.reasons))]
    blob = "\n".join(texts)
    leaked = sorted(v for v in phi if re.search(rf"(?<![\w@.]){re.escape(v)}(?![\w@])", blob))
    assert not leaked, f"{len(leaked)} row values in reasons"
    assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", blob), "an e-mail address in a reason"


# ---- building blocks -------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "tokens"), [
    ("PatLast", ("pat", "last")),
    ("Pt_Surname", ("pt", "surname")),
    ("BirthDt", ("birth", "dt")),
    ("ZIPCode", ("zip", "code")),
    ("addr1", ("addr", "1")),
    ("lastvisitdate", ("last", "visit", "date")),
    ("patientnumber", ("patient", "number")),
    ("M.I.", ("mi",)),
    ("LName", ("lname",)),
    ("E-mail", ("email",)),
    ("Length (min)", ("length", "min")),
])
def test_tokenize(name: str, tokens: tuple[str, ...]) -> None:
    assert tokenize(name) == tokens


@pytest.mark.parametrize(("a", "b"), [
    ("DOB", "birthdate"), ("Date of Birth", "BIRTHDATE"), ("Pt_Surname", "patient last name"),
    ("CellPhone", "CPHONE"), ("WirelessPhone", "CPHONE"), ("PatNum", "PAT_ID"),
    ("HmPhone", "home phone"), ("Bal_31_60", "BAL_30"),
])
def test_normalize_meets_synonyms(a: str, b: str) -> None:
    assert set(normalize(a)) == set(normalize(b))


def test_value_profiles() -> None:
    emails = profile_values(["a.b@example.com", "x@example.org", "", "c@d.net; e@f.com"])
    assert emails.share("email") == 1.0 and emails.n == 3 and emails.blank == 0.25
    phones = profile_values(["(413) 555-0142", "413.555.0187", "4135550100", "+1 413 555 0199"])
    assert phones.share("phone") == 1.0
    dates = profile_values(["03/15/1945", "7/4/99", "2020-01-31"])
    assert dates.share("date") == 1.0 and dates.share("datetime") == 0.0
    stamps = profile_values(["02/23/2022 01:41:08 PM", "12/06/2023 09:02:11 AM"])
    assert stamps.share("datetime") == 1.0
    money = profile_values(["128.00", "-40.00", "(80.80)", "$1,234.50"])
    assert money.share("money") == 1.0
    flags = profile_values(["Y", "N", "N", "y"])
    assert flags.share("bool") == 1.0
    assert profile_values(["", " ", "NULL"]).n == 0

    patient = TABLES["patient"].by_name
    assert kind_fit(emails, patient["email"]) == 1.0
    assert kind_fit(phones, patient["email"]) == 0.0
    assert kind_fit(profile_values(["M", "F", "F", "U"]), patient["sex"]) == 1.0
    assert kind_fit(profile_values(["", ""]), patient["sex"]) is None


def test_values_break_name_ties() -> None:
    """Two headers a name cannot tell apart: the one holding dates is the birth date."""
    headers = ["Date1", "Date2"]
    samples = {"Date1": ["N", "Y", "N"], "Date2": ["03/15/1945", "07/30/1978", "01/02/2001"]}
    got = {c.source: c.column for c in match_columns("patient", headers, samples)}
    assert got["Date2"] in ("birthdate", "first_visit", "last_visit", "deceased_dt")
    assert got["Date1"] != got["Date2"]


def test_match_columns_is_one_to_one_and_explains() -> None:
    headers = ["PatNum", "LastName", "Surname", "Zzqx", "PROC1"]
    out = match_columns("patient", headers)
    assert all(isinstance(c, ColumnMatch) for c in out)
    assert [c.source for c in out] == headers
    by = {c.source: c for c in out}
    assert by["PatNum"].column == "pat_id" and by["PatNum"].confidence > 0.8
    assert {by["LastName"].column, by["Surname"].column} == {"lname", None}
    assert by["Zzqx"].column is None and by["Zzqx"].confidence == 0.0 and by["Zzqx"].reasons
    assert all(len(c.alternatives) <= 2 for c in out)
    wide = {c.source: c for c in match_columns("appt", ["AptNum", "PROC1", "PROC2"])}
    assert wide["PROC2"].column is None and "wide" in wide["PROC2"].reasons[0]


def test_oddly_named_file_is_found_by_its_columns(export: Path, tmp_path: Path) -> None:
    """A file named nothing like a table is the patient table when its columns are patient columns."""
    (tmp_path / "export_0017.csv").write_bytes((export / "PATIENT.CSV").read_bytes())
    (tmp_path / "manifest.json").write_text("{}")
    [f] = match_export(tmp_path)
    assert f.file == "export_0017.csv" and f.table == "patient"
    assert any("header covers" in r for r in f.reasons)


def test_every_canonical_column_has_vocabulary() -> None:
    """synonyms.py covers every column of every table (a vendor name needs something to meet)."""
    missing = [f"{t.name}.{c.name}" for t in TABLES.values() for c in t.columns
               if c.name not in synonyms.COLUMN_SYNONYMS
               and c.name not in synonyms.TABLE_COLUMN_SYNONYMS.get(t.name, {})]
    assert not missing
    assert set(synonyms.TABLE_SYNONYMS) == set(TABLES)
