"""The generator's writing side alone: CPU per row of the table sinks on captured rows (prints JSON).

Runs the simulation once (``patients``, dso-tier shape, ``--images none``), capturing every emitted row,
then writes those rows through fresh sinks several times, alternating two ways (the baseline measured in
the same invocation): ``plain`` (one ``formatter`` call per cell, every mess rule on every row) and
``fast`` (the compiled row formatter and the mess rules' quiet path, what ``generate`` runs). Same
bytes either way (tests/generate/test_fast_paths.py); the ratio is the figure to read on a shared machine.

Usage: ``.venv/bin/python bench/generate_write.py [patients] [repeats]`` (default 2000, 3).
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dos2hl.generate import GenerateParams, generate, mess, writer
from dos2hl.generate.formats import FileStyle, RowFmt, formatter
from dos2hl.generate.layout import decide_layout
from dos2hl.generate.params import plan
from dos2hl.generate.run import _sink_factory
from dos2hl.model import Column


def _per_cell(cols: Sequence[Column], style: FileStyle) -> RowFmt:
    fmts = [(c.name, formatter(c, style)) for c in cols]
    return lambda row: ["" if (v := row[c]) is None else f(v) for c, f in fmts]


def capture(params: GenerateParams, work: Path) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    original = writer.TableSink.write

    def write(self: writer.TableSink, row: dict[str, Any]) -> None:
        rows.append((self.table, copy.copy(row)))
        original(self, row)

    writer.TableSink.write = write  # type: ignore[method-assign]
    try:
        generate(work / "gen", params, workers=1)
    finally:
        writer.TableSink.write = original  # type: ignore[method-assign]
    return rows


def write_all(params: GenerateParams, rows: list[tuple[str, dict[str, Any]]], work: Path) -> float:
    """CPU seconds to write ``rows`` through fresh sinks (closing them included)."""
    out = work / "w"
    shutil.rmtree(out, ignore_errors=True)
    (out / "export").mkdir(parents=True)
    (out / "truth").mkdir()
    pl = plan(params)
    lay = decide_layout(params, pl)
    factory = _sink_factory(params, pl, lay, out / "export", out / "truth")
    defects = writer.DefectLog(out / "truth" / "defects.jsonl")
    sinks = {t: factory(t, defects, {}) for t in lay.files}
    fresh = [(t, copy.copy(r)) for t, r in rows]  # write() pops the private keys
    t0 = time.process_time()
    for t, r in fresh:
        sinks[t].write(r)
    for s in sinks.values():
        s.close()
    defects.close()
    return time.process_time() - t0


def main() -> None:
    patients = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    params = GenerateParams(seed=1, tier="dso", patients=patients, locations=max(1, patients // 2000),
                            images="none")
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        rows = capture(params, work)
        plain: list[float] = []
        fast: list[float] = []
        for _ in range(repeats):
            with_plain = (writer.row_formatter, mess.TableMess._compile_quiet)
            writer.row_formatter = _per_cell  # type: ignore[assignment]
            mess.TableMess._compile_quiet = lambda self: None  # type: ignore[assignment,method-assign,return-value]
            try:
                plain.append(write_all(params, rows, work))
            finally:
                writer.row_formatter, mess.TableMess._compile_quiet = with_plain  # type: ignore[method-assign]
            fast.append(write_all(params, rows, work))
    us = 1e6 / len(rows)
    print(json.dumps({"patients": patients, "rows": len(rows),
                      "plain_us_per_row": [round(s * us, 2) for s in plain],
                      "fast_us_per_row": [round(s * us, 2) for s in fast],
                      "ratio_min": round(min(fast) / min(plain), 3)}, indent=1))


if __name__ == "__main__":
    main()
