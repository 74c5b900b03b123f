"""Proposer accuracy on vendor-shaped exports (prints one JSON object).

Generates a small practice, re-writes it in every vendor style of ``dos2hl.generate.vendors`` (renamed
columns, a denormalised coverage file, a procedure-code list column, the patient table split over two
files, vendor-only columns), runs ``dos2hl map propose``'s ``propose`` on each, and scores it against
the style's ground truth: per column, top-1 correct = the proposed (table, column) is the true one (a
list column also needs ``split``; a vendor-only column is correct when nothing canonical is proposed);
per file, correct = the primary table and the set of tables its columns feed are the true ones. Misses
name files and columns only, never a value. The holdout style (written after tuning) is flagged.

Usage: ``.venv/bin/python bench/propose.py [--quick] [--patients N] [--style NAME ...]``

Measured (``--quick``, 60 patients; 300 give the same), columns top-1 / files right, before (main
33eb436) -> after: tuned styles 76.4 % (9/17 files) -> 99.2 % (17/17); holdout camel_holdout 81.4 %
(3/5) -> 98.6 % (5/5). Per style and the misses left: docs/proposer.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from dos2hl.generate.vendors import STYLES, FileTruth, Style, write_style
from dos2hl.mapping.model import Mapping
from dos2hl.mapping.propose import propose

__all__ = ["score", "score_style"]


def _label(tc: tuple[str, str] | None, split: bool = False) -> str | None:
    if tc is None:
        return None
    return f"{tc[0]}.{tc[1]}" + (" (list)" if split else "")


def score(mapping: Mapping, truth: dict[str, FileTruth]) -> dict[str, Any]:
    """Per-column top-1 and per-file table-set correctness of ``mapping`` against ``truth``."""
    entries = {e.source: e for e in mapping.fields}
    cols = ok = files_ok = 0
    misses: list[dict[str, Any]] = []
    for name, ft in truth.items():
        stem = Path(name).stem
        tables = {mapping.files[stem]} if stem in mapping.files else set()
        for header, want in ft.columns.items():
            cols += 1
            e = entries.get(f"{stem}.{header}")
            got = (e.table, e.column) if e is not None and e.table and e.column else None
            if e is not None and got is not None:
                tables.add(got[0])
            want_split = header in ft.splits
            got_split = e is not None and e.split is not None
            if got == want and (want is None or want_split == got_split):
                ok += 1
            else:
                misses.append({"column": f"{stem}.{header}", "expected": _label(want, want_split),
                               "got": _label(got, got_split)})
        primary = mapping.files.get(stem)
        if primary == ft.primary and tables == set(ft.tables):
            files_ok += 1
        else:
            misses.append({"file": name, "expected": [ft.primary, sorted(ft.tables)],
                           "got": [primary, sorted(tables)]})
    return {"columns": cols, "correct": ok, "accuracy": round(ok / cols, 4) if cols else 0.0,
            "files": len(truth), "files_correct": files_ok, "misses": misses}


def score_style(export: Path, root: Path, style: Style) -> dict[str, Any]:
    """Write ``export`` as ``style`` under ``root`` and score ``propose`` on it."""
    truth = write_style(export, root / style.name, style)
    out = score(propose(root / style.name), truth)
    return {"holdout": style.holdout, **out}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="a 60-patient practice (default 300)")
    ap.add_argument("--patients", type=int, default=None)
    ap.add_argument("--style", action="append", choices=sorted(STYLES), help="only these styles")
    args = ap.parse_args(argv)
    from dos2hl.generate import GenerateParams, generate

    patients = args.patients or (60 if args.quick else 300)
    result: dict[str, Any] = {"patients": patients, "styles": {}}
    with tempfile.TemporaryDirectory() as d:
        generate(Path(d) / "g", GenerateParams(seed=1, patients=patients, mess="clean", images="none"))
        for name in args.style or list(STYLES):
            result["styles"][name] = score_style(Path(d) / "g" / "export", Path(d) / "styles", STYLES[name])
    styles = result["styles"].values()
    for key, group in (("tuned", [s for s in styles if not s["holdout"]]),
                       ("holdout", [s for s in styles if s["holdout"]]), ("overall", list(styles))):
        cols, ok = sum(s["columns"] for s in group), sum(s["correct"] for s in group)
        result[key] = {"columns": cols, "correct": ok, "accuracy": round(ok / cols, 4) if cols else None,
                       "files": sum(s["files"] for s in group),
                       "files_correct": sum(s["files_correct"] for s in group)}
    json.dump(result, sys.stdout, indent=1)
    print()
    return result


if __name__ == "__main__":
    main()
