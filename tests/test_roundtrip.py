"""Reading a generated dirty export reproduces its clean truth; every injected defect is accounted for.

For each mess profile: every non-destroyed cell of every truth table equals what the reader staged
(matched by primary key), and every line of ``defects.jsonl`` is honoured: ``repair`` -> the value
equals truth, ``flag`` -> a finding with that code on that record, ``quarantine`` -> the record is
quarantined with that code.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dos2hl.generate import GenerateParams, generate
from dos2hl.model import TABLES
from dos2hl.sources.discover import discover
from dos2hl.sources.profile import load_profile
from dos2hl.sources.reader import ExportReader
from dos2hl.storage import LocalStore

CASES = [
    ("clean", "typical"),
    ("typical", "typical"),
    ("nasty", "typical"),
    ("typical", "softdent_like"),
]


def _key(row: dict[str, object], pk: tuple[str, ...]) -> tuple[object, ...]:
    return tuple(row[c] for c in pk)


@pytest.fixture(scope="module", params=CASES, ids=[f"{m}-{f}" for m, f in CASES])
def read_back(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    mess, fmt = request.param
    out = tmp_path_factory.mktemp(f"rt-{mess}-{fmt}")
    generate(out, GenerateParams(seed=11, patients=300, mess=mess, format=fmt))
    profile = "softdent_like" if fmt == "softdent_like" else "reference"
    export_date = json.loads((out / "manifest.json").read_text())["parameters"]["export_date"]
    reader = ExportReader(discover(LocalStore(out / "export"), load_profile(profile)),
                          export_date=dt.date.fromisoformat(export_date))
    data: dict[str, list[pa.Table]] = defaultdict(list)
    findings: list[pa.Table] = []
    quarantine: list[pa.Table] = []
    for chunk in reader.iter_all():
        data[chunk.table].append(chunk.data)
        findings.append(chunk.findings)
        quarantine.append(chunk.quarantine)
    defects = [json.loads(x) for x in (out / "truth" / "defects.jsonl").read_text().splitlines() if x.strip()]
    return {
        "out": out, "mess": mess, "reader": reader,
        "data": {t: pa.concat_tables(v) for t, v in data.items()},
        "findings": pa.concat_tables(findings).to_pylist(),
        "quarantine": pa.concat_tables(quarantine).to_pylist(),
        "defects": defects,
    }


def test_counts_add_up(read_back) -> None:  # type: ignore[no-untyped-def]
    for st in read_back["reader"].stats.values():
        assert st.error is None, st.error
        assert st.balanced, st.identity()


def test_clean_profile_has_no_defects(read_back) -> None:  # type: ignore[no-untyped-def]
    if read_back["mess"] == "clean":
        assert read_back["defects"] == []
        assert read_back["quarantine"] == []


def test_staged_values_equal_truth(read_back) -> None:  # type: ignore[no-untyped-def]
    out: Path = read_back["out"]
    destroyed: set[tuple[str, tuple[object, ...], str]] = set()
    skipped_rows: set[tuple[str, tuple[object, ...]]] = set()
    for d in read_back["defects"]:
        if d.get("record") is None or not d.get("key"):
            continue
        key = tuple(d["key"][c] for c in TABLES[d["table"]].pk)
        if d["expect"] == "quarantine":
            skipped_rows.add((d["table"], key))
        elif d.get("destroyed"):
            destroyed.add((d["table"], key, d["canonical_column"]))
    mismatches: list[str] = []
    compared = 0
    for name, t in TABLES.items():
        path = out / "truth" / f"{name}.parquet"
        if not path.exists():
            continue
        truth = pq.read_table(path).to_pylist()
        got = {_key(r, t.pk): r for r in read_back["data"].get(name, pa.table({})).to_pylist()} \
            if name in read_back["data"] else {}
        for row in truth:
            k = _key(row, t.pk)
            if (name, k) in skipped_rows:
                continue
            staged = got.get(k)
            if staged is None:
                mismatches.append(f"{name} {k}: missing")
                continue
            for col in t.column_names:
                if (name, k, col) in destroyed:
                    continue
                compared += 1
                if staged[col] != row[col]:
                    mismatches.append(f"{name} {k} {col}: staged {staged[col]!r} != truth {row[col]!r}")
    assert compared > 10_000
    assert not mismatches, f"{len(mismatches)} mismatches, first: " + "\n".join(mismatches[:25])


def test_every_defect_is_repaired_flagged_or_quarantined(read_back) -> None:  # type: ignore[no-untyped-def]
    finding_at = {(f["file"].rsplit("/", 1)[-1], f["record"], f["code"])
                  for f in read_back["findings"] + read_back["quarantine"]}
    quarantined_at = {(q["file"].rsplit("/", 1)[-1], q["line"], q["code"]) for q in read_back["quarantine"]}
    missing: list[str] = []
    for d in read_back["defects"]:
        if d["expect"] == "flag" and (d["file"], d["record"], d["defect_id"]) not in finding_at:
            missing.append(f"flag {d['defect_id']} {d['file']} record {d['record']}")
        if d["expect"] == "quarantine" and (d["file"], d["line"], d["defect_id"]) not in quarantined_at:
            missing.append(f"quarantine {d['defect_id']} {d['file']} line {d['line']}")
    assert not missing, f"{len(missing)} defects unaccounted for: " + "; ".join(missing[:20])
