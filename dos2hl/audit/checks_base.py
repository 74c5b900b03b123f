"""Shared pieces of the semantic checks: the finding accumulator, compact row stores, small kernels.

A finding keeps a count, up to ``SAMPLE_REFS`` row references (file, line, record and the row's
primary key: ids only) and an optional count per sub-check (``detail``). Row stores keep only the
columns a check needs plus compact lineage (``_file`` dictionary-encoded, ``_line``/``_record`` as
int32), so a 1M-patient export costs tens of bytes per kept row, never a text column.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..model import TABLES
from ..sources.values import REASONS

__all__ = [
    "SAMPLE_REFS",
    "Findings",
    "PART_ROWS",
    "Spill",
    "Store",
    "parts_for",
    "cents",
    "gone",
    "count_true",
    "flat",
    "keep",
    "true",
    "fold_letters",
    "key_of",
]

SAMPLE_REFS = 20
_COMPACT_AT = 64  # partial aggregates kept before they are folded into one
#: Rows an end-phase check joins or groups at once: a store with more is split into parts by the key
#: (``Store.partition``), so the check's memory is one part's, flat from a practice to a DSO.
PART_ROWS = 100_000


def flat(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (chunked arrays are combined)."""
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def count_true(mask: pa.Array | pa.ChunkedArray | pa.Scalar | None) -> int:
    """Number of true values in a boolean mask (null and scalar masks count 0)."""
    if mask is None or isinstance(mask, pa.Scalar):
        return 0
    return int(pc.sum(true(mask)).as_py() or 0)


