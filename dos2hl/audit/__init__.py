"""The source audit: what is in an export, how dirty it is, and where each table goes in HighLevel.

``run_audit`` reads the export with the same reader as staging (so the audit's counts are the
counts staging will have) and writes ``audit.json`` (machine-readable) and ``audit.md`` (the source
schema document). It reports ids, counts and line numbers only, never a patient value; value
distributions are given only for code-like columns (enums, lookups, booleans), whose values are
codes, not data about a person.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..api import open_export
from ..model import TABLES, Column
from ..progress import ProgressFn
from ..settings import S3Settings
from ..sources.discover import Export
from ..sources.reader import Chunk, ExportReader
from ..sources.values import REASONS
from ..staging import Partitioner, move_to_quarantine
from .checks import SemanticChecks
from .docindex import GONE, UNSAFE_FILE, DocumentIndex, iter_keys
from .infer import SAMPLE, infer_kind
from .keys import IdSet
from .render import render_markdown

__all__ = ["run_audit", "DISTINCT_BYTES", "SAMPLE_REFS"]

#: A column's distinct values are kept, and counted exactly, while they take up to this many bytes; past
#: it the column reports ">= N" (the values it had) and keeps none. A bound in bytes, not values: 100 k
#: values a column held a note column's ~50 MB and ~45 MB over a group's columns, until the end.
DISTINCT_BYTES = 256 << 10
SAMPLE_REFS = 20  # row references kept per finding code
_CODE_KINDS = ("enum", "lookup", "bool")


@dataclass
class _ColumnAcc:
    kind: str
    phi: str
    rows: int = 0
    nulls: int = 0
    # the distinct values so far as Arrow arrays (each chunk's, folded together now and then): a few
    # bytes a value where a Python set took ~100; at most ``DISTINCT_BYTES`` of them (and a chunk's)
    distinct_parts: list[pa.Array] = field(default_factory=list)
    pending: int = 0
    pending_bytes: int = 0
    capped: bool = False
    at_least: int = 0  # capped: the distinct values counted when the bound was passed
    sealed: bool = False  # every row is in: ``pending`` is the distinct count, and no value is kept
    values: Counter[str] = field(default_factory=Counter)

    def add(self, arr: pa.ChunkedArray | pa.Array) -> None:
        if self.sealed:
            raise RuntimeError("rows added to a column's statistics after they were sealed")
        self.rows += len(arr)
        self.nulls += arr.null_count
        if not self.capped:
            uniq = pc.unique(arr.drop_null())
            self.distinct_parts.append(uniq.combine_chunks() if isinstance(uniq, pa.ChunkedArray) else uniq)
            self.pending += len(uniq)
            self.pending_bytes += self.distinct_parts[-1].nbytes
            if self.pending_bytes > DISTINCT_BYTES or len(self.distinct_parts) > 64:
                self._fold()
        if self.kind in _CODE_KINDS and len(arr):
            vc = pc.value_counts(arr.drop_null())
            for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
                self.values[str(v)] += c

    def _fold(self) -> None:
        if len(self.distinct_parts) > 1:
            self.distinct_parts = [pc.unique(pa.concat_arrays(self.distinct_parts))]
        self.pending = len(self.distinct_parts[0]) if self.distinct_parts else 0
        self.pending_bytes = self.distinct_parts[0].nbytes if self.distinct_parts else 0
        if self.pending_bytes > DISTINCT_BYTES:
            self.capped, self.at_least = True, self.pending
            self.distinct_parts, self.pending, self.pending_bytes = [], 0, 0

    def seal(self) -> None:
        """No more rows: the distinct values are counted and dropped."""
        if not self.capped:
            self._fold()
            self.distinct_parts = []
            self.pending_bytes = 0
        self.sealed = True

    @property
    def distinct(self) -> int:
        """Distinct non-null values (exact while they fit in ``DISTINCT_BYTES``; past it, -1)."""
        if not self.sealed:
            self._fold()
        return -1 if self.capped else self.pending

    def to_dict(self) -> dict[str, object]:
        n = self.distinct
        d: dict[str, object] = {
            "kind": self.kind, "phi": self.phi, "rows": self.rows, "nulls": self.nulls,
            "null_rate": round(self.nulls / self.rows, 4) if self.rows else None,
            "distinct": f">={self.at_least}" if self.capped else n,
        }
        if self.values:
            d["values"] = dict(self.values.most_common(25))
        return d


class _Audit:
    def __init__(self, reader: ExportReader, documents: DocumentIndex | Mapping[str, int] | None = None, *,
                 spill: Path | None = None) -> None:
        self.reader = reader
        self.checks = SemanticChecks(documents, spill=spill)
        self.partition = Partitioner(1)
        self.rows: Counter[str] = Counter()
        self.by_location: dict[str, Counter[str]] = defaultdict(Counter)
        self.columns: dict[str, dict[str, _ColumnAcc]] = {}
        self.finding_counts: Counter[tuple[str, str]] = Counter()  # (code, action)
        self.finding_refs: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
        # keys: integer ids as bitmaps (audit.keys, flat in the export's size); code keys as their values
        self.pks: dict[str, list[pa.Array]] = defaultdict(list)
        self.fk_values: dict[tuple[str, str], list[pa.Array]] = defaultdict(list)
        self.pk_ids: dict[str, IdSet] = defaultdict(IdSet)
        self.fk_ids: dict[tuple[str, str], IdSet] = defaultdict(lambda: IdSet(duplicates=False))
        # what ``settle`` decided once the tables involved were read (None: nothing to report)
        self.settled_orphans: dict[tuple[str, str], dict[str, object] | None] = {}
        self.settled_duplicates: dict[str, dict[str, object] | None] = {}
        self.udf_defs: list[dict[str, object]] = []
        # Columns the profile does not map: raw-text statistics and a value sample for type inference.
        self.unmapped: dict[tuple[str, str], _ColumnAcc] = {}
        self.unmapped_sample: dict[tuple[str, str], list[str]] = defaultdict(list)

    def add(self, chunk: Chunk) -> None:
        t = TABLES[chunk.table]
        data, loc, _, orphans = self.partition(chunk)
        if orphans is not None and orphans.num_rows:
            move_to_quarantine(self.reader.stats, chunk, orphans)
            self._refs("FK1", orphans, action="quarantined")
        self._refs_quarantine(chunk.quarantine)
        self.rows[chunk.table] += data.num_rows
        if data.num_rows:
            vc = pc.value_counts(loc)
            for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
                self.by_location[chunk.table][v] += c
        if len(t.pk) == 1 and _int_key(chunk.table):  # before the references: a row may name one of its chunk
            self.pk_ids[chunk.table].add(data[t.pk[0]])
        elif len(t.pk) == 1:  # composite keys are neither checked for duplicates nor referred to
            self.pks[chunk.table].append(pc.cast(data[t.pk[0]], pa.string()).combine_chunks())
        cols = self.columns.setdefault(chunk.table, {c.name: _ColumnAcc(c.kind, c.phi) for c in t.columns})
        for c in t.columns:
            cols[c.name].add(data[c.name])
            if c.fk and _int_ref(c):  # only what the parent does not hold yet
                self.fk_ids[(chunk.table, c.name)].add_unresolved(data[c.name], self.pk_ids.get(c.fk))
            elif c.fk:  # code keys (provider, procedure code...): their distinct values, folded now and then
                parts = self.fk_values[(chunk.table, c.name)]
                parts.append(pc.unique(data[c.name].combine_chunks().drop_null()))
                if len(parts) >= 64:
                    parts[:] = [pc.unique(pa.concat_arrays(parts))]
        for row in chunk.findings.to_pylist():
            self.finding_counts[(row["code"], row["action"])] += 1
            refs = self.finding_refs[(row["code"], row["action"])]
            if len(refs) < SAMPLE_REFS:
                refs.append({"file": row["file"], "line": row["line"], "record": row["record"],
                             "column": row["column"], "key": row["key"]})
        self.checks.add(chunk.table, data)
        if chunk.unmapped is not None:
            for name in chunk.unmapped.column_names:
                raw = pc.utf8_trim_whitespace(chunk.unmapped[name])
                raw = pc.if_else(pc.equal(raw, ""), pa.scalar(None, pa.string()), raw)
                key = (chunk.file, name)
                self.unmapped.setdefault(key, _ColumnAcc("str", "D")).add(raw)
                sample = self.unmapped_sample[key]
                if len(sample) < SAMPLE:
                    sample.extend(raw.drop_null().slice(0, SAMPLE - len(sample)).to_pylist())
        if chunk.table == "userfld":
            self.udf_defs.extend(data.select(["field_id", "field_name", "field_type",
                                              "picklist"]).to_pylist())

    def _refs(self, code: str, q: pa.Table, *, action: str) -> None:
        self.finding_counts[(code, action)] += q.num_rows
        refs = self.finding_refs[(code, action)]
        for row in q.slice(0, max(0, SAMPLE_REFS - len(refs))).to_pylist():
            refs.append({"file": row["file"], "line": row["line"], "record": row["record"]})

    def _refs_quarantine(self, q: pa.Table) -> None:
        for code in set(q["code"].to_pylist()) if q.num_rows else ():
            self._refs(code, q.filter(pc.equal(q["code"], code)), action="quarantined")

    def settle(self, open_tables: Collection[str]) -> None:
        """Decide what the tables already read allow, and drop what it took: the orphans of a reference
        whose table and parent can receive no more rows, the duplicate keys of a table that no table
        still open refers to, and the parent maps (``Partitioner.retire``). ``open_tables``: the
        tables the file being read may still add rows to (``Export.open_tables``). At a 1 M-patient DSO
        the procedures' and treatment items' references to ledger rows (read after them, ~10 MB of
        bits) and the ledger's own keys (~6 MB) went only at the end, past the claim lines and recalls
        where the audit peaked."""
        self.partition.retire(open_tables)
        for key in [k for k in self.fk_ids if k[0] not in open_tables and _parent_of(k) not in open_tables]:
            self.settled_orphans[key] = self._orphans_of(key)
            del self.fk_ids[key]
        referred = {_parent_of(k) for k in self.fk_ids} | {
            c.fk for t in open_tables if t in TABLES for c in TABLES[t].columns if _int_ref(c)}
        for table in [t for t in self.pk_ids if t not in open_tables and t not in referred]:
            self.settled_duplicates[table] = self._duplicates_of(table)
            del self.pk_ids[table]

    # -- results ---------------------------------------------------------------------------
    def end_reading(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        """The orphans and duplicate keys, once every table is read; then the key sets, the parent maps
        and the distinct values go (the checks that run next need none of them: the peak of a DSO's audit
        is there, and they are what grows with the export, a bit or a byte an id)."""
        result = self.orphans(), self.duplicate_pks()
        self.pks.clear()
        self.fk_values.clear()
        self.pk_ids.clear()
        self.fk_ids.clear()
        self.partition = Partitioner(1)
        for col in (*(c for cols in self.columns.values() for c in cols.values()), *self.unmapped.values()):
            col.seal()
        return result

    def orphans(self) -> list[dict[str, object]]:
        out = []
        keysets: dict[str, pa.Array] = {}
        decided = {**self.settled_orphans,  # the integer references: settled, or decided now
                   **{k: self._orphans_of(k) for k in self.fk_ids if k not in self.settled_orphans}}
        for (table, col) in sorted({*self.fk_values, *decided}):
            if (table, col) in decided:
                if found := decided[(table, col)]:
                    out.append(found)
                continue
            parts = self.fk_values[(table, col)]
            parent = _parent_of((table, col))
            if not parts:
                continue
            if parent not in keysets:  # a parent without a file (no PROCCODE): an empty set of the key's type
                arrs = self.pks.get(parent, [])
                keysets[parent] = pc.unique(pa.concat_arrays(arrs)) if arrs else pa.array([], parts[0].type)
            vals = pc.unique(pa.concat_arrays([p.cast(keysets[parent].type) if p.type != keysets[parent].type
                                               else p for p in parts]))
            if parent == "patient" and vals.type == pa.int64():
                vals = vals.filter(pc.not_equal(vals, 0))  # 0 = "no patient" placeholder
            missing = vals.filter(pc.invert(pc.is_in(vals, value_set=keysets[parent])))
            if len(missing):
                out.append({"table": table, "column": col, "refers_to": parent,
                            "missing_ids": len(missing),
                            "sample_ids": sorted(str(v) for v in missing.slice(0, 10).to_pylist())})
        return out

    def _orphans_of(self, key: tuple[str, str]) -> dict[str, object] | None:
        """The ids of an integer reference that its parent's keys do not hold (None: none)."""
        parent = _parent_of(key)
        missing_ids = self.fk_ids[key].missing_from(self.pk_ids.get(parent, IdSet()))
        if parent == "patient":
            missing_ids = missing_ids[missing_ids != 0]  # 0 = "no patient" placeholder
        if not len(missing_ids):
            return None
        return {"table": key[0], "column": key[1], "refers_to": parent, "missing_ids": len(missing_ids),
                "sample_ids": sorted(str(v) for v in missing_ids[:10].tolist())}

    def _duplicates_of(self, table: str) -> dict[str, object] | None:
        dup_ids = self.pk_ids[table].duplicates()
        if not len(dup_ids):
            return None
        return {"table": table, "duplicate_keys": len(dup_ids),
                "sample_ids": sorted(str(v) for v in dup_ids[:10].tolist())}

    def duplicate_pks(self) -> list[dict[str, object]]:
        out = []
        decided = {**self.settled_duplicates,  # the integer keys: settled, or decided now
                   **{t: self._duplicates_of(t) for t in self.pk_ids if t not in self.settled_duplicates}}
        for table in sorted({*self.pks, *decided}):
            if table in decided:
                if found := decided[table]:
                    out.append(found)
                continue
            parts = self.pks[table]
            if not parts or len(TABLES[table].pk) != 1:
                continue
            arr = pa.concat_arrays(parts)
            vc = pc.value_counts(arr)
            dup = vc.filter(pc.greater(vc.field("counts"), 1))
            if len(dup):
                out.append({"table": table, "duplicate_keys": len(dup),
                            "sample_ids": sorted(str(v)
                                                 for v in dup.field("values").slice(0, 10).to_pylist())})
        return out


