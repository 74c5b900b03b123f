"""Streaming sinks: one dirty export file + one truth Parquet file per canonical table.

A sink receives clean canonical rows (dicts), asks the mess engine for dirty cell spellings, writes
the CSV record (it knows the physical line each record starts on, so defects.jsonl can point at it),
and buffers the clean row for ``truth/<table>.parquet`` (flushed in batches to a spill file that
becomes the Parquet file at close, so memory does not grow with the table).

Private row keys understood here: ``__d`` semantic defects ``[(defect_id, column, expect, destroyed)]``
that are already true in the row (audit), ``__s`` columns to spell as a sentinel date, ``__w`` the
wide appointment procedures ``[(code, tooth, surf)]``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from ..model import TABLES, arrow_schema
from .formats import FileStyle, formatter, quote_field, row_formatter

__all__ = ["DefectLog", "MessHook", "SinkTotals", "TableSink", "merge_defect_logs", "value_hash"]

_BATCH = 8_192
#: Rows per row group of a truth Parquet file (16 spilled batches of ``_BATCH``).
TRUTH_ROW_GROUP = 16 * _BATCH
_CHUNK_CHARS = 1 << 20
_PAYMENT_SPLIT = {"CASH": "CASH_AMT", "CHK": "CHECK_AMT", "EFT": "CHECK_AMT", "OTHER": "CHECK_AMT"}


# what json.dumps(v, default=str) writes, without building an encoder per call (dumps does when given
# ``default``): tens of thousands of defects per run
_JSON = json.JSONEncoder(default=str).encode
_ESC: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_AS_STR = frozenset({Decimal, dt.date, dt.datetime, dt.time})  # JSON strings through default=str


def _json(v: Any) -> str:
    """``json.dumps(v, default=str)``, spelled directly for the types a defect line holds (str, None,
    bool, int, the ``default=str`` types, dicts of them); anything else goes to the encoder."""
    t = type(v)
    if t is str:
        return _ESC(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return int.__repr__(v)
    if t in _AS_STR:
        return _ESC(str(v))
    if t is dict and all(type(k) is str for k in v):
        return "{" + ", ".join([_ESC(k) + ": " + _json(x) for k, x in v.items()]) + "}"
    return _JSON(v)


def value_hash(v: Any) -> str:
    return "sha256:" + hashlib.sha256(_json(v).encode()).hexdigest()


class MessHook(Protocol):
    def apply(
        self, row: dict[str, Any], sentinels: Any
    ) -> tuple[dict[str, str] | None, list[tuple] | None]: ...


class DefectLog:
    """``truth/defects.jsonl``, written as defects happen (never held in memory).

    ``ordered``: each line starts with ``order`` and a tab (the emit position of the defect's row, set by
    the caller), so the logs of the processes that write tables side by side merge back into the one
    order a single process writes (``merge_defect_logs``)."""

    def __init__(self, path: Path, *, ordered: bool = False) -> None:
        self.path = path
        self._f = path.open("w", encoding="utf-8", newline="\n")
        self.count = 0
        self.by_id: Counter[str] = Counter()
        self.ordered = ordered
        self.order = 0

    def add(
        self,
        *,
        defect_id: str,
        file: str,
        table: str,
        record: int | None,
        line: int | None,
        key: dict[str, Any] | None,
        column: str | None,
        canonical_column: str | None,
        expect: str,
        destroyed: bool,
        clean_value: Any = None,
        scope_file: bool = False,
    ) -> None:
        # the line json.dumps(dict(defect_id=..., ..., clean_value_hash=...[, scope="file"]), default=str)
        # writes, in that key order (tests/generate/test_writer_lines.py checks it)
        j = _json
        text = (
            f'{{"defect_id": {j(defect_id)}, "file": {j(file)}, "table": {j(table)}, "record": {j(record)}, '
            f'"line": {j(line)}, "key": {j(key)}, "column": {j(column)}, '
            f'"canonical_column": {j(canonical_column)}, "expect": {j(expect)}, "destroyed": {j(destroyed)}, '
            + ('"clean_value_hash": null, "scope": "file"}\n' if scope_file
               else f'"clean_value_hash": "{value_hash(clean_value)}"}}\n')
        )
        self._f.write(f"{self.order}\t{text}" if self.ordered else text)
        self.count += 1
        self.by_id[defect_id] += 1

    def close(self) -> None:
        self._f.close()


def merge_defect_logs(out: Path, parts: list[Path]) -> None:
    """Ordered logs (``DefectLog(ordered=True)``) -> one plain log in emit order; a tie keeps the order
    of ``parts`` (the main process's first: its file-level defects and orphans precede the rows)."""

    def lines(path: Path) -> Iterator[tuple[int, str]]:
        with path.open(encoding="utf-8", newline="\n") as f:
            for line in f:
                order, _tab, text = line.partition("\t")
                yield int(order), text

    with out.open("w", encoding="utf-8", newline="\n") as f:
        f.writelines(text for _order, text in heapq.merge(*map(lines, parts), key=itemgetter(0)))
    for path in parts:
        path.unlink()


@dataclass(frozen=True, slots=True)
class SinkTotals:
    """What the run's summary and recon.json need of a closed sink (the sink may be in another process)."""

    records: int
    counts: Counter[str]
    count_col: str | None


class TableSink:
    """Writes one table: the dirty CSV (unless ``file_name`` is None) and the truth Parquet."""

    def __init__(
        self,
        table: str,
        *,
        export_dir: Path,
        truth_dir: Path,
        file_name: str | None,
        headers: dict[str, str],
        style: FileStyle,
        defects: DefectLog,
        mess: MessHook | None,
        ledger_mode: str = "signed",
        ledger_columns: tuple[str, ...] = (),
        wide: tuple[str, str, str, int] | None = None,
        truth_nulls: tuple[str, ...] = (),
        count_col: str | None = None,
    ) -> None:
        self.table = table
        self.t = TABLES[table]
        self.cols = self.t.column_names
        self.pk = self.t.pk
        self.file_name = file_name
        self.style = style
        self.defects = defects
        self.mess = mess
        self.headers = headers
        self._cells = row_formatter(self.t.columns, style)
        self.idx = {c: i for i, c in enumerate(self.cols)}
        self.ledger_mode = ledger_mode
        self.ledger_columns = ledger_columns
        self.wide = wide
        self.truth_nulls = truth_nulls
        self.count_col = count_col
        self.counts: Counter[str] = Counter()
        self.records = 0
        self.lines = 0
        self._chunks: list[str] = []
        self._chunk_len = 0
        self._rows: list[tuple[Any, ...]] = []
        self._values = itemgetter(*self.cols)  # every table has 3 or more columns: a tuple
        self._delim, self._quote = style.delimiter, style.quote
        self._eol = style.delimiter + "\r\n" if style.ragged else "\r\n"
        self._schema = arrow_schema(table)
        # The clean rows spill to an Arrow IPC stream (which keeps nothing per batch) and become
        # truth/<table>.parquet at close: a Parquet writer keeps the metadata of every row group it has
        # written until it closes (~1 KB a column chunk, with its statistics), and with every table's
        # open at once that summed to ~300 MB at 1 M patients (16 k row groups of 8,192 rows). At close
        # the spilled batches are written a table at a time, in row groups of TRUTH_ROW_GROUP rows.
        self._truth_path = truth_dir / f"{table}.parquet"
        self._spill_path = truth_dir / f".{table}.truth.arrows"
        self._spill = pa.ipc.new_stream(str(self._spill_path), self._schema)
        self._code_fmt = formatter(TABLES["apptproc"].by_name["proc_code"], style)
        self._f = None
        if file_name is not None:
            self._f = (export_dir / file_name).open("wb")
            if style.encoding == "utf-8-sig":
                self._f.write(b"\xef\xbb\xbf")
            elif style.encoding == "utf-16":
                self._f.write(b"\xff\xfe")
            if style.banner:
                self._emit(style.banner + "\r\n")
            self._emit(style.delimiter.join(self._header()) + "\r\n")

    # -- layout --------------------------------------------------------------------------------
    def _header(self) -> list[str]:
        h = [self.headers[c] for c in self.cols]
        h.extend(self.ledger_columns)
        if self.wide is not None:
            code, tooth, surf, n = self.wide
            for pat in (code, tooth, surf):
                h.extend(pat.format(n=i) for i in range(1, n + 1))
        return h

    def _emit(self, text: str) -> None:
        self._chunks.append(text)
        self._chunk_len += len(text)
        self.lines += text.count("\n")
        if self._chunk_len > _CHUNK_CHARS:
            self._flush_text()

    def _flush_text(self) -> None:
        if self._f is None or not self._chunks:
            return
        text = "".join(self._chunks)
        enc = {"utf-8-sig": "utf-8", "utf-16": "utf-16-le"}.get(self.style.encoding, self.style.encoding)
        self._f.write(text.encode(enc))
        self._chunks.clear()
        self._chunk_len = 0

    # -- rows ----------------------------------------------------------------------------------
    def write(self, row: dict[str, Any]) -> None:
        sem = row.pop("__d", None)
        sent = row.pop("__s", None)
        wide = row.pop("__w", None)
        if self.count_col is not None:
            self.counts[row[self.count_col]] += 1
        self.records += 1
        if self._f is None:
            for c in self.truth_nulls:
                row[c] = None
            self._truth_row(row)
            return
        over = cell_defects = None
        if self.mess is not None:
            over, cell_defects = self.mess.apply(row, sent)
        cells = self._cells(row)
        if self.ledger_mode != "signed":
            self._ledger_cells(row, cells)
        if self.wide is not None:
            self._wide_cells(wide or [], cells)
        if over:
            for c, txt in over.items():
                cells[self.idx[c]] = txt
        # _line and _emit, inline (once per record): a line that needs no quoting has one line break
        d = self._delim
        text = d.join(cells)
        start = self.lines + 1
        if self._quote in text or "\n" in text or "\r" in text or text.count(d) != len(cells) - 1:
            text = self._line(cells)
            self.lines += text.count("\n")
        else:
            text += self._eol
            self.lines = start
        self._chunks.append(text)
        self._chunk_len += len(text)
        if self._chunk_len > _CHUNK_CHARS:
            self._flush_text()
        if sem or cell_defects:
            self._log(row, start, sem, cell_defects)
        self._truth_row(row)

    def _truth_row(self, row: dict[str, Any]) -> None:
        """Buffer the clean row as a tuple in column order (the dict can go; the tuples are transposed
        into columns when the batch is full)."""
        rows = self._rows
        rows.append(self._values(row))
        if len(rows) >= _BATCH:
            self._flush_truth()

    def _line(self, cells: list[str]) -> str:
        """One CSV record. Most records need no quoting at all: joined first, the line is checked once
        (no quote char, no line break, one delimiter fewer than cells) instead of cell by cell."""
        st = self.style
        d, q = st.delimiter, st.quote
        text = d.join(cells)
        if q in text or "\n" in text or "\r" in text or text.count(d) != len(cells) - 1:
            text = d.join([quote_field(c, d, q) for c in cells])
        return text + self._eol

    def _ledger_cells(self, row: dict[str, Any], cells: list[str]) -> None:
        amt = row["amount"]
        i = self.idx["amount"]
        if self.ledger_mode == "drcr":
            cells[i] = f"{abs(amt):.2f}"
            cells.append("D" if amt >= 0 else "C")
            return
        extra = {c: "" for c in self.ledger_columns}
        if row["trans_type"] in ("PMT", "INSPMT", "PREPAY") and amt <= 0:
            target = _PAYMENT_SPLIT.get(row["pay_method"] or "CHK", "CARD_AMT")
            extra[target] = f"{-amt:.2f}"
            cells[i] = ""
        cells.extend(extra.values())

    def _wide_cells(self, procs: list[tuple[str, str | None, str | None]], cells: list[str]) -> None:
        n = self.wide[3]  # type: ignore[index]
        procs = procs[:n] + [(None, None, None)] * (n - len(procs[:n]))  # type: ignore[list-item]
        cells.extend(self._code_fmt(p[0]) if p[0] else "" for p in procs)
        cells.extend(p[1] or "" for p in procs)
        cells.extend(p[2] or "" for p in procs)

    def _log(self, row: dict[str, Any], line: int, sem: list[tuple] | None, cell: list[tuple] | None) -> None:
        key = {k: row[k] for k in self.pk}
        for items in (sem or ()), (cell or ()):
            for item in items:
                defect_id, col, expect, destroyed = item[:4]
                clean = item[4] if len(item) > 4 else row.get(col)
                self.defects.add(
                    defect_id=defect_id,
                    file=self.file_name or "",
                    table=self.table,
                    record=self.records,
                    line=line,
                    key=key,
                    column=self.headers.get(col, col.upper()),
                    canonical_column=col,
                    expect=expect,
                    destroyed=destroyed,
                    clean_value=clean,
                )

    def _flush_truth(self) -> None:
        if not self._rows:
            return
        columns = zip(*self._rows, strict=True)
        arrays = [pa.array(col, type=f.type) for col, f in zip(columns, self._schema, strict=True)]
        self._spill.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self._rows = []

    def _write_truth(self) -> None:
        """The spilled batches as truth/<table>.parquet, in row groups of ``TRUTH_ROW_GROUP`` rows (a
        row group per spilled batch kept ~1 KB of metadata per column chunk until the writer closed,
        and about as much again to write the footer: ~250 MB for the 1 M-patient ledger's 4,817)."""
        self._spill.close()
        with pq.ParquetWriter(self._truth_path, self._schema) as out, pa.OSFile(str(self._spill_path)) as f:
            group: list[pa.RecordBatch] = []
            rows = 0
            for batch in pa.ipc.open_stream(f):
                group.append(batch)
                rows += batch.num_rows
                if rows >= TRUTH_ROW_GROUP:
                    out.write_table(pa.Table.from_batches(group, schema=self._schema), row_group_size=rows)
                    group, rows = [], 0
            if group:
                out.write_table(pa.Table.from_batches(group, schema=self._schema), row_group_size=rows)
        self._spill_path.unlink()

    def close(self) -> int:
        self._flush_truth()
        self._write_truth()
        if self._f is not None:
            if self.style.trailer:
                self._emit(f"*** {self.records} records ***\r\n")
            self._flush_text()
            self._f.close()
        return self.records

    def totals(self) -> SinkTotals:
        return SinkTotals(self.records, self.counts, self.count_col)
