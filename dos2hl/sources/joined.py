"""One canonical table spread over several files (``FileSpec.parts``: demographics in one file, contact
details in another, both keyed by the patient id): their rows joined on the table's key.

Each file is read as usual (its own column names, findings, quarantine), the required columns other
than the key are checked only after the join (a part holds some columns, not all). Then a full outer
join on the key, part after part, in the order the map lists the files:

- a key in one file only migrates with what that file has (then the required columns decide);
- a key twice in one file, or a key in two files whose values of a column both files map differ, is a
  conflict: the later record is quarantined (JOIN1) and the first file's values are kept;
- a record merged into another file's row stays counted staged (clean or repaired) in its own file,
  and ``FileStats.joined`` says how many of them there are: staged rows = clean + repaired - joined.

Memory: the table's rows from all its files are held (Arrow) until the join: bounded by the table's
size in Arrow, not by the export's (measured: 100 000 patients over two files, ~170 MB above a
plain staging's peak). Only tables whose map
names several files are held; every other table streams block by block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc

from ..model import TABLES
from ._common import REASONS
from .discover import ExportFile
from .staged import FINDINGS_SCHEMA, QUARANTINE_SCHEMA, Chunk, FileStats, empty, staged_schema

__all__ = ["join_parts", "read_joined"]

KeysFor = Callable[[pa.Table, tuple[str, ...]], pa.Array]
_R = "#r"
_LINEAGE = ("_file", "_record", "_line", "_repaired")


def _quarantine(rows: pa.Table, table: str, code: str, why: str, prefix: str = "") -> pa.Table:
    n = rows.num_rows
    return pa.table({
        "file": rows[_col(prefix, "_file")], "table": pa.repeat(table, n),
        "record": rows[_col(prefix, "_record")], "line": rows[_col(prefix, "_line")],
        "code": pa.repeat(code, n), "reason": pa.repeat(why, n), "raw": pa.nulls(n, pa.string()),
    }, schema=QUARANTINE_SCHEMA)


def _col(prefix: str, name: str) -> str:
    """A lineage column's name: a merged part's (``_p1_file``) or the joined right side's (``_file#r``)."""
    return name + prefix if prefix == _R else prefix + name


def _to_quarantine(stats: dict[str, FileStats], q: pa.Table, reps: pa.Array, code: str,
                   joined: bool = False) -> None:
    for file, rep in zip(q["file"].to_pylist(), reps.to_pylist(), strict=True):
        st = stats[file]
        if rep:
            st.repaired -= 1
        else:
            st.clean -= 1
        st.quarantined += 1
        st.findings[code] += 1
        if joined:
            st.joined -= 1


def _first_per_key(data: pa.Table, pk: tuple[str, ...], keys_for: KeysFor) -> pa.Array:
    seen: set[str] = set()
    first = []
    for k in keys_for(data, pk).to_pylist():
        first.append(k not in seen)
        seen.add(k)
    return pa.array(first, pa.bool_())


