"""Benchmark: read + validate + stage a generated export, against a naive pandas baseline.

Prints one JSON object:
  rows_per_s, peak_rss_mb            dos2hl's streaming reader + stager on the measured export
  baseline.rows_per_s/peak_rss_mb    pandas read_csv(dtype=str) + a row-by-row Python parse of every
                                     cell with the same scalar parsers + to_parquet, on the same files
  speedup                            rows_per_s / baseline.rows_per_s
  memory                             peak RSS of dos2hl staging at 1x and 4x (2x with --quick) the
                                     size, to show memory stays flat as the export grows
Targets (issue 2): >= 200,000 rows/s, >= 10x the baseline, memory flat as size grows.

Each measurement runs in its own subprocess, so peak RSS is that run's own.
    python bench/stage.py            group tier (about 20k patient records)
    python bench/stage.py --quick    a smaller practice, under a minute
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(kind: str, export: str, out: str, limit: int) -> None:
    sys.path.insert(0, str(ROOT))
    from dos2hl.api import stage_export  # imports are not part of the measured work

    t0 = time.perf_counter()
    if kind == "dos2hl":
        res = stage_export(export, out)
        rows = res.totals["records"]
    else:
        rows = _baseline(Path(export), Path(out), limit)
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": secs, "peak_rss_mb": rss}))


def _baseline(export: Path, out: Path, limit: int) -> int:
    """The naive way: pandas, then one Python call per cell, then pandas.to_parquet."""
    import datetime as dt

    import pandas as pd

    from dos2hl.model import TABLES
    from dos2hl.sources import values as v
    from dos2hl.sources.detect import sniff

    ctx = v.ParseContext(export_date=dt.date(2024, 6, 28))
    scalar = {
        "int": v.parse_int, "date": lambda s: v.parse_date(s, ctx),
        "dob": lambda s: v.parse_date(s, ctx, birth=True),
        "datetime": lambda s: v.parse_datetime(s, ctx), "time": v.parse_time,
        "money": lambda s: v.parse_money(s, ctx),
        "bool": v.parse_bool, "phone": lambda s: v.parse_phone(s, ctx), "email": v.parse_email,
        "zip": v.parse_zip,
        "state": v.parse_state, "memo": v.clean_memo,
    }
    rows = 0
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(export.glob("*.CSV")):
        table = path.stem.lower()
        if table not in TABLES or rows >= limit:
            continue
        fmt = sniff(path.read_bytes()[:65536], name=path.name)
        df = pd.read_csv(path, dtype=str, encoding=fmt.encoding, sep=fmt.delimiter, quotechar=fmt.quotechar,
                         skiprows=fmt.banner_lines, keep_default_na=False, on_bad_lines="skip",
                         encoding_errors="replace",
                         engine="python", nrows=limit - rows)
        kinds = {c.name.upper(): c.kind for c in TABLES[table].columns}
        parsed = []
        for _, rec in df.iterrows():
            row = {}
            for col, val in rec.items():
                fn = scalar.get(kinds.get(str(col).upper(), "str"))
                res = fn(val) if fn else val
                row[col] = res[0] if isinstance(res, tuple) else res
            parsed.append(row)
        pd.DataFrame(parsed).astype(str).to_parquet(out / f"{table}.parquet")
        rows += len(df)
    return rows


def _run(kind: str, export: Path, out: Path, limit: int = 0) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", kind, str(export), str(out), str(limit)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller practice; finishes in under a minute")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, export, out, limit = args.child
        _child(kind, export, out, int(limit))
        return
    sys.path.insert(0, str(ROOT))
    from dos2hl.generate import GenerateParams, generate

    patients = 2500 if args.quick else 20000
    factor = 2 if args.quick else 4
    baseline_rows = 30_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(prefix="dos2hl-bench-") as tmp:
        base = Path(tmp)
        small, large = base / "small", base / "large"
        generate(small, GenerateParams(seed=3, patients=patients, mess="typical", images="none"))
        generate(large, GenerateParams(seed=3, patients=patients * factor, mess="typical", images="none",
                                       locations=max(1, factor)))
        ours_small = _run("dos2hl", small / "export", base / "staged-small")
        ours = _run("dos2hl", large / "export", base / "staged-large")
        baseline = _run("pandas", small / "export", base / "baseline", baseline_rows)
    rps = ours["rows"] / ours["seconds"]
    brps = baseline["rows"] / baseline["seconds"]
    result = {
        "benchmark": "stage",
        "quick": args.quick,
        "rows": ours["rows"],
        "rows_per_s": round(rps),
        "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "baseline": {"name": "pandas row-by-row", "rows": baseline["rows"], "rows_per_s": round(brps),
                     "peak_rss_mb": round(baseline["peak_rss_mb"], 1)},
        "speedup": round(rps / brps, 1),
        "memory": {"rows_1x": ours_small["rows"], "peak_rss_mb_1x": round(ours_small["peak_rss_mb"], 1),
                   "rows_nx": ours["rows"], "peak_rss_mb_nx": round(ours["peak_rss_mb"], 1),
                   "size_factor": round(ours["rows"] / max(1, ours_small["rows"]), 2),
                   "rss_factor": round(ours["peak_rss_mb"] / max(1.0, ours_small["peak_rss_mb"]), 2)},
        "targets": {"rows_per_s": 200_000, "speedup": 10},
        "meets": {"rows_per_s": rps >= 200_000, "speedup": rps / brps >= 10},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