def _parent_of(ref: tuple[str, str]) -> str:
    """The table a (table, column) reference names."""
    parent = TABLES[ref[0]].by_name[ref[1]].fk
    assert parent is not None
    return parent


def _int_ref(c: Column) -> bool:
    """The column refers to a table with an integer key (its references go into an ``IdSet``)."""
    return c.fk is not None and c.kind == "int" and _int_key(c.fk)


def _int_key(table: str) -> bool:
    """The table has a single integer primary key (its keys go into an ``IdSet``)."""
    t = TABLES[table]
    return len(t.pk) == 1 and t.by_name[t.pk[0]].kind == "int"


def _document_sizes(export: Export) -> DocumentIndex:
    """The export's document files with their sizes in bytes: -1 (unknown) on object stores, where a size
    costs a request per file (DOC1 then checks presence, not size); a link, FIFO or device under IMAGES
    (never followed) is counted as unsafe and left out. Arrays, not a Python object per file."""
    keys = export.document_keys
    store = export.store
    if store.local_path("") is None:
        return DocumentIndex(keys, np.full(len(keys), -1, dtype=np.int64))
    from ..sources.docfiles import RefusedDocument, document_size

    sizes = np.empty(len(keys), dtype=np.int64)
    for i, k in iter_keys(keys):  # never stat through a link: one is counted as unsafe (DOC1)
        try:
            size = document_size(store, k)
        except RefusedDocument:
            size = UNSAFE_FILE
        sizes[i] = GONE if size is None else size
    return DocumentIndex(keys, sizes)


