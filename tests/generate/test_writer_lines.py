"""The export writer's record line: joined once and quoted only when a cell needs it, byte for byte
what quoting each cell would write (the generator's output must not change with the fast path)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dos2hl.generate import writer
from dos2hl.generate.formats import FileStyle, RawText, formatter, quote_field, row_formatter
from dos2hl.generate.writer import DefectLog, TableSink
from dos2hl.model import TABLES

CELLS = [
    ["1", "Smith", "", "02/03/2020"],
    ["1", "Smith, Jr", "x"],  # the delimiter inside a cell
    ['say "hi"', "a"],  # the quote char
    ["line\r\nbreak", "b"],  # CR LF
    ["bare\ncr", "c"],
    ["cr\ronly", "d"],
    [RawText("broken\r\nrow"), "e"],  # CSV2: written as it is
    [RawText("plain"), "f,g"],
    ["~tilde~", "h"],
    ["a|b", "i"],
    [""],
]


def _sink(tmp_path: Path, style: FileStyle) -> TableSink:
    (tmp_path / "e").mkdir(exist_ok=True)
    (tmp_path / "t").mkdir(exist_ok=True)
    t = TABLES["patient"]
    return TableSink("patient", export_dir=tmp_path / "e", truth_dir=tmp_path / "t", file_name="PATIENT.CSV",
                     headers={c: c.upper() for c in t.column_names}, style=style,
                     defects=DefectLog(tmp_path / "d.jsonl"), mess=None)


@pytest.mark.parametrize("style", [FileStyle(), FileStyle(quote="~", ragged=True), FileStyle(delimiter="|"),
                                   FileStyle(delimiter="\t")])
@pytest.mark.parametrize("cells", CELLS)
def test_line_equals_quoting_every_cell(tmp_path: Path, style: FileStyle, cells: list[str]) -> None:
    d, q = style.delimiter, style.quote
    want = d.join(quote_field(c, d, q) for c in cells) + (d + "\r\n" if style.ragged else "\r\n")
    assert _sink(tmp_path, style)._line(list(cells)) == want


def test_cached_formatters_spell_as_before() -> None:
    col = TABLES["patient"].by_name
    day = dt.date(2001, 2, 3)
    assert formatter(col["birthdate"], FileStyle())(day) == "02/03/2001"
    assert formatter(col["birthdate"], FileStyle(two_digit_year=True))(day) == "02/03/01"
    appt = TABLES["appt"].by_name
    t = next(c for c in appt.values() if c.kind == "time")
    assert formatter(t, FileStyle())(dt.time(13, 5)) == "01:05 PM"


def _values(kind: str, rng: random.Random) -> list[Any]:
    """Spellings worth checking per kind (edges: zero and negative zero money, midnight and noon, years
    before 1000, a memo line break, leading zeros, codes with and without the D)."""
    if kind == "int":
        return [0, 7, 123456, 1234567, -5, rng.randint(0, 10**9)]
    if kind in ("date", "dob"):
        return [dt.date(2001, 2, 3), dt.date(1999, 12, 31), dt.date(5, 1, 9), dt.date(2024, 10, 10)]
    if kind == "datetime":
        hours = (0, 1, 11, 12, 13, 23)
        return [dt.datetime(2020, 3, 4, h, rng.randint(0, 59), rng.randint(0, 59)) for h in hours] + [
            dt.datetime(987, 6, 5, 4, 3, 2)]
    if kind == "time":
        return [dt.time(0, 0), dt.time(12, 30), dt.time(23, 59, 58), dt.time(9, 5)]
    if kind == "money":
        return [Decimal("0.00"), -Decimal("0.00"), Decimal("1.5"), Decimal("1.50"), Decimal("-12.34"),
                Decimal("1234567.89"), Decimal("1.005"), Decimal(7)]
    if kind == "bool":
        return [True, False]
    if kind == "phone":
        return ["+14135550142", "+12125550100"]
    if kind == "memo":
        return ["one\ntwo", "plain", "a\r\nb"]
    if kind == "zip":
        return ["01234", "90210", "00501-1234"]
    if kind == "code":
        return ["D0120", "D1110", "DR1", "X123"]
    return ["text", "Smith, Jr", ""]


ODD_STYLE = FileStyle(two_digit_year=True, codes_without_d=True, zip_strip=True,
                      pad_id_cols=frozenset({"pat_id", "guar_id"}))


@pytest.mark.parametrize("style", [FileStyle(), ODD_STYLE])
def test_row_formatter_spells_as_formatter(style: FileStyle) -> None:
    """The compiled per-file row formatter writes what the per-column formatters write, for every table."""
    rng = random.Random(3)
    for table in TABLES.values():
        fmts = [formatter(c, style) for c in table.columns]
        cells = row_formatter(table.columns, style)
        options = [_values(c.kind, rng) + [None] for c in table.columns]
        for i in range(12):
            row = {c.name: opts[(i + j) % len(opts)]
                   for j, (c, opts) in enumerate(zip(table.columns, options, strict=True))}
            want = ["" if (v := row[c.name]) is None else f(v)
                    for c, f in zip(table.columns, fmts, strict=True)]
            assert cells(row) == want, table.name


JSON_VALUES = [
    "a", 'é☃"\\\n\t', None, True, False, 0, -5, 10**20, Decimal("1.50"), -Decimal("0.00"),
    dt.date(2020, 1, 2), dt.datetime(2020, 1, 2, 3, 4, 5), dt.time(1, 2), {"trans_id": 1, "b": "x"}, {},
    [1, "a"], (1, 2), 1.5, {1: 2},
]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_defect_json_is_json_dumps(value: Any) -> None:
    """defects.jsonl is spelled by hand (one line per defect, tens of thousands per run): as json.dumps."""
    text = json.dumps(value, default=str)
    assert writer._json(value) == text
    assert writer.value_hash(value) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("scope_file", [False, True])
def test_defect_line_is_json_dumps(tmp_path: Path, scope_file: bool) -> None:
    log = DefectLog(tmp_path / "d.jsonl")
    kw: dict[str, Any] = dict(defect_id="DT3", file="LEDGER.CSV", table="ledger", record=12, line=13,
                              key={"trans_id": 12}, column="TRANS_DT", canonical_column="trans_dt",
                              expect="repair", destroyed=False)
    log.add(**kw, clean_value=dt.date(2020, 1, 2), scope_file=scope_file)
    log.close()
    want = {**kw, "clean_value_hash": None if scope_file else writer.value_hash(dt.date(2020, 1, 2))}
    if scope_file:
        want["scope"] = "file"
    assert (tmp_path / "d.jsonl").read_text() == json.dumps(want, default=str) + "\n"
