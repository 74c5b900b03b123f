"""Stream an export into canonical Arrow batches, with findings and quarantine, in bounded memory.

For each file: sniff its format (``detect``), stream it through pyarrow's CSV reader in blocks
(``Utf8Stream`` makes any encoding UTF-8 first), place every row (``lines``), parse every column to
its canonical kind (``values``), apply the cross-column rules (``rowrules``) and yield one
``Chunk`` per block. Nothing is held per file but the current block, so memory does not grow with
file size.

Every record ends in exactly one place: staged clean, staged with repairs (each recorded as a
finding), or quarantined (file, record, line, code, reason). ``FileStats.balanced`` checks it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..errors import SourceError, UnreadableFileError
from ..model import TABLES, Column, arrow_schema
from .detect import FileFormat, sniff
from .discover import Export, ExportFile
from .joined import read_joined
from .lines import LineTracker
from .prefetch import PARSE_POOL, ReadAhead, prefetch
from .quarantine import MAX_RECORD_BYTES, QuarantineRules, reason
from .rowrules import LOC_COLUMN, CodeMap, RowContext, apply_row_rules, derive_wide_procedures
from .shaped import Denormalised, list_children
from .staged import (
    FINDINGS_SCHEMA,
    LINEAGE,
    QUARANTINE_SCHEMA,
    Chunk,
    FileStats,
    empty,
    findings_table,
    staged_schema,
)
from .textstream import Utf8Stream
from .values import ParseContext, parse_column

__all__ = [
    "Chunk", "ExportReader", "FileStats", "FINDINGS_SCHEMA", "QUARANTINE_SCHEMA", "LINEAGE", "findings_table",
    "staged_schema",
]

SNIFF_BYTES = 64 * 1024
#: The CSV block a chunk is parsed from. Every step holds a few blocks in flight (read ahead, parsed,
#: held for the next) and its per-chunk work in proportion: at 4 MB a group's audit peaked at 290 MB,
#: at 2 MB 246 MB and at 1 MB 216 MB, for 12 and 25 % more CPU time (stage: 310 / 269 / 259 MB, +6 and
#: +18 %). 2 MB: most of the memory for little of the time.
BLOCK_BYTES = 2 << 20

def _key_strings(data: pa.Table, pk: tuple[str, ...]) -> pa.Array:
    parts = [pc.cast(data[c], pa.string()) for c in pk]
    if len(parts) == 1:
        return pc.fill_null(parts[0], "")
    return pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], "|")


def _stem(f: ExportFile) -> str:
    stem, dot, _ = f.name.rpartition(".")
    return stem if dot else f.name


class ExportReader(QuarantineRules):
    """Reads an ``Export`` table by table, in dependency order."""

    def __init__(self, export: Export, *, export_date: dt.date | None = None,
                 block_bytes: int = BLOCK_BYTES) -> None:
        self.export = export
        self.profile = export.profile
        self.export_date = export_date
        self.block_bytes = block_bytes
        self.stats: dict[str, FileStats] = {}
        self.formats: dict[str, FileFormat] = {}
        self.rowctx = RowContext()
        self._rejected: Counter[str] = Counter()  # file -> records the reader quarantined (not orphans)
        self.denormalised = Denormalised()  # keys of derived rows staged so far (one carrier once)
        self._deferred: set[str] = set()  # tables being joined: required columns checked after the join

    # -- preflight -------------------------------------------------------------------------
    def preflight(self) -> dict[str, FileStats]:
        """Sniff every file before anything is written; unreadable required tables stop here."""
        for table in self.export.tables():
            for f in self.export.files[table]:
                st = self.stats.setdefault(f.key, FileStats(f.key, table, bytes=f.size))
                if not f.size and not TABLES[table].required_file:
                    st.warnings.append("the file is empty (0 bytes): no records")  # nothing to lose
                    continue
                try:
                    fmt = self._sniff(f)
                except UnreadableFileError as exc:
                    st.error = str(exc)
                    continue
                self.formats[f.key] = fmt
                st.format = {k: v for k, v in asdict(fmt).items() if k != "header"}
                st.format["export_timestamp"] = str(fmt.export_timestamp) if fmt.export_timestamp else None
                if fmt.export_timestamp and self.export_date is None:
                    self.export_date = fmt.export_timestamp.date()
        for table, spec in TABLES.items():
            if spec.required_file and not any(f.key in self.formats
                                              for f in self.export.files.get(table, [])):
                errs = "; ".join(self.stats[f.key].error or "" for f in self.export.files.get(table, []))
                raise SourceError(f"no readable {self.profile.file_stem(table)} file: {errs}")
        if self.export_date is None:
            self.export_date = dt.date.today()
        return self.stats

    def _sniff(self, f: ExportFile) -> FileFormat:
        sample = self.export.store.read_bytes(f.key, length=SNIFF_BYTES) if f.size else b""
        spec = self.profile.spec(f.table)
        expected = set(spec.columns) | {c.upper() for c in TABLES[f.table].column_names}
        fmt = sniff(sample, name=f.name, expected_columns=expected)
        if self.profile.encoding and not fmt.bom:
            fmt = FileFormat(**{**asdict(fmt), "encoding": self.profile.encoding})
        if self.profile.quotechar:
            fmt = FileFormat(**{**asdict(fmt), "quotechar": self.profile.quotechar})
        if not fmt.has_header and spec.header:
            fmt = FileFormat(**{**asdict(fmt), "header": list(spec.header)})
        if not fmt.header:
            raise UnreadableFileError(
                f"{f.name}: no header row and the profile gives no column list; add `header:` for "
                f"{f.table} to the export profile"
            )
        return fmt

    # -- reading ---------------------------------------------------------------------------
    def iter_all(self) -> Iterator[Chunk]:
        if not self.formats:
            self.preflight()
        for table in self.export.read_order():
            yield from self.iter_table(table)

    def iter_table(self, table: str) -> Iterator[Chunk]:
        if not self.formats:
            self.preflight()
        files = [f for f in self.export.files.get(table, []) if f.key in self.formats]  # else: unreadable
        stems = [s.upper() for s in [self.profile.file_stem(table), *self.profile.spec(table).parts]]
        if len({_stem(f).upper() for f in files}) < 2 or not self.profile.spec(table).parts:
            for f in files:
                yield from self._iter_file(f)
            return
        # a table spread over several files: its rows held and joined on the key (``joined``); its
        # required columns are checked after the join
        self._deferred.add(table)
        try:
            yield from read_joined(table, files, stems, self._iter_file, self.stats, _key_strings)
        finally:
            self._deferred.discard(table)

    def _context(self) -> ParseContext:
        assert self.export_date is not None
        return ParseContext(
            date_order=self.profile.date_order,
            decimal_comma=self.profile.decimal_comma,
            export_date=self.export_date,
            phone_region=self.profile.phone_region,
            default_area_code=self.rowctx.default_area_code(),
        )

    def _iter_file(self, f: ExportFile) -> Iterator[Chunk]:
        fmt = self.formats[f.key]
        st = self.stats[f.key]
        table = TABLES[f.table]
        names = list(fmt.header) + (["__trailing__"] if fmt.trailing_delimiter else [])
        # Make duplicate or empty names unique so pyarrow accepts them.
        seen: Counter[str] = Counter()
        colnames: list[str] = []
        for n in names:
            base = n or "__blank__"
            seen[base] += 1
            colnames.append(base if seen[base] == 1 else f"{base}__{seen[base]}")
        mapping: dict[str, str] = {}
        spec = self.profile.spec_for(f.table, _stem(f))
        for n in colnames:
            canon = self.profile.canonical_column(f.table, n, _stem(f))
            if canon and canon not in mapping.values():
                mapping[n] = canon
        st.columns = [n for n in colnames if n != "__trailing__"]
        wide = self.profile.spec(f.table).wide_procedures
        wide_cols = set()
        if wide is not None:
            for i in range(1, wide.count + 1):
                wide_cols |= {wide.code.format(n=i), wide.tooth.format(n=i), wide.surf.format(n=i)}
        extra = set(self.rowctx.extra_columns(f.table, self.profile)) | spec.consumed()
        st.unknown_columns = [n for n in st.columns
                              if n not in mapping and n.upper() not in {w.upper() for w in wide_cols | extra}]
        st.missing_columns = [c for c in table.column_names if c not in mapping.values()]
        st.banner_lines = fmt.banner_lines
        st.header_lines = 1 if fmt.has_header else 0
        first_data = fmt.banner_lines + st.header_lines + 1
        tracker = LineTracker(len(colnames), fmt.quotechar, next_logical=first_data, next_line=first_data)
        stream = Utf8Stream(self.export.store.open_read(f.key), fmt.encoding)
        ctx = self._context()
        block, skip_rows = self.block_bytes, first_data - 1
        while True:
            failure = None
            # Each block's rows are held until the next block arrives: the file's last record may be
            # cut (the file ends inside a quoted value), which only the end of the file tells.
            held: tuple[pa.RecordBatch, pa.Array, pa.Array] | None = None
            gate = ReadAhead()  # pyarrow would read up to 32 blocks ahead of the parsing (``prefetch``)
            stream.admit = gate.admit
            try:
                for batch in prefetch(self._csv(stream, fmt, colnames, tracker, block, skip_rows), gate=gate):
                    placed = tracker.place(batch)
                    if held is not None:
                        yield from self._parse_rows(f, st, fmt, *held, mapping, ctx)
                        held = None
                    if placed.bad:
                        yield from self._bad_rows(f, placed.bad, st, fmt, colnames, mapping, ctx)
                    rows = batch.filter(placed.keep)
                    if rows.num_rows:
                        held = (rows, placed.record.filter(placed.keep), placed.line.filter(placed.keep))
                        if rows.nbytes > MAX_RECORD_BYTES:  # one record may be over the limit
                            held = yield from self._over_limit(f, st, held)
            except pa.ArrowInvalid as exc:
                failure = str(exc).splitlines()[0]  # pyarrow's message may quote the row: never shown
            tail = tracker.finish()  # the invalid rows pyarrow reported before it stopped, in order
            if held is not None:
                if failure is None and not tail and stream.last != b"\n":
                    held = yield from self._cut_last(f, st, fmt, held)
                if held[0].num_rows:
                    yield from self._parse_rows(f, st, fmt, *held, mapping, ctx)
            if tail:
                yield from self._bad_rows(f, tail, st, fmt, colnames, mapping, ctx)
            if failure is None:
                break
            if skip_rows and "Could not skip initial" in failure and "too short" in failure:
                st.warnings.append("the file has no data rows after its header")
                break
            start = tracker.next_line  # the record pyarrow could not read starts here
            if "straddl" not in failure and "block" not in failure:
                st.error = (f"{f.name}: reading stopped at line {start} (unparseable text); the rest of the "
                            "file was not read: fix the file from that line and re-export")
                break
            # A record longer than the block: measure it without holding it (a quote-aware scan from
            # its first line). Up to MAX_RECORD_BYTES, read on from that line with a block that holds
            # it; a longer record is quarantined unread and reading resumes on the line after it.
            stream.close()
            stream = self._open_at(f, fmt, start)
            size, newlines, complete = stream.skip_record(fmt.delimiter, fmt.quotechar)
            if size > MAX_RECORD_BYTES:
                yield self._overlong_chunk(f, st, tracker, size, newlines, complete)
            elif size <= block:  # not the over-long record pyarrow stopped at: never guess
                st.error = (f"{f.name}: reading stopped at line {start} (a record that could not be split); "
                            "the rest of the file was not read: fix the file from that line and re-export")
                break
            else:
                while block < size:
                    block *= 4
                block = min(block, MAX_RECORD_BYTES)
                stream.close()
                stream = self._open_at(f, fmt, start)
            tracker.restart()
            skip_rows = 0
            if stream.at_eof():
                break
        self._check_rate(f, st)
        stream.drain()
        if stream.replaced:
            st.warnings.append(f"{stream.replaced} {fmt.encoding} code units that are no character (lone "
                               "surrogates) were read as U+FFFD: check the field at the source")
        st.sha256 = stream.sha256.hexdigest()
        st.bytes = stream.bytes_read
        st.lines = tracker.next_line - 1
        st.blank_lines = tracker.blank_lines
        st.trailer_lines = tracker.trailer_lines
        st.declared_records = tracker.declared_records
        if tracker.declared_records is not None and tracker.declared_records != st.records:
            st.warnings.append(
                f"trailer declares {tracker.declared_records} records, {st.records} were read")

    def _csv(self, stream: Utf8Stream, fmt: FileFormat, colnames: list[str], tracker: LineTracker, block: int,
             skip_rows: int) -> pacsv.CSVStreamingReader:
        def skip_invalid(row: pacsv.InvalidRow) -> str:
            tracker.on_invalid(row.number, row.actual_columns, row.text)
            return "skip"

        return pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=block, skip_rows=skip_rows, column_names=colnames,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=fmt.delimiter, quote_char=fmt.quotechar, double_quote=True,
                newlines_in_values=True, ignore_empty_lines=False,
                invalid_row_handler=skip_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in colnames}, strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    def _open_at(self, f: ExportFile, fmt: FileFormat, line: int) -> Utf8Stream:
        """The file as UTF-8 from physical ``line`` on (the lines before are read and hashed, not kept)."""
        stream = Utf8Stream(self.export.store.open_read(f.key), fmt.encoding)
        stream.skip_lines(line - 1)
        return stream

    def _parse_rows(self, f: ExportFile, st: FileStats, fmt: FileFormat, rows: pa.RecordBatch,
                    record: pa.Array, line: pa.Array, mapping: dict[str, str],
                    ctx: ParseContext, rejoined: list[tuple[int, str]] | None = None) -> Iterator[Chunk]:
        table = TABLES[f.table]
        n = rows.num_rows
        by_canon = {canon: src for src, canon in mapping.items()}
        values: dict[str, pa.Array] = {}
        codes: CodeMap = {}
        # Columns parse independently and pyarrow releases the GIL: parse them on the pool.
        jobs = {col.name: PARSE_POOL.submit(self._parse, rows, by_canon[col.name], col, ctx, f.table)
                for col in table.columns if col.name in by_canon}
        for col in table.columns:
            if col.name not in jobs:
                values[col.name] = pa.nulls(n, arrow_schema(f.table).field(col.name).type)
                continue
            parsed = jobs[col.name].result()
            values[col.name] = parsed.values
            if parsed.codes.null_count < n:
                codes[col.name] = [(by_canon[col.name], parsed.codes, parsed.actions)]
        loc = LOC_COLUMN.get(f.table)
        if loc and loc not in by_canon and self.profile.location:
            # a single-office export: a file without a location column is the map's one office
            values[loc] = pa.repeat(pa.scalar(self.profile.location, values[loc].type), n)
            if self.rowctx.loc_codes and self.profile.location not in self.rowctx.loc_codes:
                note = (f"export.location {self.profile.location} is not one of the "
                        f"{len(self.rowctx.loc_codes)} offices of the export's location file")
                if note not in st.warnings:
                    st.warnings.append(note)
        apply_row_rules(f.table, rows, values, codes, self.rowctx, self.profile, ctx)
        spec = self.profile.spec_for(f.table, _stem(f))
        pending = (self.denormalised.derive(spec, f.table, rows, values, set(by_canon), ctx)
                   if spec.derived else [])
        for i, src in rejoined or ():
            # A record split by a bare line break was put back together: say where.
            mask = pa.array([j == i for j in range(n)])
            canon = mapping.get(src, src)
            codes.setdefault(canon, []).append((src,
                                                pc.if_else(mask, pa.scalar("CSV2"),
                                                           pa.scalar(None, pa.string())),
                                                pc.if_else(mask, pa.scalar("repaired"),
                                                           pa.scalar(None, pa.string()))))
        data = pa.table([values[c] for c in table.column_names], schema=arrow_schema(f.table))
        data = data.append_column("_file", pa.repeat(f.key, n))
        data = data.append_column("_record", record).append_column("_line", line)
        keys = _key_strings(data, table.pk)
        # Findings: one row per coded cell.
        parts: list[pa.Table] = []
        fixed = pa.repeat(False, n)
        for src, code_arr, action_arr in (entry for entries in codes.values() for entry in entries):
            fixed = pc.or_(fixed, pc.fill_null(pc.is_in(action_arr, pa.array(["repaired", "nulled"])), False))
            parts.append(findings_table(f.key, f.table, src, record, line, keys, code_arr, action_arr))
        findings = pa.concat_tables(parts) if parts else empty(FINDINGS_SCHEMA)
        # Rows that cannot be staged: blank primary key or required reference.
        required = [c.name for c in table.columns if c.required and (c.pk or f.table not in self._deferred)]
        bad = pa.repeat(False, n)
        for c in required:
            bad = pc.or_(bad, pc.is_null(values[c]))
        derived = None
        wide = self.profile.spec(f.table).wide_procedures
        if wide is not None and f.table == "appt":
            derived = derive_wide_procedures(rows, data, wide, ctx, f.key, keys_for=_key_strings)
        quarantine = empty(QUARANTINE_SCHEMA)
        good = pc.invert(bad)
        shaped = self.denormalised.emit(pending, good, f.key, record, line, _key_strings)
        if spec.lists and len(table.pk) == 1:
            shaped += list_children(spec, f.table, rows, values[table.pk[0]], good, f.key, record, line, ctx,
                                    _key_strings)
        if pc.any(bad).as_py():
            missing_cols = [c for c in required if pc.any(pc.and_(bad, pc.is_null(values[c]))).as_py()]
            raw = pc.binary_join_element_wise(*[pc.fill_null(rows.column(i), "")
                                                for i in range(rows.num_columns)],
                                              fmt.delimiter)
            nb = int(pc.sum(bad.cast(pa.int64())).as_py())
            quarantine = pa.table({
                "file": pa.array([f.key] * nb, pa.string()), "table": pa.array([f.table] * nb, pa.string()),
                "record": record.filter(bad), "line": line.filter(bad),
                "code": pa.array(["KEY1"] * nb, pa.string()),
                "reason": pa.array([f"blank or unreadable {'/'.join(missing_cols)}: " + reason("KEY1")] * nb,
                                   pa.string()),
                "raw": raw.filter(bad),
            }, schema=QUARANTINE_SCHEMA)
            good = pc.invert(bad)
            data = data.filter(good)
            fixed = fixed.filter(good)
            st.quarantined += nb
            st.findings["KEY1"] += nb
            self._rejected[f.key] += nb
        data = data.append_column("_repaired", fixed)
        st.records += n
        n_fixed = int(pc.sum(fixed.cast(pa.int64())).as_py() or 0)
        st.repaired += n_fixed
        st.clean += data.num_rows - n_fixed
        if findings.num_rows:
            for code, cnt in zip(*pc.value_counts(findings["code"]).flatten(), strict=True):
                st.findings[code.as_py()] += cnt.as_py()
        self.rowctx.observe(f.table, data)
        unmapped = rows.select(st.unknown_columns) if st.unknown_columns else None
        yield Chunk(f.table, f.key, data, findings, quarantine, unmapped)
        if derived is not None:
            derived, dfind = derived
            st.derived += derived.num_rows
            st.derived_tables["apptproc"] += derived.num_rows
            if derived.num_rows or dfind.num_rows:
                yield Chunk("apptproc", f.key, derived, dfind, empty(QUARANTINE_SCHEMA))
        for d in shaped:
            st.derived += d.data.num_rows
            st.derived_tables[d.table] += d.data.num_rows
            st.derived_quarantined += d.quarantine.num_rows
            for code in d.quarantine["code"].to_pylist():
                st.findings[code] += 1
            if d.data.num_rows or d.findings.num_rows or d.quarantine.num_rows:
                yield Chunk(d.table, f.key, d.data, d.findings, d.quarantine)

    def _parse(self, rows: pa.RecordBatch, src: str, col: Column, ctx: ParseContext, table: str):  # type: ignore[no-untyped-def]
        raw = rows.column(src)
        if col.kind == "phone":
            return self.rowctx.parse_phones(table, rows, raw, col, ctx, self.profile)
        return parse_column(raw, col, ctx)
