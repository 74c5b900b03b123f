"""``generate()``: the whole run, location by location, household by household (bounded memory)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .context import Ctx, LocCtx
from .documents import ImageStore
from .household import emit_household
from .layout import decide_layout
from .mess import TableMess
from .params import GenerateParams, plan
from .people import make_household
from .practice import build_practice
from .truth import Recon, write_outputs
from .writer import DefectLog, TableSink

__all__ = ["generate"]

_COUNT_COL = {
    "patient": "pat_stat",
    "appt": "status",
    "ledger": "trans_type",
    "claim": "status",
    "txitem": "status",
    "recall": "status",
    "document": "category",
    "clinnote": "note_fmt",
    "txplan": "status",
    "patref": "direction",
}
Progress = Callable[[str, int], None]


def generate(out_dir: Path, params: GenerateParams, progress: Progress | None = None) -> dict[str, Any]:
    """Write a synthetic Dent-O-Soft export plus its truth to ``out_dir``; return a run summary.

    Args:
        out_dir: run folder; its ``export/`` and ``truth/`` are replaced.
        params: every knob (same params -> byte-identical output).
        progress: optional ``(stage, rows_done)`` callback, called every few thousand rows.

    Examples:
        >>> generate(Path("out/solo"), GenerateParams(tier="solo"))  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    export, truth = out / "export", out / "truth"
    for d in (export, truth):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    pl = plan(params)
    lay = decide_layout(params, pl)
    defects = DefectLog(truth / "defects.jsonl")
    for fd in lay.file_defects:
        defects.add(**fd)  # type: ignore[arg-type]
    loc_area: dict[str, str] = {}
    sinks: dict[str, TableSink] = {}
    for t, fl in lay.files.items():
        mess = None
        if pl.mess_factor > 0 and fl.file_name is not None:
            mess = TableMess(
                t,
                params.seed,
                pl.mess_factor,
                fl.style,
                loc_area=loc_area,
                ledger_signed=params.ledger_sign == "signed",
                export_date=params.export_date,
            )
        sinks[t] = TableSink(
            t,
            export_dir=export,
            truth_dir=truth,
            file_name=fl.file_name,
            headers=fl.headers,
            style=fl.style,
            defects=defects,
            mess=mess,
            ledger_mode=params.ledger_sign if t == "ledger" else "signed",
            ledger_columns=lay.ledger_columns if t == "ledger" else (),
            wide=lay.wide if t == "appt" else None,
            truth_nulls=("fee", "txitem_id", "trans_id") if t == "apptproc" and fl.file_name is None else (),
            count_col=_COUNT_COL.get(t),
        )
    rows = 0

    def emit(table: str, row: dict[str, Any]) -> None:
        nonlocal rows
        sinks[table].write(row)
        rows += 1

    pr = build_practice(params.seed, pl, emit, pl.mess_factor > 0)
    loc_area.update(pr.loc_area)
    if progress:
        progress("reference", rows)
    ctx = Ctx(params, pl, pr, emit)
    recon = Recon(truth)
    store = ImageStore(export, params.images, truth / ".images.jsonl")
    for loc, target in zip(pr.locations, pl.patients_per_location, strict=True):
        lc = LocCtx(ctx, loc)
        made, last = 0, rows
        while made < target:
            made += emit_household(lc, make_household(lc), emit, store, params.large_docs, recon.guarantor)
            for path in lc.orphans:
                defects.add(
                    defect_id="DOC1",
                    file=path,
                    table="document",
                    record=None,
                    line=None,
                    key=None,
                    column=None,
                    canonical_column=None,
                    expect="audit",
                    destroyed=False,
                    scope_file=True,
                )
            lc.orphans.clear()
            if progress and rows - last >= 20_000:
                progress(f"location {loc.loc_id}", rows)
                last = rows
        if progress:
            progress(f"location {loc.loc_id}", rows)
    records = {t: s.close() for t, s in sinks.items()}
    store.close()
    defects.close()
    if progress:
        progress("finalize", rows)
    files = {fl.file_name: records[t] for t, fl in lay.files.items() if fl.file_name}
    write_outputs(out, params, pl, lay, sinks, recon, ctx.dup_clusters, files, defects)
    return {
        "out": str(out),
        "files": files,
        "rows_total": rows,
        "defects": defects.count,
        "seconds": round(time.perf_counter() - t0, 3),
    }