def run_audit(source: str | Path, out: Path, *, profile: str = "reference", s3: S3Settings | None = None,
              export_date: dt.date | None = None, progress: ProgressFn | None = None) -> dict[str, object]:
    """Audit ``source`` and write ``out/audit.json`` and ``out/audit.md``; returns the JSON document."""
    export = open_export(source, profile=profile, s3=s3)
    reader = ExportReader(export, export_date=export_date)
    reader.preflight()
    # The semantic checks' row stores spill to a private temporary folder (0700, removed at the end; they
    # hold ids, codes, cents and a patient's email and phone for EM3, as the export itself does), so the
    # audit's memory does not grow with the export.
    with tempfile.TemporaryDirectory(prefix="dos2hl-audit-") as spill:
        acc = _Audit(reader, _document_sizes(export), spill=Path(spill))
        done = 0
        for chunk in reader.iter_all():
            acc.settle(export.open_tables(reader.stats[chunk.file].table))
            acc.add(chunk)
            done += chunk.data.num_rows + chunk.quarantine.num_rows
            if progress:
                progress(chunk.table, done)
        return _finish(acc, export, reader, out)


def _finish(acc: _Audit, export: Export, reader: ExportReader, out: Path) -> dict[str, object]:
    """The audit document from the accumulated chunks, written to ``out``."""
    stats = reader.stats
    totals = {k: sum(getattr(s, k) for s in stats.values())
              for k in ("records", "clean", "repaired", "quarantined")}
    findings = []
    for (code, action), count in sorted(acc.finding_counts.items()):
        findings.append({"code": code, "action": action, "count": count,
                         "reason": REASONS.get(code, code),
                         "refs": acc.finding_refs.get((code, action), [])[:SAMPLE_REFS]})
    orphans, duplicate_pks = acc.end_reading()
    for item in duplicate_pks:
        findings.append({"code": "KEY2", "action": "flagged", "count": item["duplicate_keys"],
                         "reason": REASONS["KEY2"], "table": item["table"], "refs": []})
    findings += acc.checks.findings()  # semantic checks (audit.checks): action "flagged"
    dups = acc.checks.duplicates
    doc: dict[str, object] = {
        "version": 1,
        "source": export.store.uri,
        "profile": export.profile.name,
        "export_date": str(reader.export_date),
        "files": {k: s.to_dict() for k, s in sorted(stats.items())},
        "unknown_files": export.unknown_files,
        "document_files": len(export.document_keys),
        "objects": {
            name: {
                "title": TABLES[name].title,
                "rows": acc.rows.get(name, 0),
                "by_location": dict(sorted(acc.by_location.get(name, {}).items())),
                "columns": {c: a.to_dict() for c, a in acc.columns.get(name, {}).items()},
                "highlevel": {"target": TABLES[name].target, "detail": TABLES[name].target_detail},
                "files": [k for k, s in stats.items() if s.table == name],
            }
            for name in TABLES
            if name in acc.columns or any(s.table == name for s in stats.values())
        },
        "phi": {
            s.file: {
                col: (
                    TABLES[s.table].by_name[c].phi
                    if (c := export.profile.canonical_column(s.table, col))
                    else "D"
                )
                for col in s.columns
            }  # unmapped: treated as PHI until mapped
            for s in stats.values()
        },
        "custom_fields": {
            "definitions": acc.udf_defs,
            "wide_columns": {
                c: acc.columns.get("patient", {}).get(c, _ColumnAcc("str", "D")).to_dict()
                for c in ("user1", "user2", "user3", "user4", "user_codes")
            },
            "unknown_columns": {s.file: s.unknown_columns for s in stats.values() if s.unknown_columns},
            "unmapped": {
                f"{file}.{col}": {
                    **col_acc.to_dict(),
                    "kind": infer_kind(
                        acc.unmapped_sample[(file, col)], reader.export_date or dt.date.today()
                    ),
                    "file": file,
                    "column": col,
                }
                for (file, col), col_acc in sorted(acc.unmapped.items())
            },
        },
        "findings": findings,
        "orphans": orphans,
        "duplicates": dups,
        "totals": totals,
        "balanced": all(s.balanced for s in stats.values()),
        "identity": (
            f"{totals['records']} records = {totals['clean']} clean + {totals['repaired']} repaired"
            f" + {totals['quarantined']} quarantined"
        ),
    }
    from ..storage import LocalStore

    store = LocalStore(out)  # 0600 files in 0700 folders: the audit names columns, samples ids
    store.write_bytes("audit.json", json.dumps(doc, indent=2, sort_keys=False, default=str).encode())
    store.write_bytes("audit.md", render_markdown(doc).encode())
    return doc
