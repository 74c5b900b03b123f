"""The generator's truth Parquet files are written at a sink's close, one at a time, from a spill."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dos2hl.generate import writer
from dos2hl.generate.formats import FileStyle
from dos2hl.generate.practice import blank
from dos2hl.generate.writer import DefectLog, TableSink
from dos2hl.model import TABLES


def test_truth_rows_spill_until_close_then_become_row_groups_of_many_batches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_BATCH", 10)
    # a row group per spilled batch kept ~1 KB per column chunk in the writer until it closed, and as much
    # again for the footer: ~250 MB for the 1 M-patient ledger's 4,817 batches
    monkeypatch.setattr(writer, "TRUTH_ROW_GROUP", 20)
    (tmp_path / "e").mkdir()
    (tmp_path / "t").mkdir()
    t = TABLES["lookup"]
    sink = TableSink("lookup", export_dir=tmp_path / "e", truth_dir=tmp_path / "t", file_name="LOOKUP.CSV",
                     headers={c: c.upper() for c in t.column_names}, style=FileStyle(),
                     defects=DefectLog(tmp_path / "d.jsonl"), mess=None)
    for i in range(45):
        row = blank("lookup")
        row.update(category="T", code=f"C{i}", description=f"code {i}")
        sink.write(row)
    # no Parquet writer is open while rows come: it would keep every row group's metadata till its close
    assert not (tmp_path / "t" / "lookup.parquet").exists()
    assert (tmp_path / "t" / ".lookup.truth.arrows").exists()
    sink.close()
    f = pq.ParquetFile(tmp_path / "t" / "lookup.parquet")
    assert [f.metadata.row_group(g).num_rows for g in range(f.metadata.num_row_groups)] == [20, 20, 5]
    assert f.read()["code"].to_pylist() == [f"C{i}" for i in range(45)]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["lookup.parquet"]
