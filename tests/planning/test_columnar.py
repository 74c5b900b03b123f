"""The column-wise transform (planning/columnar.py) gives what the cell-by-cell one gives, cell for cell,
on the values where a shortcut could go wrong: blanks, "-0.0", LOOKUP codes, timestamps before 1970,
zoned timestamps, list values shared between rows, and rows whose parents are found through a parent."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
import pytest

from dos2hl.mapping.model import Entry
from dos2hl.mapping.model import Mapping as FieldMap
from dos2hl.planning.columnar import column_values, records, value_of
from dos2hl.planning.keys import stable_key
from dos2hl.planning.transform import Transformer

TYPES = ("TEXT", "LARGE_TEXT", "STANDARD", "DATE", "MONETORY", "NUMERICAL", "CHECKBOX", "MULTIPLE_OPTIONS",
         "SINGLE_OPTIONS")

# ledger's columns (the map checks the names), some holding another type than staging gives them
COLUMNS: dict[str, pa.Array] = {
    "note": pa.array(["a", "", None, "a", " b ", "Y"], pa.string()),
    "trans_id": pa.array([1, 0, None, -5, 1, 2**40], pa.int64()),
    "trans_dt": pa.array([dt.date(2024, 1, 2), None, dt.date(1900, 3, 1), dt.date(2024, 1, 2),
                          dt.date(1, 1, 1), dt.date(9999, 12, 31)], pa.date32()),
    "post_dttm": pa.array([dt.datetime(1969, 12, 31, 23, 59, 59), None, dt.datetime(2024, 3, 10, 2, 30),
                           dt.datetime(2024, 3, 10, 0, 0), dt.datetime(2024, 3, 10, 0, 0),
                           dt.datetime(1, 1, 1)], pa.timestamp("ms")),
    "description": pa.array([dt.datetime(2024, 1, 1, 23, 30, tzinfo=dt.timezone.utc)] * 3 + [None] * 3,
                      pa.timestamp("us", tz="America/Chicago")),
    "amount": pa.array([decimal.Decimal("1.10"), decimal.Decimal("-0.00"), None, decimal.Decimal("0.10"),
                        decimal.Decimal("123456789012.34"), decimal.Decimal("1.10")], pa.decimal128(14, 2)),
    "deleted_flg": pa.array([True, False, None, True, False, True], pa.bool_()),
    "deposit_id": pa.array([0.0, -0.0, None, float("nan"), 1.5, -0.0], pa.float64()),
    "pay_method": pa.array(["CC", "", None, "XX", "CC", "1"], pa.string()),  # a LOOKUP column (PAYTYPE)
    "check_no": pa.nulls(6, pa.string()),
}


def _tf(entries: list[Entry]) -> Transformer:
    return Transformer(FieldMap(fields=entries), location="L001", key=stable_key,
                       lookups={"PAYTYPE": {"CC": "Credit card", "": "(blank)", "1": "One"}})


def _cell(v: Any) -> Any:  # floats by their text: -0.0 is not 0.0, nan is nan
    return repr(v) if isinstance(v, float) else v


@pytest.mark.parametrize("typ", TYPES)
@pytest.mark.parametrize("column", sorted(COLUMNS))
@pytest.mark.parametrize("values", [None, {"a": "Alpha", "CC": "Card", "1": "one"}])
def test_column_values_are_the_cells_values(column: str, typ: str, values: dict[str, str] | None) -> None:
    e = Entry(source=f"LEDGER.{column.upper()}", table="ledger", column=column, target="custom_objects."
              f"patient_ledger.{column}", type=typ, confidence=1.0, values=values)
    tf = _tf([e])
    col = COLUMNS[column]
    rows = [{column: v} for v in col.to_pylist()]
    try:  # the cell-by-cell conversion, nothing remembered
        want = [_cell(tf.convert_raw(e, r[column])) for r in rows]
    except (TypeError, ValueError) as exc:  # a type that cannot take these cells fails every way
        with pytest.raises(type(exc)):
            column_values(tf, e, col, len(col))
        with pytest.raises(type(exc)):
            [tf.value(e, r, "k") for r in rows]
        return
    got = column_values(tf, e, pa.chunked_array([col[:2], col[2:]]), len(col))
    assert [_cell(v) for v in got] == want
    for _ in range(2):  # Transformer.value remembers a cell's conversion: the second time too
        assert [_cell(tf.value(e, r, "k")) for r in rows] == want
    value = value_of(tf, (pa.table({column: col}), rows, [e]))
    assert [_cell(value(e, r, "k")) for r in rows] == want
    lists = [v for v in got if isinstance(v, list)]
    assert len({id(v) for v in lists}) == len(lists)  # no two records share one list


def test_records_join_parents_through_a_parent_as_the_rows_did() -> None:
    """An insurance record finds its plan through its subscription and its carrier through its plan; a
    parent's value yields to the record's own."""
    def entry(table: str, column: str, name: str) -> Entry:
        return Entry(source=f"{table.upper()}.{column.upper()}", table=table, column=column,
                     target=f"custom_objects.insurance_records.{name}", type="TEXT", confidence=1.0)

    tf = _tf([entry("patins", "pat_member_id", "member"), entry("inssub", "member_id", "group"),
              entry("insplan", "group_name", "plan"), entry("insco", "carrier_name", "carrier"),
              entry("insco", "payer_id", "member")])
    rows = pa.table({"patins_id": [1, 2, 3], "pat_id": [10, 11, 12], "sub_rec_id": [100, 101, None],
                     "pat_member_id": ["1", None, "2"], "plan_id": [None, 7, None]})
    parents = {"inssub": {100: {"sub_rec_id": 100, "plan_id": 5, "member_id": "G1"},
                          101: {"sub_rec_id": 101, "plan_id": 5, "member_id": "G2"}},
               "insplan": {5: {"plan_id": 5, "carrier_id": 9, "group_name": "Basic"},
                           7: {"plan_id": 7, "carrier_id": 9, "group_name": "Gold"}},
               "insco": {9: {"carrier_id": 9, "carrier_name": "Acme", "payer_id": "P"}}}
    got, excluded = records(tf, "custom_objects.insurance_records", rows, parents, {12})
    assert excluded == 1
    assert [r.properties for r in got] == [
        {"group": "G1", "plan": "Basic", "carrier": "Acme", "member": "1", "source_id": 1},
        {"group": "G2", "plan": "Gold", "carrier": "Acme", "member": "P", "source_id": 2},
    ]
    assert got == records(tf, "custom_objects.insurance_records", rows.to_pylist(), parents, {12})[0]
