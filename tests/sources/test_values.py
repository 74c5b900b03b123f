"""Typed value parsers: every §1 format, sentinel and variant, scalar == vectorised, PHI-free reasons."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dos2hl.model import ARROW_TYPES, TABLES, Column
from dos2hl.sources.values import (
    REASONS,
    ParseContext,
    clean_raw,
    parse_column,
    parse_value,
)

CTX = ParseContext(export_date=dt.date(2024, 4, 12), default_area_code="413")
CTX_NOAREA = ParseContext(export_date=dt.date(2024, 4, 12))
CTX_DMY = ParseContext(date_order="DMY", decimal_comma=True, export_date=dt.date(2024, 4, 12),
                       phone_region="GR")
R, N, F = "repaired", "nulled", "flagged"


def col(kind: str, name: str = "x", values: tuple[str, ...] = ()) -> Column:
    return Column(name=name, kind=kind, phi="R", values=values)  # type: ignore[arg-type]


def one(kind: str, s: str | None, ctx: ParseContext = CTX, name: str = "x",
        values: tuple[str, ...] = ()) -> tuple[Any, str | None, str | None]:
    """Parse one cell with parse_column and check it equals the scalar twin."""
    c = col(kind, name, values)
    p = parse_column(pa.array([s], pa.string()), c, ctx)
    got = (p.values[0].as_py(), p.codes[0].as_py(), p.actions[0].as_py())
    assert got == parse_value(s, c, ctx)
    return got


D = dt.date
T = dt.time
TS = dt.datetime

CASES: list[tuple[str, str | None, Any, str | None, str | None]] = [
    # kind, raw, value, code, action
    ("date", "03/15/2024", D(2024, 3, 15), None, None),
    ("date", "3/5/2024", D(2024, 3, 5), None, None),
    ("date", "11/02/2023", D(2023, 11, 2), None, None),
    ("date", "11/02/2023 10:41:07 AM", D(2023, 11, 2), None, None),
    ("date", "11/02/2023 00:00:00", D(2023, 11, 2), None, None),
    ("date", "03/15/24", D(2024, 3, 15), "DT2", R),
    ("date", "03/15/44", D(2044, 3, 15), "DT2", R),   # 2044 <= 2024 + 20
    ("date", "03/15/45", D(1945, 3, 15), "DT2", R),
    ("date", "03/15/50", D(1950, 3, 15), "DT2", R),
    ("date", "2023-11-02", D(2023, 11, 2), "DT3", R),
    ("date", "2023-11-02T10:41:07", D(2023, 11, 2), "DT3", R),
    ("date", "03-15-2024", D(2024, 3, 15), "DT3", R),
    ("date", "20240315", D(2024, 3, 15), "DT3", R),
    ("date", "Mar 15, 2024", D(2024, 3, 15), "DT3", R),
    ("date", "15-Mar-2024", D(2024, 3, 15), "DT3", R),
    ("date", "25/12/2020", D(2020, 12, 25), "DT3", R),  # only valid as DD/MM in an MDY column
    ("date", "01/01/1900", None, "DT1", R),
    ("date", "12/30/1899", None, "DT1", R),
    ("date", "01/01/1901", None, "DT1", R),
    ("date", "0001-01-01", None, "DT1", R),
    ("date", "0000-00-00", None, "DT1", R),
    ("date", "00/00/0000", None, "DT1", R),
    ("date", "  /  /  ", None, "DT1", R),
    ("date", "  /  /    ", None, "DT1", R),
    ("date", "", None, None, None),
    ("date", "NULL", None, None, None),
    ("date", "(null)", None, None, None),
    ("date", "N/A", None, None, None),
    ("date", "   ", None, None, None),
    ("date", None, None, None, None),
    ("date", "02/30/2020", None, "TYPE", N),
    ("date", "13/13/2020", None, "TYPE", N),
    ("date", "soon", None, "TYPE", N),
    ("date", "02/29/2024", D(2024, 2, 29), None, None),
    ("date", "02/29/2023", None, "TYPE", N),
    ("dob", "03/15/45", D(1945, 3, 15), "DT2", R),     # §14 row 1
    ("dob", "07/30/78", D(1978, 7, 30), "DT2", R),
    ("dob", "03/15/15", D(2015, 3, 15), "DT2", R),
    ("dob", "04/12/24", D(2024, 4, 12), "DT2", R),     # the export day itself
    ("dob", "04/13/24", D(1924, 4, 13), "DT2", R),     # a day after the export: last century
    ("dob", "03/15/1945", D(1945, 3, 15), None, None),
    ("dob", "01/01/1900", None, "DT1", R),
    ("datetime", "11/02/2023 10:41:07 AM", TS(2023, 11, 2, 10, 41, 7), None, None),
    ("datetime", "12/06/2023 09:02:11 PM", TS(2023, 12, 6, 21, 2, 11), None, None),
    ("datetime", "12/06/2023 12:02:11 AM", TS(2023, 12, 6, 0, 2, 11), None, None),
    ("datetime", "12/06/2023 12:02:11 PM", TS(2023, 12, 6, 12, 2, 11), None, None),
    ("datetime", "12/06/2023 21:02:11", TS(2023, 12, 6, 21, 2, 11), None, None),
    ("datetime", "12/06/2023 21:02", TS(2023, 12, 6, 21, 2), None, None),
    ("datetime", "12/06/2023", TS(2023, 12, 6), None, None),
    ("datetime", "1/6/2023 9:02 am", TS(2023, 1, 6, 9, 2), None, None),
    ("datetime", "2023-12-06 21:02:11", TS(2023, 12, 6, 21, 2, 11), "DT3", R),
    ("datetime", "2023-12-06T21:02:11Z", TS(2023, 12, 6, 21, 2, 11), "DT3", R),
    ("datetime", "12/06/23 09:02:11 PM", TS(2023, 12, 6, 21, 2, 11), "DT2", R),
    ("datetime", "12/30/1899 12:00:00 AM", None, "DT1", R),
    ("datetime", "  /  /       :  :  ", None, "DT1", R),
    ("datetime", "12/06/2023 25:02:11", None, "TYPE", N),
    ("datetime", "12/06/2023 13:02:11 PM", None, "TYPE", N),
    ("datetime", "12/06/2023 12:02:60", None, "TYPE", N),
    ("time", "08:30 AM", T(8, 30), None, None),
    ("time", "8:30 PM", T(20, 30), None, None),
    ("time", "12:00 PM", T(12, 0), None, None),
    ("time", "12:15 AM", T(0, 15), None, None),
    ("time", "08:30a", T(8, 30), None, None),
    ("time", "08:30p", T(20, 30), None, None),
    ("time", "08:30 p.m.", T(20, 30), None, None),
    ("time", "14:30", T(14, 30), None, None),
    ("time", "14:30:15", T(14, 30, 15), None, None),
    ("time", "0830", T(8, 30), None, None),
    ("time", "1430", T(14, 30), None, None),
    ("time", "495", T(8, 15), None, None),          # minutes after midnight (95 is no minute)
    ("time", "0", T(0, 0), None, None),
    ("time", "8am", T(8, 0), None, None),
    ("time", "12/30/1899 08:30:00 AM", T(8, 30), None, None),  # Access stores times on 1899-12-30
    ("time", "  :  ", None, None, None),
    ("time", "25:00", None, "TYPE", N),
    ("time", "13:00 PM", None, "TYPE", N),
    ("time", "1440", T(14, 40), None, None),
    ("time", "9999", None, "TYPE", N),
    ("money", "1234.50", Decimal("1234.50"), None, None),
    ("money", "-45.00", Decimal("-45.00"), None, None),   # §14
    ("money", "128.00", Decimal("128.00"), None, None),
    ("money", "0.00", Decimal("0.00"), None, None),
    ("money", "12", Decimal("12.00"), None, None),
    ("money", "12.5", Decimal("12.50"), None, None),
    ("money", "$1,234.50", Decimal("1234.50"), "$1", R),
    ("money", "(45.00)", Decimal("-45.00"), "$1", R),
    ("money", "(80.80)", Decimal("-80.80"), "$1", R),     # §14
    ("money", "45.00-", Decimal("-45.00"), "$1", R),
    ("money", "-$45.00", Decimal("-45.00"), "$1", R),
    ("money", "($1,234.50)", Decimal("-1234.50"), "$1", R),
    ("money", "+12.00", Decimal("12.00"), "$1", R),
    ("money", "45.00 CR", Decimal("-45.00"), "$1", R),
    ("money", "$ 45.00", Decimal("45.00"), "$1", R),
    ("money", "12.345", Decimal("12.35"), "$1", R),
    ("money", "(-45.00)", None, "TYPE", N),
    ("money", "12a", None, "TYPE", N),
    ("money", "1,000,000,000,000.00", None, "TYPE", N),
    ("int", "000412", 412, "ID1", R),                     # §14
    ("int", "412", 412, None, None),
    ("int", "0", 0, None, None),
    ("int", "-5", -5, None, None),
    ("int", "-16777216", -16777216, None, None),
    ("int", "+7", 7, "FMT", R),
    ("int", "1,234", 1234, "FMT", R),
    ("int", "12.00", 12, "FMT", R),
    ("int", "12.5", None, "TYPE", N),
    ("int", "A412", None, "TYPE", N),
    ("int", "99999999999999999999", None, "TYPE", N),
    ("bool", "Y", True, None, None),
    ("bool", "N", False, None, None),              # §14 DELETED_FLG
    ("bool", "y", True, None, None),
    ("bool", "T", True, None, None),
    ("bool", "F", False, None, None),
    ("bool", "1", True, None, None),
    ("bool", "0", False, None, None),
    ("bool", "-1", True, None, None),
    ("bool", "X", True, None, None),
    ("bool", "YES", True, None, None),
    ("bool", "no", False, None, None),
    ("bool", "TRUE", True, None, None),
    ("bool", "False", False, None, None),
    ("bool", "", None, None, None),
    ("bool", "maybe", None, "TYPE", N),
    ("phone", "(413) 555-0142", "+14135550142", None, None),        # §14
    ("phone", "413.555.0187", "+14135550187", "PH1", R),              # §14
    ("phone", "4135550187", "+14135550187", "PH1", R),                # §14
    ("phone", "413-555-0187", "+14135550187", "PH1", R),
    ("phone", "413 555 0187", "+14135550187", "PH1", R),
    ("phone", "(413)555-0187", "+14135550187", "PH1", R),
    ("phone", "1-413-555-0187", "+14135550187", "PH1", R),
    ("phone", "+1 413 555 0187", "+14135550187", "PH1", R),
    ("phone", "+14135550187", "+14135550187", "PH1", R),
    ("phone", "413/555-0187", "+14135550187", "PH1", R),
    ("phone", "555-0142", "+14135550142", "PH1", R),                  # 7 digits + area code
    ("phone", "5550142", "+14135550142", "PH1", R),
    ("phone", "413-555-0142 x123", "+14135550142", "PH1", R),
    ("phone", "(413) 555-0142 ext. 12", "+14135550142", "PH1", R),
    ("phone", "413-555-0142 #7", "+14135550142", "PH1", R),
    ("phone", "555-0142 cell", "+14135550142", "PH1", R),
    ("phone", "call after 5 (413) 555-0142", "+14135550142", "PH1", R),
    ("phone", "cell: 413.555.0142 (mom)", "+14135550142", "PH1", R),
    ("phone", "000-000-0000", None, "PH2", R),
    ("phone", "999-999-9999", None, "PH2", R),
    ("phone", "111-111-1111", None, "PH2", R),
    ("phone", "(222) 222-2222", None, "PH2", R),
    ("phone", "0000000", None, "PH2", R),
    ("phone", "(   )   -    ", None, None, None),
    ("phone", "   -    ", None, None, None),
    ("phone", "12", None, "PH1", N),
    ("phone", "no phone", None, "PH1", N),
    ("phone", "(013) 555-0142", None, "PH1", N),
    ("email", "pepe@example.com", "pepe@example.com", None, None),
    ("email", "Pepe@Example.COM", "pepe@example.com", None, None),
    ("email", "garcia.fam@example.com", "garcia.fam@example.com", None, None),
    ("email", "pepe@example.com; garcia.fam@example.com", "pepe@example.com", "EM2", R),  # §14
    ("email", "pepe@example.com, garcia.fam@example.com", "pepe@example.com", "EM2", R),
    ("email", "pepe@example.com garcia.fam@example.com", "pepe@example.com", "EM2", R),
    ("email", "none; pepe@example.org", "pepe@example.org", "EM2", R),
    ("email", "<pepe@example.net>", "pepe@example.net", "EM2", R),
    ("email", "mailto:pepe@example.net", "pepe@example.net", "EM2", R),
    ("email", "junk", None, "EM2", N),
    ("email", "pepe@examplecom", None, "EM2", N),
    ("email", "pepe.example.com", None, "EM2", N),
    ("email", "pepe@@example.com", None, "EM2", N),
    ("zip", "01103", "01103", None, None),
    ("zip", "01103-1234", "01103-1234", None, None),
    ("zip", "1103", "01103", "ZIP1", R),                               # §14
    ("zip", "501", "00501", "ZIP1", R),
    ("zip", "011031234", "01103-1234", "ZIP1", R),
    ("zip", "11031234", "01103-1234", "ZIP1", R),
    ("zip", "1103-1234", "01103-1234", "ZIP1", R),
    ("zip", "01103-", "01103", "ZIP1", R),
    ("zip", "K1A 0B6", "K1A 0B6", "FMT", F),
    ("state", "MA", "MA", None, None),
    ("state", "ma", "MA", None, None),
    ("state", "Massachusetts", "MA", "FMT", R),
    ("state", "new  york", "NY", "FMT", R),
    ("state", "Mass", "MASS", "FMT", F),
    ("code", "DR1", "DR1", None, None),
    ("code", "dr1", "DR1", None, None),
    ("code", " HYG2 ", "HYG2", None, None),
    ("lookup", "self", "SELF", None, None),
    ("str", "  GARCIA JR ", "GARCIA JR", None, None),
    ("str", "JOSÉ", "JOSÉ", None, None),
    ("str", "JosÃ©", "José", "ENC3", R),
    ("str", "MÃ¼ller", "Müller", "ENC3", R),
    ("str", "SÃO PAULO", "SÃO PAULO", None, None),   # real Ã: left alone
    ("str", "O\x00Brien", "O Brien", "CSV4", R),
    ("str", "  -  -    ", None, None, None),             # §14 SSN mask
    ("str", "900-12-3456", "900-12-3456", None, None),
    ("str", "-", "-", None, None),  # a bare "-" is data (LOOKUP.SIGN); padded, it is a mask
    ("str", "  -  ", None, None, None),
    ("memo", "PCN allergy\r\npremed - knee", "PCN allergy\npremed - knee", None, None),  # §14
    ("memo", "line1\rline2", "line1\nline2", None, None),
    ("memo", "  keep  leading and trailing  ", "  keep  leading and trailing  ", None, None),
    ("memo", "tab\tkept", "tab\tkept", None, None),
    ("memo", "{\\rtf1\\ansi\\ansicpg1252 x}", "{\\rtf1\\ansi\\ansicpg1252 x}", None, None),
    ("memo", "nul\x00here\x07", "nulhere", "CSV4", R),
    ("memo", "JosÃ© called", "José called", "ENC3", R),
    ("memo", "   ", None, None, None),
    ("memo", "NULL", None, None, None),
    ("memo", "-", "-", None, None),
]


@pytest.mark.parametrize(("kind", "raw", "value", "code", "action"), CASES)
def test_parse(kind: str, raw: str | None, value: Any, code: str | None, action: str | None) -> None:
    assert one(kind, raw) == (value, code, action)


ENUM_VALUES = ("M", "F", "U", "O")


@pytest.mark.parametrize(("raw", "expected"), [
    ("M", ("M", None, None)), ("f", ("F", None, None)), (" u ", ("U", None, None)),
    ("Q", (None, "ENUM", N)), ("", (None, None, None)),
])
def test_enum(raw: str, expected: tuple[Any, ...]) -> None:
    assert one("enum", raw, values=ENUM_VALUES) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("D0120", ("D0120", None, None)), ("d0120", ("D0120", None, None)),
    ("0120", ("D0120", "CD1", R)), ("120", ("D0120", "CD1", R)), ("D120", ("D0120", "CD1", R)),
    ("2750.01", ("D2750", "CD1", R)), ("D2750.01", ("D2750", "CD1", R)),
    ("BROKEN", ("BROKEN", None, None)), ("nc", ("NC", None, None)), ("X1234", ("X1234", None, None)),
    ("D1203", ("D1203", None, None)),
])
def test_proc_code(raw: str, expected: tuple[Any, ...]) -> None:
    assert one("code", raw, name="proc_code") == expected


def test_proc_code_local_code_set() -> None:
    ctx = ParseContext(export_date=dt.date(2024, 4, 12), cdt=False)
    assert one("code", "0120", ctx, name="proc_code") == ("0120", None, None)


@pytest.mark.parametrize(("raw", "expected"), [
    ("3", ("3", None, None)), ("32", ("32", None, None)), ("A", ("A", None, None)),
    ("T", ("T", None, None)), ("51", ("51", None, None)), ("82", ("82", None, None)),
    ("AS", ("AS", None, None)), ("TS", ("TS", None, None)), ("UR", ("UR", None, None)),
    ("LL", ("LL", None, None)), ("U", ("U", None, None)), ("L", ("L", None, None)),
    ("3,14", ("3,14", None, None)), ("3-5", ("3-5", None, None)), ("2,3,4,5", ("2,3,4,5", None, None)),
    ("#3", ("3", "TH1", R)), ("a", ("A", "TH1", R)), ("#3 #14", ("3,14", "TH1", R)),
    ("3, 14", ("3,14", "TH1", R)), ("03", ("3", "TH1", R)), ("3 - 5", ("3-5", "TH1", R)),
    ("33", ("33", "TH1", F)), ("36", ("36", "TH1", F)), ("u", ("U", "TH1", R)),
    ("x9", ("X9", "TH1", F)),
])
def test_tooth(raw: str, expected: tuple[Any, ...]) -> None:
    assert one("str", raw, name="tooth") == expected
    assert one("str", raw, name="tooth_list") == expected


def test_phone_without_area_code() -> None:
    assert one("phone", "555-0142", CTX_NOAREA) == (None, "PH1", N)
    assert one("phone", "(413) 555-0142", CTX_NOAREA) == ("+14135550142", None, None)


@pytest.mark.parametrize(("kind", "raw", "expected"), [
    ("date", "15/03/2024", (D(2024, 3, 15), None, None)),
    ("date", "15/03/44", (D(2044, 3, 15), "DT2", R)),
    ("date", "2024-03-15", (D(2024, 3, 15), "DT3", R)),
    ("date", "03/25/2024", (D(2024, 3, 25), "DT3", R)),
    ("date", "15.03.2024", (D(2024, 3, 15), "DT3", R)),
    ("datetime", "15/03/2024 14:30:00", (TS(2024, 3, 15, 14, 30), None, None)),
    ("money", "1234,50", (Decimal("1234.50"), None, None)),
    ("money", "-45,00", (Decimal("-45.00"), None, None)),
    ("money", "1.234,50", (Decimal("1234.50"), "$1", R)),
    ("money", "(1.234,50)", (Decimal("-1234.50"), "$1", R)),
    ("money", "1234.50", (Decimal("1234.50"), "$1", R)),
    ("money", "€ 12,50", (Decimal("12.50"), "$1", R)),
    ("phone", "2101234567", ("+302101234567", None, None)),
    ("phone", "210 123 4567", ("+302101234567", "PH1", R)),
    ("phone", "6912345678", ("+306912345678", None, None)),
    ("phone", "+30 210 123 4567", ("+302101234567", "PH1", R)),
    ("phone", "2222222222", (None, "PH2", R)),
])
def test_greek_context(kind: str, raw: str, expected: tuple[Any, ...]) -> None:
    assert one(kind, raw, CTX_DMY) == expected


def test_time_digits_column_mode() -> None:
    """A column with a bare number that is no valid HHMM is read as minutes after midnight."""
    c = col("time")
    p = parse_column(pa.array(["480", "495", "1020", "08:30 AM"]), c, CTX)
    assert p.values.to_pylist() == [T(8, 0), T(8, 15), T(17, 0), T(8, 30)]
    p = parse_column(pa.array(["0800", "1020"]), c, CTX)
    assert p.values.to_pylist() == [T(8, 0), T(10, 20)]


def test_clean_raw() -> None:
    raw = pa.array(["  x ", "", "NULL", "(null)", "N/A", "   ", "  /  /  ", "(   )   -    ", "  -  -    ",
                    None, "0", "-1", "n/a"])
    assert clean_raw(raw).to_pylist() == ["x", None, None, None, None, None, None, None, None, None,
                                           "0", "-1", None]


def test_types_lengths_and_chunked_input() -> None:
    for name, kind in [(k, k) for k in ARROW_TYPES]:
        c = col(kind, values=ENUM_VALUES)
        raw = pa.chunked_array([["1", None], ["x"]], pa.string())
        p = parse_column(raw, c, CTX)
        assert p.values.type == ARROW_TYPES[kind], name
        assert len(p.values) == len(p.codes) == len(p.actions) == 3
        assert p.codes.type == p.actions.type == pa.string()


def test_empty_and_all_null_columns() -> None:
    for kind in ARROW_TYPES:
        for raw in (pa.array([], pa.string()), pa.array([None, None], pa.string()), pa.nulls(2)):
            p = parse_column(raw, col(kind, values=ENUM_VALUES), CTX)
            assert len(p.values) == len(raw) and p.values.null_count == len(raw)
            assert p.codes.null_count == len(raw)


CANONICAL: dict[str, list[str]] = {
    "int": ["412", "0", "-5"], "code": ["DR1", "L001"], "str": ["Garcia", "12 Elm St"],
    "memo": ["PCN allergy\npremed", "ok"], "date": ["03/15/2024", "3/5/2024"],
    "dob": ["07/30/1978"], "time": ["08:30 AM", "04:15 PM"],
    "datetime": ["11/02/2023 10:41:07 AM", "11/02/2023"], "money": ["1234.50", "-45.00", "0.00"],
    "bool": ["Y", "N"], "enum": ["M", "F"], "lookup": ["SELF"], "phone": ["(413) 555-0142"],
    "email": ["pepe@example.com"], "zip": ["01103", "01103-1234"], "state": ["MA"],
}


@pytest.mark.parametrize("kind", sorted(CANONICAL))
def test_canonical_input_has_no_codes(kind: str) -> None:
    cells = CANONICAL[kind] * 50 + [None, ""]
    p = parse_column(pa.array(cells, pa.string()), col(kind, values=ENUM_VALUES), CTX)
    assert p.codes.null_count == len(cells) and p.actions.null_count == len(cells)
    assert p.values.null_count == 2


def test_patient_example_row() -> None:
    """EXPORT_FORMAT.md §14 row 000412, column by column through the canonical model."""
    pat = TABLES["patient"].by_name
    row = {"pat_id": "000412", "birthdate": "03/15/45", "ssn": "  -  -    ", "zip": "1103",
           "hphone": "(413) 555-0142", "cphone": "413.555.0187",
           "email": "pepe@example.com; garcia.fam@example.com", "last_visit": "11/02/2023",
           "med_alert": "PCN allergy\r\npremed - knee", "bal_total": "-45.00", "deleted_flg": "N",
           "sex": "M", "st": "MA", "loc_id": "L001"}
    want = {"pat_id": 412, "birthdate": D(1945, 3, 15), "ssn": None, "zip": "01103",
            "hphone": "+14135550142", "cphone": "+14135550187", "email": "pepe@example.com",
            "last_visit": D(2023, 11, 2), "med_alert": "PCN allergy\npremed - knee",
            "bal_total": Decimal("-45.00"), "deleted_flg": False, "sex": "M", "st": "MA",
            "loc_id": "L001"}
    for name, raw in row.items():
        p = parse_column(pa.array([raw]), pat[name], CTX)
        assert p.values[0].as_py() == want[name], name
    ledger = TABLES["ledger"].by_name
    p = parse_column(pa.array(["(80.80)", "-131.20"]), ledger["amount"], CTX)
    assert p.values.to_pylist() == [Decimal("-80.80"), Decimal("-131.20")]
    assert p.codes.to_pylist() == ["$1", None]


def test_reasons_cover_every_code_and_hold_no_digits_of_values() -> None:
    kinds = {k: col(k, values=ENUM_VALUES) for k in ARROW_TYPES}
    codes: set[str] = set()
    for kind, raw, *_ in CASES:
        codes.add(str(one(kind, raw)[1]))
    codes |= {"ENUM", "CD1", "TH1"}
    codes.discard("None")
    assert codes <= set(REASONS), codes - set(REASONS)
    assert kinds
    for code, reason in REASONS.items():
        assert reason and "{" not in reason, code
        for phi in ("555", "@example", "GARCIA", "Garcia", "José"):
            assert phi not in reason, code


# ---- properties ----------------------------------------------------------------------------------
KINDS = sorted(ARROW_TYPES)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS + ["proc_code", "tooth"]),
       cells=st.lists(st.one_of(st.none(), st.text(max_size=30),
                                st.from_regex(r"[0-9/:. ()$,\-+APMapm@xX#]{0,24}", fullmatch=True)),
                      max_size=40),
       dmy=st.booleans())
def test_never_raises(kind: str, cells: list[str | None], dmy: bool) -> None:
    ctx = CTX_DMY if dmy else CTX
    special = {"proc_code": col("code", "proc_code"), "tooth": col("str", "tooth")}
    c = special.get(kind) or col(kind, values=ENUM_VALUES)
    p = parse_column(pa.array(cells, pa.string()), c, ctx)
    assert p.values.type == ARROW_TYPES[c.kind]
    assert len(p.values) == len(p.codes) == len(p.actions) == len(cells)
    assert p.codes.is_null().equals(p.actions.is_null())
    for s, code in zip(cells, p.codes.to_pylist(), strict=True):
        if kind not in ("time",):
            assert code == parse_value(s, c, ctx)[1]


def _fmt_date(d: dt.date, style: int) -> str:
    return [f"{d:%m/%d/%Y}", f"{d.month}/{d.day}/{d.year}", f"{d:%m/%d/%y}", f"{d:%Y-%m-%d}",
            f"{d:%m/%d/%Y} 00:00:00", f"{d:%m-%d-%Y}"][style]


def _fmt_ts(t: dt.datetime, style: int) -> str:
    return [f"{t:%m/%d/%Y %I:%M:%S %p}", f"{t:%m/%d/%Y %H:%M:%S}", f"{t:%m/%d/%Y %H:%M}",
            f"{t:%Y-%m-%d %H:%M:%S}", f"{t:%Y-%m-%dT%H:%M:%S}", f"{t:%m/%d/%y %I:%M %p}",
            f"{t:%m/%d/%Y %I:%M%p}".lower()][style]


def _fmt_money(v: Decimal, style: int) -> str:
    a = abs(v)
    neg = v < 0
    return [f"{v:.2f}", f"{'-' if neg else ''}${a:,.2f}", f"({a:.2f})" if neg else f"{a:.2f}",
            f"{a:.2f}-" if neg else f"{a:.2f}", f"{v:.1f}", f"{a:,.2f}"][style]


def _fmt_phone(d: str, style: int) -> str:
    a, e, n = d[:3], d[3:6], d[6:]
    return [f"({a}) {e}-{n}", f"{a}.{e}.{n}", f"{a}{e}{n}", f"{a}-{e}-{n}", f"1-{a}-{e}-{n}",
            f"{a} {e} {n}", f"{e}-{n}", f"+1 {a} {e} {n}", f"{a}-{e}-{n} x12", f"{e}-{n} cell"][style]


dates = st.dates(dt.date(1800, 1, 1), dt.date(2100, 12, 31))
VALID: dict[str, st.SearchStrategy[str]] = {
    "date": st.builds(_fmt_date, dates, st.integers(0, 5)),
    "dob": st.builds(_fmt_date, dates, st.integers(0, 5)),
    "datetime": st.builds(_fmt_ts, st.datetimes(dt.datetime(1800, 1, 1), dt.datetime(2100, 1, 1)),
                          st.integers(0, 6)),
    "money": st.builds(_fmt_money, st.decimals(-10**6, 10**6, places=2, allow_nan=False),
                       st.integers(0, 5)),
    "int": st.builds(lambda i, w: str(i).zfill(w), st.integers(0, 10**12), st.integers(0, 10)),
    "phone": st.builds(_fmt_phone, st.from_regex(r"[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True),
                       st.integers(0, 9)),
    "zip": st.from_regex(r"[0-9]{3,5}(-[0-9]{4})?|[0-9]{9}", fullmatch=True),
    "email": st.from_regex(r"[a-zA-Z0-9_]{1,6}(\.[a-zA-Z0-9_+-]{1,6})?@example\.(com|org|net)"
                           r"([;, ]+x@example\.com)?",
                           fullmatch=True),
    "bool": st.sampled_from(["Y", "N", "y", "T", "F", "1", "0", "-1", "X", "YES", "no", "true"]),
    "time": st.builds(lambda t, s: [f"{t:%I:%M %p}", f"{t:%I:%M}{'a' if t.hour < 12 else 'p'}",
                                    f"{t:%H:%M}", f"{t:%H:%M:%S}"][s], st.times(), st.integers(0, 3)),
}


@settings(max_examples=40, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(VALID)))
def test_vectorised_equals_scalar_on_valid_formats(data: st.DataObject, kind: str) -> None:
    cells = data.draw(st.lists(st.one_of(VALID[kind], st.none()), min_size=1, max_size=30))
    c = col(kind)
    p = parse_column(pa.array(cells, pa.string()), c, CTX)
    got = list(zip(p.values.to_pylist(), p.codes.to_pylist(), p.actions.to_pylist(), strict=True))
    want = [parse_value(s, c, CTX) for s in cells]
    assert got == want
    assert all(v is not None for s, (v, _, _) in zip(cells, got, strict=True)
               if s is not None and kind not in ("date", "dob", "datetime"))
