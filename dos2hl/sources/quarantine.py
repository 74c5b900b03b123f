"""Where the reader's records that cannot be staged go: quarantine chunks for a cut last record, a
record over the size limit, rows with the wrong number of fields, and the refusal of a file whose
records are mostly unreadable. A mixin of ``ExportReader`` (``reader.py``)."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ..model import TABLES
from .detect import FileFormat
from .discover import ExportFile
from .lines import BadRow, LineTracker
from .staged import FINDINGS_SCHEMA, QUARANTINE_SCHEMA, Chunk, FileStats, empty, staged_schema
from .values import REASONS, ParseContext

if TYPE_CHECKING:
    from .textstream import Utf8Stream

__all__ = ["MAX_RECORD_BYTES", "QUARANTINE_STOP_MIN", "QUARANTINE_STOP_RATE", "QuarantineRules", "reason"]

#: The longest record (one row: all its fields and line breaks, as UTF-8) the reader reads. A record
#: longer than the read block is measured (a quote-aware scan, nothing held) and read again from its
#: line with a block 4x, 16x larger..., up to this; a longer one is quarantined (CSV5) without being
#: held in memory, and reading resumes on the line after it.
MAX_RECORD_BYTES = 64 << 20
#: A file is refused (an error, the staging unbalanced) when the reader quarantines more than this
#: share of its records, and at least QUARANTINE_STOP_MIN of them: it was misread, not merely dirty.
QUARANTINE_STOP_RATE = 0.5
QUARANTINE_STOP_MIN = 20


def reason(code: str) -> str:
    return REASONS.get(code, code)


class QuarantineRules:
    """The quarantine half of ``ExportReader``: it counts, per file, the records it refused."""

    _rejected: Counter[str]

    if TYPE_CHECKING:  # ExportReader's
        def _open_at(self, f: ExportFile, fmt: FileFormat, line: int) -> Utf8Stream: ...

        def _parse_rows(self, *args: Any, **kwargs: Any) -> Iterator[Chunk]: ...

    def _cut_last(self, f: ExportFile, st: FileStats, fmt: FileFormat,
                  held: tuple[pa.RecordBatch, pa.Array, pa.Array],
                  ) -> Generator[Chunk, None, tuple[pa.RecordBatch, pa.Array, pa.Array]]:
        """The file does not end with a line break: if its last record ends inside a quoted value (the
        file was cut short), quarantine that record instead of staging a truncated value. Returns the
        rows still to stage."""
        rows, record, line = held
        n = rows.num_rows
        probe = self._open_at(f, fmt, int(line[n - 1].as_py()))
        try:
            probe.skip_record(fmt.delimiter, fmt.quotechar)
        finally:
            probe.close()
        if not probe.ended_in_quote:
            return held
        raw = fmt.delimiter.join(pc.fill_null(c, "")[n - 1].as_py() for c in rows.columns)
        row = {"file": f.key, "table": f.table, "record": record[n - 1].as_py(), "line": line[n - 1].as_py(),
               "code": "CSV2", "raw": raw,
               "reason": ("the file ends inside a quoted value opened on this record, so the record is cut "
                          "short (an interrupted export?): " + reason("CSV2"))}
        st.records += 1
        st.quarantined += 1
        st.findings["CSV2"] += 1
        self._rejected[f.key] += 1
        st.warnings.append(f"the file ends inside a quoted value (line {row['line']}): its last record is "
                           f"cut "
                           "short; was the export interrupted? Re-export to be sure nothing after it is "
                           "missing")
        yield Chunk(f.table, f.key, staged_schema(f.table).empty_table(), empty(FINDINGS_SCHEMA),
                    pa.Table.from_pylist([row], QUARANTINE_SCHEMA))
        return (rows.slice(0, n - 1), record.slice(0, n - 1), line.slice(0, n - 1))

    def _over_limit(self, f: ExportFile, st: FileStats, held: tuple[pa.RecordBatch, pa.Array, pa.Array],
                    ) -> Generator[Chunk, None, tuple[pa.RecordBatch, pa.Array, pa.Array]]:
        """Quarantine the records pyarrow read although they are over MAX_RECORD_BYTES (one that fits in
        two read blocks): the limit is the same wherever a record falls. Returns the rows to stage."""
        rows, record, line = held
        size = None
        for col in rows.columns:
            n = pc.fill_null(pc.binary_length(col), 0).cast(pa.int64())
            size = n if size is None else pc.add(size, n)
        assert size is not None  # a record batch has columns
        over = pc.greater(size, MAX_RECORD_BYTES)
        if not pc.any(over).as_py():
            return held
        out = []
        for rec, ln, sz in zip(record.filter(over).to_pylist(), line.filter(over).to_pylist(),
                               size.filter(over).to_pylist(), strict=True):
            out.append({"file": f.key, "table": f.table, "record": rec, "line": ln, "code": "CSV5",
                        "raw": None,
                        "reason": (f"the record is {sz:,} bytes, more than the {MAX_RECORD_BYTES >> 20} MiB "
                                   f"one "
                                   "record may hold: " + reason("CSV5"))})
        yield self._quarantined(f, st, "CSV5", out)
        keep = pc.invert(over)
        return rows.filter(keep), record.filter(keep), line.filter(keep)

    def _overlong_chunk(self, f: ExportFile, st: FileStats, tracker: LineTracker, size: int, newlines: int,
                        complete: bool) -> Chunk:
        """Quarantine one record too long to read (its size only: nothing of it is kept)."""
        record, line = tracker.skipped(newlines, complete)
        lines = newlines if complete else newlines + 1
        row = {"file": f.key, "table": f.table, "record": record, "line": line, "code": "CSV5",
               "reason": (f"the record is {size:,} bytes over {lines:,} lines, more than the "
                          f"{MAX_RECORD_BYTES >> 20} MiB one record may hold: " + reason("CSV5")),
               "raw": None}
        st.records += 1
        st.quarantined += 1
        st.findings["CSV5"] += 1
        self._rejected[f.key] += 1
        return Chunk(f.table, f.key, staged_schema(f.table).empty_table(), empty(FINDINGS_SCHEMA),
                     pa.Table.from_pylist([row], QUARANTINE_SCHEMA))

    def _check_rate(self, f: ExportFile, st: FileStats) -> None:
        """A file most of whose records could not be read was misread (delimiter, quote, encoding) or is
        not what its name says: refuse it rather than stage what is left of it."""
        bad = self._rejected[f.key]
        if bad >= QUARANTINE_STOP_MIN and bad > QUARANTINE_STOP_RATE * st.records and st.error is None:
            absent = [c.name for c in TABLES[f.table].columns if c.required and c.name in st.missing_columns]
            if absent:  # not misread: a column every record needs is not in the file at all
                office = (" (a single-office export: name its office in the field map's export.location, "
                          "which `dos2hl map propose` proposes)" if set(absent) & {"loc_id", "home_loc_id"}
                          else "")
                st.error = (f"{f.name}: {bad:,} of {st.records:,} records quarantined: the file has no "
                            f"column for {', '.join(absent)}, which every record needs{office}")
                return
            st.error = (f"{f.name}: {bad:,} of {st.records:,} records could not be read (over "
                        f"{QUARANTINE_STOP_RATE:.0%}): the file was probably misread (delimiter, quote "
                        f"character "
                        "or encoding) or is damaged; check it, set the export profile, or re-export it")

    def _bad_rows(self, f: ExportFile, bad: list[BadRow], st: FileStats, fmt: FileFormat,
                  colnames: list[str], mapping: dict[str, str], ctx: ParseContext) -> Iterator[Chunk]:
        """Quarantine rows with the wrong field count; re-parse lines freed from an unterminated quote."""
        broken: list[BadRow] = []
        recovered: list[tuple[BadRow, list[str]]] = []
        rejoined: list[tuple[int, str]] = []  # (index in recovered, source column of the break)
        for b in bad:
            if b.recovered:
                fields = self._split(b.text, fmt)
                if len(fields) == len(colnames):
                    recovered.append((b, fields))
                    continue
                b.fields = len(fields)
            elif b.parts:
                head, tail = self._split(b.parts[0], fmt), self._split(b.parts[1], fmt)
                fields = head[:-1] + [head[-1] + "\n" + tail[0]] + tail[1:] if head and tail else []
                if len(fields) == len(colnames):
                    rejoined.append((len(recovered), colnames[len(head) - 1]))
                    recovered.append((b, fields))
                    continue
            broken.append(b)
        if broken:
            yield self._bad_chunk(f, broken, st, fmt)
        if recovered:
            batch = pa.RecordBatch.from_arrays(
                [pa.array([fields[i] for _, fields in recovered], pa.string()) for i in range(len(colnames))],
                names=colnames)
            yield from self._parse_rows(f, st, fmt, batch,
                                        pa.array([b.record for b, _ in recovered], pa.int64()),
                                        pa.array([b.line for b, _ in recovered], pa.int64()), mapping, ctx,
                                        rejoined=rejoined)

    @staticmethod
    def _split(text: str, fmt: FileFormat) -> list[str]:
        """Fields of one line of text; [] when even Python's csv module cannot split it."""
        try:
            return next(csv.reader([text.replace("\r", " ")], delimiter=fmt.delimiter,
                                   quotechar=fmt.quotechar, strict=False), [])
        except csv.Error:
            return []

    def _bad_chunk(self, f: ExportFile, bad: list[BadRow], st: FileStats, fmt: FileFormat) -> Chunk:
        rows = []
        expected = len(fmt.header) + (1 if fmt.trailing_delimiter else 0)
        for b in bad:
            extra = ""
            if b.unterminated:
                extra = (f"; an unterminated {fmt.quotechar} quote swallowed {b.lines} lines, which were "
                         "re-read as records of their own")
            rows.append({
                "file": f.key, "table": f.table, "record": b.record, "line": b.line, "code": "CSV2",
                "reason": f"{b.fields} fields where {expected} were expected{extra}: "
                          + reason("CSV2"),
                "raw": b.text,
            })
        return self._quarantined(f, st, "CSV2", rows)

    def _quarantined(self, f: ExportFile, st: FileStats, code: str, rows: list[dict[str, object]]) -> Chunk:
        """A chunk holding only quarantined records (each read, none staged), counted under ``code``."""
        st.records += len(rows)
        st.quarantined += len(rows)
        st.findings[code] += len(rows)
        self._rejected[f.key] += len(rows)
        return Chunk(f.table, f.key, staged_schema(f.table).empty_table(), empty(FINDINGS_SCHEMA),
                     pa.Table.from_pylist(rows, QUARANTINE_SCHEMA))
