"""GENERATOR.md §3: every output is obviously fake (PHI-shape scan of export/ and truth/)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
from gen_helpers import read_text, truth

from dos2hl.generate.identity import _npi_check

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})")
SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
PHONE = re.compile(r"(?<!\d)\(?(\d{3})\)?[ ./-]?(\d{3})[ .-](\d{4})(?!\d)")
E164 = re.compile(r"^\+1\d{3}5550(1\d\d)$")
PLACEHOLDERS = {("000", "0000"), ("999", "9999")}


def _texts(run: Path) -> list[tuple[str, str]]:
    out = [(p.name, read_text(p)) for p in sorted((run / "export").glob("*.CSV"))]
    for p in sorted((run / "truth").glob("*.parquet")):
        t = pq.read_table(p)
        parts = []
        for col in t.column_names:
            if str(t.schema.field(col).type) == "string":
                parts.extend(v for v in t.column(col).to_pylist() if v)
        out.append((p.name, "\n".join(parts)))
    return out


def _scan(run: Path) -> None:
    for name, text in _texts(run):
        for m in EMAIL.finditer(text):
            assert m.group(1).lower() in ("example.com", "example.net", "example.org"), (name, m.group(0))
        for m in SSN.finditer(text):
            assert int(m.group(1)) >= 900, (name, m.group(0))
        for m in PHONE.finditer(text):
            ex, line = m.group(2), m.group(3)
            if (ex, line) in PLACEHOLDERS or (m.group(1) == ex == "000"):
                continue
            assert ex == "555" and 100 <= int(line) <= 199, (name, m.group(0))


def test_phi_shape_scan(typical: Path, nasty: Path, softdent: Path) -> None:
    for run in (typical, nasty, softdent):
        _scan(run)


def test_truth_identifiers_are_fictional(nasty: Path) -> None:
    for table, cols in {"patient": ("hphone", "wphone", "cphone"), "provider": ("phone",),
                        "location": ("phone", "fax"), "insco": ("phone",), "refsrc": ("phone",)}.items():
        for row in truth(nasty, table):
            for c in cols:
                assert row[c] is None or E164.match(row[c]), (table, c, row[c])
    for row in truth(nasty, "inssub"):
        m = row["member_id"]
        assert m.startswith("ZZ") or int(m[:3]) >= 900, m
    for row in truth(nasty, "patins"):
        assert row["pat_member_id"] is None or row["pat_member_id"].startswith("ZZ")
    npis = [r["npi"] for t in ("provider", "refsrc") for r in truth(nasty, t) if r["npi"]]
    npis += [r["group_npi"] for r in truth(nasty, "location")]
    assert npis
    for n in npis:
        assert len(n) == 10 and n.isdigit()
        assert _npi_check(n[:9]) != int(n[9]), f"NPI {n} passes the Luhn check"
    for row in truth(nasty, "patient"):
        assert row["ssn"] is None or int(row["ssn"][:3]) >= 900


def test_images_have_magic_bytes(nasty: Path) -> None:
    root = nasty / "export" / "IMAGES"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert files
    magic = {".jpg": b"\xff\xd8\xff", ".pdf": b"%PDF", ".tif": b"II*\x00"}
    big = 0
    for p in files:
        head = p.open("rb").read(132)
        ext = p.suffix.lower()
        if ext in magic:
            assert head.startswith(magic[ext]), p
        elif ext == ".dcm":
            assert head[128:132] == b"DICM", p
        big += p.stat().st_size > 25 * 2**20
    assert big >= 1  # large_docs
