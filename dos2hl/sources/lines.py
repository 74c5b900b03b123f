"""Record and line accounting for one export file.

pyarrow's streaming CSV reader hands us valid rows in batches and invalid rows (wrong field count)
through a callback with their logical row number. This module puts the two streams back in file
order and gives every row its 1-based record index and the physical line where it starts, so
that every finding and every quarantined row can name its line. Blank lines and trailer lines
are counted, but are not records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from .detect import is_trailer, trailer_count

__all__ = ["BadRow", "LineTracker", "Placed"]


@dataclass
class BadRow:
    """A row pyarrow could not split into the expected number of fields."""

    logical: int
    fields: int
    text: str
    record: int = 0
    line: int = 0
    lines: int = 1  # physical lines it spans
    recovered: bool = False  # a line freed from an unterminated quote: re-parse it as a record
    unterminated: bool = False  # this row opened a quote that never closed
    parts: list[str] = field(default_factory=list)  # fragments of a record split by a bare line break


@dataclass
class Placed:
    """Where the valid rows of one batch sit in the file."""

    keep: pa.Array  # bool: row is a record (not a blank line)
    record: pa.Array  # int64 record index (for kept rows)
    line: pa.Array  # int64 physical start line (for kept rows)
    bad: list[BadRow]  # invalid rows interleaved before/within this batch, in order


@dataclass
class LineTracker:
    """Walks a file's rows in order: valid batches and the invalid rows between them."""

    expected_fields: int
    quotechar: str
    next_logical: int  # pyarrow's logical row number of the next data row
    next_line: int  # physical line of the next data row
    records: int = 0
    blank_lines: int = 0
    trailer_lines: int = 0
    declared_records: int | None = None
    pending: dict[int, BadRow] = field(default_factory=dict)

    def on_invalid(self, number: int | None, fields: int, text: str) -> None:
        """pyarrow's invalid-row callback (``use_threads=False`` gives the logical number).

        It may run on the reading thread, ahead of the batch being placed: rows are keyed by their
        logical number, so placing stays in file order whatever arrives first."""
        logical = number if number is not None else -(len(self.pending) + 1)
        self.pending[logical] = BadRow(logical, fields, text)

    def _consume_bad(self, out: list[BadRow]) -> None:
        while self.next_logical in self.pending:
            bad = self.pending.pop(self.next_logical)
            self.next_logical += 1
            physical = bad.text.split("\n")
            if len(physical) > 1 and bad.text.count(self.quotechar) % 2 == 1:
                # An unterminated quote swallowed the lines after it: quarantine the line that
                # opened it and give every swallowed line back as a record of its own.
                self._place(BadRow(bad.logical, bad.fields, physical[0].rstrip("\r"), unterminated=True,
                                   lines=len(physical)), out)
                for text in physical[1:]:
                    self._place(BadRow(bad.logical, 0, text.rstrip("\r"), recovered=True), out)
            else:
                self._place(bad, out)

    def _place(self, bad: BadRow, out: list[BadRow]) -> None:
        bad.line = self.next_line
        span = 1 if (bad.unterminated or bad.recovered) else 1 + bad.text.count("\n")
        swallowed = bad.lines if bad.unterminated else span
        bad.lines = swallowed
        self.next_line += span
        stripped = bad.text.strip()
        if not stripped:
            self.blank_lines += span
        elif (bad.fields == 1 or bad.recovered) and is_trailer(stripped):
            self.trailer_lines += span
            self.declared_records = trailer_count(stripped)
        elif self._rejoins(bad, out):
            return
        else:
            self.records += 1
            bad.record = self.records
            out.append(bad)

    def _rejoins(self, bad: BadRow, out: list[BadRow]) -> bool:
        """An unquoted line break splits a record in two rows whose field counts add up to one more
        than expected (the broken field is counted twice): put the halves back together."""
        prev = out[-1] if out else None
        if (prev is None or prev.recovered or prev.unterminated or bad.recovered or prev.parts
                or prev.logical + 1 != bad.logical or prev.fields + bad.fields - 1 != self.expected_fields):
            return False
        prev.parts = [prev.text, bad.text]
        prev.text = prev.text + "\n" + bad.text
        prev.lines += bad.lines
        return True

    def place(self, batch: pa.RecordBatch) -> Placed:
        """Assign record indexes and lines to a batch of valid rows (in file order)."""
        n = batch.num_rows
        out: list[BadRow] = []
        # Newlines inside quoted values make a row span several physical lines.
        newlines = None
        blank = None
        for col in batch.columns:
            nl = pc.count_substring(col, "\n")
            newlines = nl if newlines is None else pc.add(newlines, nl)
            empty = pc.equal(pc.utf8_length(col), 0)
            blank = empty if blank is None else pc.and_(blank, empty)
        assert newlines is not None and blank is not None
        spans = pc.add(newlines, 1).cast(pa.int64())
        keep = pc.invert(blank)
        self._consume_bad(out)
        lo = self.next_logical
        pending = list(self.pending)  # the reading thread may add rows of later blocks meanwhile
        if not any(lo <= k < lo + n + len(pending) for k in pending):
            starts = pc.subtract(pc.cumulative_sum(spans), spans)
            line = pc.add(starts, self.next_line)
            rec = pc.add(pc.cumulative_sum(keep.cast(pa.int64())), self.records)
            self.next_line += int(pc.sum(spans).as_py() or 0)
            kept = int(pc.sum(keep.cast(pa.int64())).as_py() or 0)
            self.blank_lines += n - kept
            self.records += kept
            self.next_logical += n
            return Placed(keep, rec, line, out)
        # Slow path: invalid rows interleave with this batch; walk row by row.
        spans_py = spans.to_pylist()
        keep_py = keep.to_pylist()
        lines: list[int] = []
        recs: list[int] = []
        for i in range(n):
            self._consume_bad(out)
            lines.append(self.next_line)
            self.next_line += spans_py[i]
            self.next_logical += 1
            if keep_py[i]:
                self.records += 1
            else:
                self.blank_lines += spans_py[i]
            recs.append(self.records)
        self._consume_bad(out)
        return Placed(keep, pa.array(recs, pa.int64()), pa.array(lines, pa.int64()), out)

    def restart(self) -> None:
        """A new pyarrow reader resumes at ``next_line`` (skip_rows=0): its rows count from 1 again."""
        self.pending.clear()
        self.next_logical = 1

    def skipped(self, newlines: int, complete: bool) -> tuple[int, int]:
        """Account for one record consumed without pyarrow (too long to read): ``(record, line)``."""
        self.records += 1
        at = self.next_line
        self.next_line += newlines if complete else newlines + 1
        return self.records, at

    def finish(self) -> list[BadRow]:
        """Place the invalid rows after the last batch (trailer, truncated last record)."""
        out: list[BadRow] = []
        while self.pending:
            if self.next_logical not in self.pending:
                # Numbers we never saw as valid rows cannot exist; jump to the next invalid one.
                self.next_logical = min(self.pending)
            self._consume_bad(out)
        return out
