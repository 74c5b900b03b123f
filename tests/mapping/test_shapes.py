"""Masked value shapes: the review page's and the model proposer's only view of an export's values."""

from __future__ import annotations

import re

import pytest

from dos2hl.mapping.shapes import column_shape, export_shapes, mask


@pytest.mark.parametrize("value, shape", [
    ("Smith", "Aa… (5)"),
    ("SMITH", "A… (5)"),
    ("McDonald", "Aa… (8)"),
    ("555-867-5309", "###-###-####"),
    ("(555) 867-5309", "(###) ###-####"),
    ("1984-02-29", "YYYY-MM-DD"),
    ("02/29/1984", "MM/DD/YYYY"),
    ("2/9/1984", "M/D/YYYY"),
    ("j.doe@example.com", "a….a…@a….a…"),
    ("D1110;D0120, D0274", "A…####;A…####, A…####"),
    ("", "(empty)"),
    ("NULL", "(empty)"),
    ("Patient reports sensitivity on the lower left molar", "text (8 words)"),
    ("Zoë", "Aa…?"),
])
def test_a_shape_names_the_layout_and_keeps_no_letter_or_digit(value: str, shape: str) -> None:
    assert mask(value) == shape
    # nothing of the value survives: no digit at all, and letters only from the fixed vocabulary
    bare = re.sub(r"\(\d+\)|\(\d+ words\)|#… \(\d+\)", "", shape)
    assert not re.search(r"\d", bare)
    assert set(re.sub(r"YYYY|MM|DD|YY|hh|mm|ss|M|D|text|empty|A|a", "", bare)) <= set("#… ()-/.:@,;+_&'*$%?T")


def test_a_column_keeps_its_common_shapes_null_rate_and_distinct_count() -> None:
    s = column_shape(["1984-02-29", "1990-01-01", "", "NULL", "1990-01-01", "x7"])
    assert s.rows == 6 and s.nulls == 2 and s.distinct == 3
    assert s.shapes[0] == ("YYYY-MM-DD", 3)
    assert s.null_rate == pytest.approx(2 / 6)
    assert "YYYY-MM-DD 50%" in s.describe() and "3 distinct" in s.describe()


def test_an_exports_shapes_are_keyed_by_file_and_column_and_hold_no_value(tmp_path) -> None:
    (tmp_path / "Pats.csv").write_text("PatID,Last,Phone\n1,Quixotesque,555-867-5309\n2,Zamboni,\n",
                                       encoding="utf-8")
    shapes = export_shapes(tmp_path)
    assert set(shapes) == {"Pats.PatID", "Pats.Last", "Pats.Phone"}
    assert shapes["Pats.Phone"].shapes == (("###-###-####", 1), ("(empty)", 1))
    text = repr(shapes)
    for value in ("Quixotesque", "Zamboni", "867", "5309"):
        assert value not in text