def join_parts(table: str, groups: list[pa.Table], stats: dict[str, FileStats],
               keys_for: KeysFor) -> list[Chunk]:
    """Join the rows of ``table`` read from each group of files (the main file's first) on its key.

    Returns one chunk per file of the staged rows it leads (lineage) and the records quarantined."""
    t = TABLES[table]
    pk = t.pk
    others = [c for c in t.column_names if c not in pk]
    quarantined: list[pa.Table] = []
    acc: pa.Table | None = None
    origins: list[str] = []  # prefixes of the merged parts' lineage columns
    for i, group in enumerate(groups):
        first = _first_per_key(group, pk, keys_for)
        dup = pc.invert(first)
        if pc.any(dup).as_py():
            d = group.filter(dup)
            q = _quarantine(d, table, "JOIN1",
                            f"the key is on more than one row of this file: {REASONS['JOIN1']}")
            _to_quarantine(stats, q, d["_repaired"], "JOIN1")
            quarantined.append(q)
            group = group.filter(first)
        if acc is None:
            acc = group
            continue
        right = group.rename_columns([c + _R for c in group.column_names])
        j = acc.join(right, keys=list(pk), right_keys=[k + _R for k in pk], join_type="full outer")
        both = pc.and_(pc.is_valid(j["_file"]), pc.is_valid(j["_file" + _R]))
        conflict = pa.repeat(False, j.num_rows)
        for c in others:
            differ = pc.fill_null(pc.not_equal(j[c], j[c + _R]), False)
            conflict = pc.or_(conflict, pc.and_(both, differ))
        if pc.any(conflict).as_py():
            d = j.filter(conflict)
            q = _quarantine(d, table, "JOIN1", "the key is in an earlier file with a different value of a "
                            f"column both files map: {REASONS['JOIN1']}", prefix=_R)
            _to_quarantine(stats, q, d["_repaired" + _R], "JOIN1")
            quarantined.append(q)
        use_right = pc.invert(conflict)
        merged = pc.and_(both, use_right)
        for f in pc.filter(j["_file" + _R], merged).to_pylist():
            stats[f].joined += 1
        cols: dict[str, pa.Array] = {k: j[k] for k in pk}
        for c in others:
            cols[c] = pc.if_else(use_right, pc.coalesce(j[c], j[c + _R]), j[c])
        left = pc.is_valid(j["_file"])
        for c in _LINEAGE:
            cols[c] = pc.if_else(left, j[c], j[c + _R])
        for o in origins:  # the earlier parts' lineage rides along
            for c in _LINEAGE:
                cols[o + c] = j[o + c]
        o = f"_p{i}"
        for c in _LINEAGE:  # this part's record, where it merged into an earlier file's row
            cols[o + c] = pc.if_else(merged, j[c + _R], pa.scalar(None, j[c + _R].type))
        origins.append(o)
        acc = pa.table(cols)
    assert acc is not None
    # the required columns, now that every file's columns are in: a row without one is quarantined,
    # with every record it was made of
    missing = pa.repeat(False, acc.num_rows)
    blank = [c.name for c in t.columns if c.required and c.name not in pk]
    for c in blank:
        missing = pc.or_(missing, pc.is_null(acc[c]))
    if pc.any(missing).as_py():
        d = acc.filter(missing)
        why = f"blank or unreadable {'/'.join(blank)} in every file of the table: {REASONS['KEY1']}"
        q = _quarantine(d, table, "KEY1", why)
        _to_quarantine(stats, q, d["_repaired"], "KEY1")
        quarantined.append(q)
        for o in origins:
            part = d.filter(pc.is_valid(d[o + "_file"]))
            if part.num_rows:
                pq_ = _quarantine(part, table, "KEY1", why, prefix=o)
                _to_quarantine(stats, pq_, part[o + "_repaired"], "KEY1", joined=True)
                quarantined.append(pq_)
        acc = acc.filter(pc.invert(missing))
    acc = acc.select(list(staged_schema(table).names)).cast(staged_schema(table))
    acc = acc.sort_by([(k, "ascending") for k in pk])
    q_all = pa.concat_tables(quarantined) if quarantined else empty(QUARANTINE_SCHEMA)
    files = list(dict.fromkeys(acc["_file"].to_pylist() + q_all["file"].to_pylist()))
    # (the files' findings were yielded as they were read)
    return [Chunk(table, f, acc.filter(pc.equal(acc["_file"], f)), empty(FINDINGS_SCHEMA),
                  q_all.filter(pc.equal(q_all["file"], f))) for f in files]


def read_joined(table: str, files: list[ExportFile], stems: list[str],
                read_file: Callable[[ExportFile], Iterator[Chunk]], stats: dict[str, FileStats],
                keys_for: KeysFor) -> Iterator[Chunk]:
    """Read every file of ``table`` (``stems``: upper-cased, the main file's first), passing on their
    findings and quarantine at once, then the joined rows, then the rows of other tables they feed
    (after their parents)."""
    groups: list[list[pa.Table]] = [[] for _ in stems]
    later: list[Chunk] = []
    for f in files:
        stem = PurePosixPath(f.key).name.rpartition(".")[0].upper() or PurePosixPath(f.key).name.upper()
        i = stems.index(stem) if stem in stems else 0
        for chunk in read_file(f):
            if chunk.table != table:
                later.append(chunk)
                continue
            groups[i].append(chunk.data)
            yield Chunk(table, chunk.file, chunk.data.slice(0, 0), chunk.findings, chunk.quarantine,
                        chunk.unmapped)
    parts = [pa.concat_tables(g) if g else staged_schema(table).empty_table() for g in groups]
    yield from join_parts(table, parts, stats, keys_for)
    yield from later

