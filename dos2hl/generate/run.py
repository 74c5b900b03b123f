"""``generate()``: the whole run, location by location, household by household (bounded memory)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .context import Ctx, LocCtx
from .documents import ImageStore
from .household import emit_household
from .layout import Layout, decide_layout
from .parallel import RemoteTables, SinkFactory
from .params import GenerateParams, Plan, plan
from .people import make_household
from .practice import build_practice
from .truth import Recon, write_outputs
from .writer import DefectLog, merge_defect_logs

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
# generate(workers=2): the tables written in the second process, the heaviest to write (~85 % of the
# export's bytes), so that writing them takes about as long as the simulation plus the rest (parallel.py)
REMOTE_TABLES = frozenset({"ledger", "clinnote", "document", "appt", "commlog", "claimln", "claim",
                           "apptproc"})
PARALLEL_FROM = 10_000  # patients


def generate(out_dir: Path, params: GenerateParams, progress: Progress | None = None,
             workers: int | None = None) -> dict[str, Any]:
    """Write a synthetic Dent-O-Soft export plus its truth to ``out_dir``; return a run summary.

    Args:
        out_dir: run folder; its ``export/`` and ``truth/`` are replaced.
        params: every knob (same params -> byte-identical output).
        progress: optional ``(stage, rows_done)`` callback, called every few thousand rows.
        workers: 2 writes the heaviest tables in a second process beside the simulation (the same
            bytes, ``parallel.py``); default 2 from ``PARALLEL_FROM`` patients on a machine with two
            cores, else 1 (a process costs a few seconds to start). The process is spawned: a script
            that calls ``generate`` needs the ``if __name__ == "__main__":`` guard.

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
    if workers is None:
        workers = 2 if pl.patients >= PARALLEL_FROM and (os.cpu_count() or 1) >= 2 else 1
    factory = _sink_factory(params, pl, lay, export, truth)
    remote = None
    if workers > 1:
        remote = RemoteTables(factory, [t for t in lay.files if t in REMOTE_TABLES], truth / ".defects.1")
    try:
        return _run(out, params, pl, lay, factory, remote, progress, t0)
    except BaseException:
        if remote is not None:
            remote.abort()
        raise


def _sink_factory(params: GenerateParams, pl: Plan, lay: Layout, export: Path, truth: Path) -> SinkFactory:
    """Every table's sink and mess settings (the mess streams' draws are per table: ``TableMess``)."""
    sink_kw: dict[str, dict[str, Any]] = {}
    mess_kw: dict[str, dict[str, Any] | None] = {}
    for t, fl in lay.files.items():
        mess_kw[t] = None
        if pl.mess_factor > 0 and fl.file_name is not None:
            mess_kw[t] = dict(seed=params.seed, factor=pl.mess_factor, style=fl.style,
                              ledger_signed=params.ledger_sign == "signed", export_date=params.export_date)
        sink_kw[t] = dict(
            export_dir=export,
            truth_dir=truth,
            file_name=fl.file_name,
            headers=fl.headers,
            style=fl.style,
            ledger_mode=params.ledger_sign if t == "ledger" else "signed",
            ledger_columns=lay.ledger_columns if t == "ledger" else (),
            wide=lay.wide if t == "appt" else None,
            truth_nulls=("fee", "txitem_id", "trans_id") if t == "apptproc" and fl.file_name is None else (),
            count_col=_COUNT_COL.get(t),
        )
    return SinkFactory(sink_kw, mess_kw)


def _run(out: Path, params: GenerateParams, pl: Plan, lay: Layout, factory: SinkFactory,
         remote: RemoteTables | None, progress: Progress | None, t0: float) -> dict[str, Any]:
    export, truth = out / "export", out / "truth"
    # with a worker, both logs carry each defect's emit position (2 x row index + 1; file-level defects
    # and orphans before row n: 2 x n) and are merged at the end
    defects = DefectLog(truth / (".defects.0" if remote else "defects.jsonl"), ordered=remote is not None)
    for fd in lay.file_defects:
        defects.add(**fd)  # type: ignore[arg-type]
    loc_area: dict[str, str] = {}
    sinks = {t: factory(t, defects, loc_area) for t in lay.files if remote is None or t not in remote.tables}
    rows = 0

    def emit(table: str, row: dict[str, Any]) -> None:
        nonlocal rows
        if remote is not None and table in remote.tables:
            remote.write(2 * rows + 1, table, row)
        else:
            defects.order = 2 * rows + 1
            sinks[table].write(row)
        rows += 1

    pr = build_practice(params.seed, pl, emit, pl.mess_factor > 0)
    loc_area.update(pr.loc_area)
    if remote is not None:
        remote.area(pr.loc_area)
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
            defects.order = 2 * rows
            _orphans(lc, defects)
            if progress and rows - last >= 20_000:
                progress(f"location {loc.loc_id}", rows)
                last = rows
        if progress:
            progress(f"location {loc.loc_id}", rows)
    for s in sinks.values():
        s.close()
    totals = {t: s.totals() for t, s in sinks.items()}
    store.close()
    defects.close()
    if remote is not None:
        more, count, by_id = remote.close()
        totals.update(more)
        merge_defect_logs(truth / "defects.jsonl", [defects.path, remote.defect_path])
        defects.count += count
        defects.by_id.update(by_id)
    if progress:
        progress("finalize", rows)
    files = {fl.file_name: totals[t].records for t, fl in lay.files.items() if fl.file_name}
    write_outputs(out, params, pl, lay, totals, recon, ctx.dup_clusters, files, defects)
    return {
        "out": str(out),
        "files": files,
        "rows_total": rows,
        "defects": defects.count,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _orphans(lc: LocCtx, defects: DefectLog) -> None:
    """DOC1: the household's image files no document row points at (file-level defects)."""
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
