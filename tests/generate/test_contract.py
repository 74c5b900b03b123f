"""The output contract of docs/architecture.md: files, schemas, defects.jsonl pointers, manifest."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gen_helpers import defects, read_text, record_starts, truth
from pydantic import ValidationError

from dos2hl.generate import GenerateParams, generate
from dos2hl.model import TABLES, arrow_schema

EXPECT = {"repair", "flag", "quarantine", "audit"}
KEYS = ["defect_id", "file", "table", "record", "line", "key", "column", "canonical_column", "expect",
        "destroyed", "clean_value_hash"]


def test_params_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        GenerateParams(sed=1)  # type: ignore[call-arg]


def test_every_table_has_truth_with_the_canonical_schema(typical: Path) -> None:
    """Parquet has no second-resolution time types: they come back as ms unless read with the schema."""
    for t in TABLES:
        path = typical / "truth" / f"{t}.parquet"
        stored = pq.read_schema(path)
        want = arrow_schema(t)
        assert stored.names == want.names, t
        for f, g in zip(stored, want, strict=True):
            if g.type in (pa.timestamp("s"), pa.time32("s")):
                assert f.type in (pa.timestamp("ms"), pa.time32("ms")), (t, f)
            else:
                assert f.equals(g, check_metadata=True), (t, f, g)
        assert pq.read_table(path, schema=want).schema.equals(want, check_metadata=True)


def test_every_table_has_an_export_file_and_the_manifest_lists_all(typical: Path) -> None:
    manifest = json.loads((typical / "manifest.json").read_text())
    files = manifest["files"]
    for t in TABLES:
        assert f"export/{t.upper()}.CSV" in files
    on_disk = {str(p.relative_to(typical)) for p in (typical / "export").rglob("*") if p.is_file()}
    listed = {k for k in files if k.startswith("export/")}
    assert on_disk == listed
    sample = sorted(on_disk)[:: max(1, len(on_disk) // 40)]
    for rel in sample:
        assert hashlib.sha256((typical / rel).read_bytes()).hexdigest() == files[rel]["sha256"]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    p = GenerateParams(seed=3, patients=120, mess="nasty", images="stub")
    generate(tmp_path / "a", p)
    generate(tmp_path / "b", p)
    a = json.loads((tmp_path / "a" / "manifest.json").read_text())["files"]
    b = json.loads((tmp_path / "b" / "manifest.json").read_text())["files"]
    assert a == b
    c = generate(tmp_path / "c", GenerateParams(seed=4, patients=120, mess="nasty", images="stub"))
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["files"] != a
    assert c["rows_total"] > 0


def test_clean_run_has_no_defects(clean: Path) -> None:
    assert (clean / "truth" / "defects.jsonl").read_text() == ""
    raw = (clean / "export" / "PATIENT.CSV").read_bytes()
    assert not raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe"))
    raw.decode("cp1252")
    assert b"\r\n" in raw


def test_defect_lines_are_well_formed(messy: Path) -> None:
    for d in defects(messy):
        assert all(k in d for k in KEYS), d
        assert d["expect"] in EXPECT
        assert isinstance(d["destroyed"], bool)
        if d.get("scope") == "file":
            assert d["record"] is None and d["line"] is None
        else:
            assert d["record"] >= 1 and d["line"] >= d["record"]
            assert d["clean_value_hash"].startswith("sha256:")
            assert set(d["key"]) == set(TABLES[d["table"]].pk)


def test_defects_point_at_the_right_record_line_and_value(messy: Path) -> None:
    """``line`` is where the record starts in the dirty file, and the hash is the truth cell's."""
    by_file: dict[str, list[dict]] = defaultdict(list)
    for d in defects(messy):
        if d.get("scope") != "file":
            by_file[d["file"]].append(d)
    assert by_file
    for name, items in by_file.items():
        table = items[0]["table"]
        text = read_text(messy / "export" / name)
        quote = "~" if text.startswith("Dent-O-Soft Export") else '"'
        broken = {d["record"] for d in items if d["defect_id"] == "CSV2"}
        starts = record_starts(text, quote, broken)
        rows = truth(messy, table)
        assert len(starts) == len(rows), name
        for d in items:
            assert starts[d["record"] - 1] == d["line"], (name, d)
            row = rows[d["record"] - 1]
            assert {k: row[k] for k in d["key"]} == d["key"]
            want = "sha256:" + hashlib.sha256(json.dumps(row[d["canonical_column"]],
                                                         default=str).encode()).hexdigest()
            assert d["clean_value_hash"] == want, d


def test_file_level_defects(typical: Path, nasty: Path, softdent: Path) -> None:
    ids = {d["defect_id"] for d in defects(typical) if d.get("scope") == "file"}
    assert {"ENC2", "ZIP1", "ID1"} <= ids
    n = [d for d in defects(nasty) if d["defect_id"] == "ENC2"]
    assert len(n) == 3
    utf16 = [d["file"] for d in n if (nasty / "export" / d["file"]).read_bytes().startswith(b"\xff\xfe")]
    assert len(utf16) == 1
    sd = {d["defect_id"] for d in defects(softdent) if d.get("scope") == "file"}
    assert {"CSV3", "DT2", "CD1"} <= sd
