"""The export writer's record line: joined once and quoted only when a cell needs it, byte for byte
what quoting each cell would write (the generator's output must not change with the fast path)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dos2hl.generate.formats import FileStyle, RawText, formatter, quote_field
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