def true(mask: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``mask`` with nulls read as false."""
    return pc.fill_null(mask, False)


def gone(pat: pa.Table) -> pa.Array | pa.ChunkedArray:
    """Deleted or archived patients (PAT_STAT D/X or DELETED_FLG) of patient rows."""
    return true(pc.or_(pc.is_in(pat["pat_stat"], value_set=pa.array(["D", "X"])), true(pat["deleted_flg"])))


def cents(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A money column (decimal) as int64 cents; null stays null."""
    return pc.cast(pc.round(pc.multiply(pc.cast(arr, pa.float64()), 100.0)), pa.int64())


def fold_letters(arr: pa.Array | pa.ChunkedArray, *, keep_spaces: bool = False) -> pa.Array | pa.ChunkedArray:
    """Accent- and case-folded letters of a text column (``Muñoz-Díaz`` -> ``MUNOZDIAZ``)."""
    a = pc.utf8_normalize(arr, "NFKD")
    a = pc.replace_substring_regex(a, "[^\\x00-\\x7F]+", "")  # accents (and other non-ASCII) dropped
    a = pc.replace_substring_regex(a, "[^A-Za-z]+", " " if keep_spaces else "")
    a = pc.utf8_upper(a)
    return pc.utf8_trim_whitespace(a) if keep_spaces else a


def key_of(table: str, row: dict[str, object]) -> str | None:
    """The row's primary key as text (``412``; composite keys joined by ``|``)."""
    pk = TABLES[table].pk if table in TABLES else ()
    if not pk:
        return None
    return "|".join("" if row.get(c) is None else str(row.get(c)) for c in pk)


def keep(data: pa.Table, cols: Iterable[str], mask: pa.Array | pa.ChunkedArray | None = None) -> pa.Table:
    """``cols`` of ``data`` (rows where ``mask``) with compact lineage, for checks decided later."""
    t = data if mask is None else data.filter(true(mask))
    out = {c: t[c] for c in cols}
    out["_file"] = pc.dictionary_encode(t["_file"])
    out["_line"] = pc.cast(t["_line"], pa.int32())
    out["_record"] = pc.cast(t["_record"], pa.int32())
    return pa.table(out)


class Store:
    """Row pieces of one kind, concatenated when the check runs.

    With ``spill`` (a file path) each piece goes to an Arrow IPC stream there as it comes, and the
    rows are read back from the file (read, not mapped) when the check runs: the pieces of every check
    together grow with the export (about 1 GB at a 1 M-patient DSO, by 20 k- and 100 k-patient
    measurements), while one check needs only its own. Without it the pieces stay in memory.
    """

    def __init__(self, spill: Path | None = None) -> None:
        self.pieces: list[pa.Table] = []
        self.rows = 0
        self.spill = spill
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None
        self._sealed = False

    def add(self, t: pa.Table) -> None:
        if self._sealed:
            raise RuntimeError("rows added to a store after it was read")
        if not t.num_rows:
            return
        self.rows += t.num_rows
        if self.spill is None:
            self.pieces.append(t)
            return
        if self._writer is None:
            self._writer, self._schema = pa.ipc.new_stream(str(self.spill), t.schema), t.schema
        self._writer.write_table(t if t.schema == self._schema else t.cast(self._schema))

    def _spilled(self) -> pa.ipc.RecordBatchStreamReader | None:
        """The spill file for reading (the store takes no more rows), or None: rows in memory, or none."""
        self._sealed = True
        if self.spill is None or self._schema is None:
            return None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        # Read, not memory-mapped: a mapped file's pages stay in the process's RSS once touched, until
        # the map closes, so a check going through a store batch by batch (the DSO's insurance rows:
        # ~400 MB at 1 M patients) held all of it by its last batch; read, it holds one batch.
        return pa.ipc.open_stream(pa.OSFile(str(self.spill)))

    def batches(self) -> Iterator[pa.Table]:
        """The rows piece by piece: a check that looks at one row at a time never holds them all."""
        reader = self._spilled()
        if reader is None:
            yield from self.pieces
            return
        with reader:
            for batch in reader:
                yield pa.Table.from_batches([batch])

    def table(self) -> pa.Table | None:
        reader = self._spilled()
        if reader is None:
            return pa.concat_tables(self.pieces) if self.pieces else None
        with reader:
            return reader.read_all()

    def partition(self, key: str, parts: int, *, drop_null: bool = False) -> list[Store]:
        """The rows in ``parts`` stores by ``key`` (rows with equal keys land in the same one; with
        ``drop_null`` a row whose key is null in none), each spilled beside this one: a check that
        groups or joins by ``key`` does so one part at a time. One part: this store itself."""
        if parts <= 1 and not drop_null:
            return [self]
        parts = max(1, parts)
        out = [Store(None if self.spill is None else self.spill.with_name(f"{self.spill.name}.{key}.{b:03d}"))
               for b in range(parts)]
        for t in self.batches():
            if drop_null:
                t = t.filter(pc.is_valid(t[key]))
            if not t.num_rows:
                continue
            part_of = _bucket(t[key], parts)
            order = np.argsort(part_of, kind="stable")  # each part's rows stay in the store's order
            t = t.take(pa.array(order))
            start = 0
            for b, n in enumerate(np.bincount(part_of, minlength=parts).tolist()):
                if n:
                    out[b].add(t.slice(start, n))
                start += n
        return out


def parts_for(*stores: Store) -> int:
    """Parts for stores a check reads together: about ``PART_ROWS`` rows each."""
    return max(1, -(-sum(s.rows for s in stores) // PART_ROWS))


def _bucket(col: pa.Array | pa.ChunkedArray, parts: int) -> np.ndarray:
    """Each value's part: integers by their value, anything else by its hash (one process: the same
    value, the same part)."""
    a = flat(col)
    if pa.types.is_integer(a.type):
        ids: np.ndarray = a.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        out: np.ndarray = np.mod(ids, parts)
        return out
    return np.fromiter((hash(v) % parts for v in a.to_pylist()), np.int64, len(a))


class Spill:
    """Where a checker's stores spill: a fresh file per store under ``folder``, or memory when None."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._n = 0

    def store(self) -> Store:
        if self.folder is None:
            return Store()
        self._n += 1
        return Store(self.folder / f"store-{self._n:03d}.arrows")  # numbered: no name of a person or file


class Partial:
    """Sums per key, aggregated per chunk into a ``Store``: spilled, they are summed again a part of the
    keys at a time (``parts``); in memory, the pieces are folded every ``_COMPACT_AT`` chunks."""

    def __init__(self, key: str, values: list[str], store: Store | None = None) -> None:
        self.key, self.values = key, values
        self.store = store if store is not None else Store()

    def add(self, t: pa.Table) -> None:
        if not t.num_rows:
            return
        self.store.add(self._agg(t))
        if self.store.spill is None and len(self.store.pieces) >= _COMPACT_AT:
            self.store.pieces = [self._agg(pa.concat_tables(self.store.pieces))]

    def _agg(self, t: pa.Table) -> pa.Table:
        g = t.group_by(self.key).aggregate([(v, "sum") for v in self.values])
        return g.rename_columns([n.removesuffix("_sum") for n in g.column_names])

    def parts(self, n: int) -> list[Store]:
        """The partial sums in ``n`` stores by key (``Store.partition``); sum each with ``of``."""
        return self.store.partition(self.key, n)

    def of(self, *parts: Store) -> pa.Table | None:
        """The sums of one part (of this and other ``Partial``s of the same key, split alike)."""
        tables = [t for t in (p.table() for p in parts) if t is not None]
        if not tables:
            return None
        return self._agg(pa.concat_tables(tables, promote_options="permissive"))

    def table(self) -> pa.Table | None:
        return self.of(self.store)


class Findings:
    """Counts, sample references and per-sub-check counts per finding code."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.refs: dict[str, list[dict[str, object]]] = defaultdict(list)
        self.detail: dict[str, Counter[str]] = defaultdict(Counter)

    def flag(
        self,
        code: str,
        table: str,
        data: pa.Table | None,
        mask: pa.Array | pa.ChunkedArray | None = None,
        detail: dict[str, int] | None = None,
        count: int | None = None,
    ) -> int:
        """Count the rows of ``data`` where ``mask`` (all rows when None) under ``code``; keep refs.

        ``count`` overrides the number counted (DUP1 counts clusters, not records).
        """
        if data is None or not data.num_rows:
            return 0
        rows = data if mask is None else data.filter(true(mask))
        n = rows.num_rows if count is None else count
        if n:
            self.count[code] += n
            self._sample(code, table, rows)
        for k, v in (detail or {}).items():
            if v:
                self.detail[code][k] += v
        return n

    def add(self, code: str, n: int, detail: str | None = None) -> None:
        """Count ``n`` items without row references (files on disk, for example)."""
        if n:
            self.count[code] += n
            if detail:
                self.detail[code][detail] += n

    def _sample(self, code: str, table: str, rows: pa.Table) -> None:
        refs = self.refs[code]
        need = SAMPLE_REFS - len(refs)
        if need <= 0:
            return
        pk = [c for c in (TABLES[table].pk if table in TABLES else ()) if c in rows.column_names]
        part = rows.select(["_file", "_line", "_record", *pk]).slice(0, need)
        for r in part.to_pylist():
            refs.append(
                {"file": r["_file"], "line": r["_line"], "record": r["_record"], "key": key_of(table, r)}
            )

    def entries(self, reasons: dict[str, str] | None = None) -> list[dict[str, object]]:
        reasons = reasons or REASONS
        out: list[dict[str, object]] = []
        for code in sorted(self.count):
            e: dict[str, object] = {
                "code": code,
                "action": "flagged",
                "count": self.count[code],
                "reason": reasons.get(code, code),
                "refs": self.refs.get(code, []),
            }
            if self.detail.get(code):
                e["detail"] = dict(sorted(self.detail[code].items()))
            out.append(e)
        return out
