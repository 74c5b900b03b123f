"""Exports shaped like another vendor's, read through a field map: list columns become child rows,
a denormalised coverage file feeds four tables, a table split over two files is joined on its key.
The fixtures are hand-made (tests/fixtures/shaped); every staged row is asserted exactly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from dos2hl.api import open_export
from dos2hl.sources.reader import ExportReader

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shaped"
EXPORT_DATE = dt.date(2024, 6, 28)


def read(name: str) -> tuple[ExportReader, dict[str, pa.Table]]:
    """Read fixture export ``name`` with its map; every chunk's rows, findings and quarantine."""
    reader = ExportReader(open_export(FIXTURES / name, profile=str(FIXTURES / f"{name}.mapping.yaml")),
                          export_date=EXPORT_DATE)
    tables: dict[str, list[pa.Table]] = {}
    for chunk in reader.iter_all():
        tables.setdefault(chunk.table, []).append(chunk.data)
        tables.setdefault("_findings", []).append(chunk.findings)
        tables.setdefault("_quarantine", []).append(chunk.quarantine)
    return reader, {t: pa.concat_tables(v) for t, v in tables.items()}


def rows(t: pa.Table, *cols: str) -> list[tuple[object, ...]]:
    return sorted(zip(*(t[c].to_pylist() for c in cols), strict=True), key=repr)


def test_a_list_column_becomes_child_rows_and_a_bad_item_is_quarantined_alone() -> None:
    reader, out = read("vendor_b")
    assert rows(out["appt"], "appt_id", "pat_id") == [(5001, 101), (5002, 101), (5003, 102), (5004, 103),
                                                      (5005, 102)]
    assert rows(out["apptproc"], "appt_id", "seq", "proc_code", "_line") == sorted([
        (5001, 1, "D0120", 2), (5001, 2, "D1110", 2),
        (5002, 1, "D0274", 3), (5002, 2, "D0120", 3),  # "D0274, D0120": the empty item between is none
        (5003, 1, "D2391", 4), (5003, 2, "D2392", 4),
        (5005, 1, "D0140", 6), (5005, 3, "D0220", 6),  # item 2 ("??") is quarantined, its appt is staged
    ], key=repr)
    q = out["_quarantine"].filter(pa.compute.equal(out["_quarantine"]["table"], "apptproc"))
    assert rows(q, "file", "line", "code") == [("Visits.csv", 6, "LST1")]
    assert "item 2 of list column Codes" in q["reason"][0].as_py()
    st = reader.stats["Visits.csv"]
    assert (st.records, st.clean, st.repaired, st.quarantined) == (5, 5, 0, 0)  # the parent rows: all staged
    assert (st.derived, dict(st.derived_tables), st.derived_quarantined) == (8, {"apptproc": 8}, 1)
    assert st.balanced
    assert "Codes" not in st.unknown_columns  # consumed by the list, not an unmapped column


def stage(name: str, tmp_path: Path) -> dict[str, object]:
    from dos2hl.api import stage_export

    res = stage_export(FIXTURES / name, tmp_path / "staged", profile=str(FIXTURES / f"{name}.mapping.yaml"),
                       export_date=EXPORT_DATE)
    return res.manifest


def test_staging_a_list_column_balances_and_counts_the_children_as_derived(tmp_path: Path) -> None:
    m = stage("vendor_b", tmp_path)
    assert m["balanced"] is True
    tables = m["tables"]
    assert isinstance(tables, dict)
    assert (tables["appt"]["rows"], tables["apptproc"]["rows"]) == (5, 8)
    visits = m["files"]["Visits.csv"]  # type: ignore[index]
    assert (visits["records"], visits["clean"], visits["derived"], visits["derived_quarantined"]) == (5, 5, 8, 1)
    assert m["quarantine"]["apptproc"]["rows"] == 1  # type: ignore[index]
