"""Format profiles: softdent_like layout, ledger sign conventions, and defect rates per mess profile."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

from gen_helpers import defects, read_text, truth

from dos2hl.model import TABLES


def _rows(run: Path, name: str, quote: str = '"') -> tuple[list[str], list[list[str]]]:
    text = read_text(run / "export" / name)
    rows = list(csv.reader(io.StringIO(text, newline=""), quotechar=quote))
    if rows and rows[0] and rows[0][0].startswith("Dent-O-Soft Export"):
        rows = rows[1:-1]
    return rows[0], rows[1:]


def test_softdent_layout(softdent: Path) -> None:
    export = softdent / "export"
    assert not (export / "APPTPROC.CSV").exists()
    text = read_text(export / "APPT.CSV")
    lines = text.split("\r\n")
    assert lines[0].startswith("Dent-O-Soft Export 2.3 - 06/28/2024")
    assert re.fullmatch(r"\*\*\* \d+ records \*\*\*", lines[-2])
    header, rows = _rows(softdent, "APPT.CSV", "~")
    for n in range(1, 7):
        assert {f"PROC{n}", f"TOOTH{n}", f"SURF{n}"} <= set(header)
    assert "~" in text
    i = header.index("APPT_DATE")
    assert all(re.fullmatch(r"\d\d/\d\d/\d\d", r[i]) or "-" in r[i] for r in rows)
    codes = {r[header.index("PROC1")] for r in rows} - {""}
    assert codes and not any(c.startswith("D") for c in codes)
    led = read_text(export / "LEDGER.CSV").split("\r\n")
    assert led[2].endswith(",")  # ragged trailing delimiter on data lines
    assert all(ap["fee"] is None for ap in truth(softdent, "apptproc"))


def test_ledger_drcr_and_split_columns(drcr: Path, split: Path) -> None:
    header, rows = _rows(drcr, "LEDGER.CSV")
    led = truth(drcr, "ledger")
    i, j = header.index("AMOUNT"), header.index("DRCR")
    for r, t in zip(rows, led, strict=False):
        if t["amount"] != 0:
            assert r[j] == ("D" if t["amount"] > 0 else "C")
        assert not r[i].startswith("-")
    header, rows = _rows(split, "LEDGER.CSV")
    cols = [header.index(c) for c in ("CASH_AMT", "CHECK_AMT", "CARD_AMT")]
    a = header.index("AMOUNT")
    for r, t in zip(rows, truth(split, "ledger"), strict=False):
        if r[a]:
            assert Decimal(r[a]) == t["amount"]
        else:
            assert -sum(Decimal(r[c]) for c in cols if r[c]) == t["amount"]


def _eligible(run: Path, kind: str, nonnull: bool = True) -> int:
    n = 0
    for t, tab in TABLES.items():
        cols = [c.name for c in tab.columns if c.kind == kind]
        if not cols or (t == "apptproc" and not (run / "export" / "APPTPROC.CSV").exists()):
            continue
        for row in truth(run, t):
            n += sum((row[c] is not None) == nonnull for c in cols)
    return n


def test_typical_rates_near_configured(typical: Path) -> None:
    counts = Counter(d["defect_id"] for d in defects(typical))
    ph1 = counts["PH1"] / _eligible(typical, "phone")
    assert 0.24 <= ph1 <= 0.36, ph1
    dt3 = counts["DT3"] / _eligible(typical, "date")
    assert 0.006 <= dt3 <= 0.012, dt3  # 1% of date cells not already rewritten by DT2
    for d in ("NM1", "DT1", "DT2", "CD1", "$1", "TH1", "CSV1", "EM2", "DUP1", "$3", "DOC1", "REF1", "NOTE2"):
        assert counts[d] > 0, d


def test_nasty_is_about_three_times_typical(typical: Path, nasty: Path) -> None:
    t = Counter(d["defect_id"] for d in defects(typical))
    n = Counter(d["defect_id"] for d in defects(nasty))
    for d in ("PH1", "DT3", "$1", "CD1"):
        assert 2.0 <= n[d] / t[d] <= 4.0, (d, n[d], t[d])
    assert n["CSV2"] >= 1
