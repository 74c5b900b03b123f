"""Honesty of ``expect: repair``: a minimal reference cleaner applying architecture.md's canonical
rules to the dirty cell must give back the truth value (for every non-destroyed repair defect)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import ftfy
import phonenumbers
from gen_helpers import defects, read_text, truth

from dos2hl.model import TABLES
from dos2hl.sources.names import split_nickname, split_suffix, title_case_name

EXPORT = dt.date(2024, 6, 28)
SENT = {"01/01/1900", "12/30/1899", "01/01/1901", "0001-01-01", "0000-00-00", "  /  /  "}
NOTES = re.compile(r"\((?:wk|cell)\)|mom's cell|\bcell\b|\bhome\b")


def _date(s: str, dob: bool) -> dt.date | None:
    if s in SENT or not s.strip():
        return None
    if "-" in s:
        return dt.date.fromisoformat(s)
    m, d, y = s.split("/")
    if len(y) == 2:
        yy = int(y)
        if dob:
            year = 2000 + yy if dt.date(2000 + yy, int(m), int(d)) <= EXPORT else 1900 + yy
        else:
            year = 2000 + yy if 2000 + yy <= EXPORT.year + 20 else 1900 + yy
    else:
        year = int(y)
    return dt.date(year, int(m), int(d))


def _phone(s: str, area: str) -> str | None:
    if set(re.sub(r"\D", "", s)) <= {"0"} or set(re.sub(r"\D", "", s)) == {"9"}:
        return None
    s = NOTES.sub("", s).strip()
    if len(re.sub(r"\D", "", s)) == 7:
        s = area + s
    return phonenumbers.format_number(phonenumbers.parse(s, "US"), phonenumbers.PhoneNumberFormat.E164)


def _money(s: str) -> Decimal:
    neg = s.startswith("(") or s.endswith("-") or s.startswith("-")
    v = Decimal(re.sub(r"[^\d.]", "", s))
    return -v if neg else v


def clean(kind: str, col: str, s: str, area: str) -> Any:
    if kind in ("date", "dob"):
        return _date(s, kind == "dob")
    if kind == "phone":
        return _phone(s, area)
    if kind == "money":
        return _money(s)
    if col == "proc_code" and re.fullmatch(r"\d{1,4}(\.\d+)?", s):
        return "D" + s.split(".")[0].zfill(4)
    if col == "tooth":
        s = s.replace("#", "").strip()
        return str(int(s)) if s.isdigit() else s.upper()
    if kind == "email":
        return re.split(r"[;,/ ]+", s)[0].lower()
    if kind == "memo":
        s = s.replace("\r\n", "\n").replace("\r", "\n")
        return "".join(c for c in s if c in "\n\t" or (ord(c) >= 32 and ord(c) != 127))
    if kind == "str":
        return ftfy.fix_encoding(title_case_name(s))
    return s


def _records(run: Path, name: str, broken: set[int]) -> tuple[list[str], list[list[str]]]:
    text = read_text(run / "export" / name)
    q = "~" if text.startswith("Dent-O-Soft") else '"'
    rows = list(csv.reader(io.StringIO(text, newline=""), quotechar=q))
    if q == "~":
        rows = rows[1:-1]
    header, body = rows[0], rows[1:]
    out, i = [], 0
    while i < len(body):
        out.append(body[i])
        i += 2 if len(out) in broken else 1
    return header, out


def test_repairs_recover_truth(messy: Path) -> None:
    ds = [d for d in defects(messy) if d.get("scope") != "file"]
    by_file: dict[str, list[dict]] = {}
    for d in ds:
        by_file.setdefault(d["file"], []).append(d)
    areas = {r["loc_id"]: r["phone"][2:5] for r in truth(messy, "location")}
    checked = 0
    for name, items in by_file.items():
        table = items[0]["table"]
        header, rows = _records(messy, name, {d["record"] for d in items if d["defect_id"] == "CSV2"})
        tr = truth(messy, table)
        for d in items:
            if d["expect"] != "repair" or d["destroyed"] or d["defect_id"] in ("NOTE1", "CSV1", "ENC1"):
                continue
            row, want = rows[d["record"] - 1], tr[d["record"] - 1]
            if d["defect_id"] == "NM2":
                lname, fname = row[header.index("LNAME")], row[header.index("FNAME")]
                got = (split_suffix(lname)[1] if d["canonical_column"] == "suffix"
                       else split_nickname(title_case_name(fname))[1])
                assert got is not None and title_case_name(got) == title_case_name(
                    want[d["canonical_column"]]
                )
                checked += 1
                continue
            col = TABLES[table].by_name[d["canonical_column"]]
            dirty = row[header.index(d["column"])]
            if col.name in ("lname", "fname"):
                dirty = (split_suffix if col.name == "lname" else split_nickname)(dirty)[0]
            got = clean(col.kind, col.name, dirty, areas.get(want.get("loc_id") or "", ""))
            assert got == want[col.name], (d, dirty)
            checked += 1
    assert checked > 100
