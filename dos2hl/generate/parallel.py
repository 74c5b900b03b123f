"""Some tables written in a second process, beside the simulation (``generate(workers=2)``).

The simulation stays in one process: its ids and random streams run through the locations in order.
What is per table (the mess stream's draws, CSV formatting, the truth Parquet) moves: each table is
written by exactly one process, row after row in emit order, with its own mess stream as before, so
every file holds the bytes a one-process run writes. defects.jsonl interleaves the tables in emit
order: each process logs its defects with the emit position of their row, and the logs are merged by
it when both are done (``writer.merge_defect_logs``).
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import Dos2hlError
from .writer import DefectLog, SinkTotals, TableSink

__all__ = ["RemoteTables", "SinkFactory"]

_BATCH = 4_000  # rows per message: large enough that pickling dominates the pipe's per-message cost


class SinkFactory:
    """Builds a table's sink the same way in either process (picklable: it travels to the worker)."""

    def __init__(self, sink_kw: dict[str, dict[str, Any]], mess_kw: dict[str, dict[str, Any] | None]) -> None:
        self.sink_kw, self.mess_kw = sink_kw, mess_kw

    def __call__(self, table: str, defects: DefectLog, loc_area: dict[str, str]) -> TableSink:
        from .mess import TableMess

        mk = self.mess_kw[table]
        mess = TableMess(table, loc_area=loc_area, **mk) if mk is not None else None
        return TableSink(table, defects=defects, mess=mess, **self.sink_kw[table])


def _serve(conn: Connection, factory: SinkFactory, tables: list[str], defect_path: str) -> None:
    """The worker: write the rows it is sent until told to close; answer with the tables' totals."""
    loc_area: dict[str, str] = {}
    defects = DefectLog(Path(defect_path), ordered=True)
    try:
        sinks = {t: factory(t, defects, loc_area) for t in tables}
        while True:
            kind, body = conn.recv()
            if kind == "rows":
                for order, table, row in body:
                    defects.order = order
                    sinks[table].write(row)
            elif kind == "area":
                loc_area.update(body)
            else:
                break
        for s in sinks.values():
            s.close()
        defects.close()
        conn.send(("done", {t: s.totals() for t, s in sinks.items()}, defects.count, defects.by_id))
    except Exception as exc:  # the main process reports it: the type only (a message can hold a value)
        conn.send(("error", type(exc).__name__, 0, None))
        raise SystemExit(1) from None


class RemoteTables:
    """The main process's side: batches ``(order, table, row)`` to the worker, which writes ``tables``."""

    def __init__(self, factory: SinkFactory, tables: list[str], defect_path: Path) -> None:
        ctx = mp.get_context("spawn")  # no fork of a process that may hold threads (progress, pyarrow)
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, factory, tables, str(defect_path)),
                                 name="dos2hl-generate-tables", daemon=True)
        self._proc.start()
        child.close()
        self.tables = frozenset(tables)
        self.defect_path = defect_path
        self._batch: list[tuple[int, str, dict[str, Any]]] = []

    def write(self, order: int, table: str, row: dict[str, Any]) -> None:
        self._batch.append((order, table, row))
        if len(self._batch) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._conn.send(("rows", self._batch))
            self._batch = []

    def area(self, loc_area: dict[str, str]) -> None:
        """The offices' area codes (the patient file's phone spellings use them), once the practice
        is built."""
        self.flush()
        self._conn.send(("area", dict(loc_area)))

    def abort(self) -> None:
        """Stop the worker (the run failed in the main process)."""
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=10)

    def close(self) -> tuple[dict[str, SinkTotals], int, Any]:
        """Every table closed; their totals, and the worker's defect count and counts by id."""
        try:
            self.flush()
            self._conn.send(("close", None))
            kind, totals, count, by_id = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise Dos2hlError("the generator's table writer process stopped unexpectedly") from exc
        finally:
            self._proc.join(timeout=60)
        if kind != "done":
            raise Dos2hlError(f"the generator's table writer process failed ({totals})")
        return totals, count, by_id
