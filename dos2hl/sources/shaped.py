"""Rows of other tables carried on a file's rows: list columns and denormalised files.

- A list column (``FileSpec.lists``: procedure codes ``D0120;D1110`` in one cell) becomes child rows:
  one per non-empty item, linked to the row's key (the child's column referring to the file's table),
  ``seq`` = the item's position (1..n) where the child has one. An item that is no valid value of its
  column is quarantined alone (LST1); its parent row and the other items are kept.
- A denormalised file (``FileSpec.derived``: a coverage file whose rows also name the carrier, the
  plan and the subscriber) yields, per source row, a row of each derived table. A derived table's key
  is the mapped key column when the file has one, else a deterministic key hashed from the derived row's
  values (the same carrier on 500 rows is one carrier, in every run); the linking foreign keys (patins
  -> inssub -> insplan -> insco) are filled from those keys. A derived row is staged once per key (a
  dict of keys per table: bounded by the number of distinct carriers/plans, not rows); a key the file
  maps, met again with other values (carrier 7 under two names), keeps its first values and is flagged
  (KEY2) on the later row.

Accounting: a source row is one record of its file (clean, repaired or quarantined); rows made from it
are ``derived`` (``FileStats.derived``, per table in ``derived_tables``) or ``derived_quarantined``,
never records. Every derived row carries the source row's lineage (file, record, line).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..model import TABLES, Column
from ._common import REASONS
from .discover import TABLE_ORDER
from .profile import FileSpec
from .staged import FINDINGS_SCHEMA, QUARANTINE_SCHEMA, empty, findings_table, staged_schema
from .values import ParseContext, parse_column

__all__ = ["Derived", "Denormalised", "list_children", "synth_key"]

KeysFor = Callable[[pa.Table, tuple[str, ...]], pa.Array]
# what a code-kind list item may look like (a procedure code, a tooth code): anything else is not an item
_CODE_ITEM = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,19}")


@dataclass
class Derived:
    """Rows of one other table made from one block of a file (with their findings and quarantine)."""

    table: str
    data: pa.Table
    findings: pa.Table
    quarantine: pa.Table


def synth_key(table: str, parts: list[pa.Array], present: pa.Array) -> pa.Array:
    """A deterministic int64 key per row from its values (52 bits: exact in JSON and JavaScript);
    null where not ``present``."""
    strs = [pc.fill_null(pc.cast(p, pa.string()), "\x00") for p in parts] or [pa.repeat("", len(present))]
    joined = strs[0] if len(strs) == 1 else pc.binary_join_element_wise(*strs, "\x1f")
    # hash each distinct value once (the same carrier on 500 rows: one hash), then spread
    uniq = pc.unique(joined)
    hashed = pa.array([int.from_bytes(hashlib.blake2b(f"{table}\x1e{s}".encode(), digest_size=8).digest(),
                                      "big") >> 12 for s in uniq.to_pylist()], pa.int64())
    keys = pc.take(hashed, pc.index_in(joined, value_set=uniq))
    return pc.if_else(present, keys, pa.scalar(None, pa.int64()))


def _quarantine(file: str, table: str, record: pa.Array, line: pa.Array, code: str, why: list[str],
                raw: pa.Array | None = None) -> pa.Table:
    n = len(record)
    return pa.table({
        "file": pa.repeat(file, n), "table": pa.repeat(table, n), "record": record, "line": line,
        "code": pa.repeat(code, n), "reason": pa.array(why, pa.string()),
        "raw": raw if raw is not None else pa.nulls(n, pa.string()),
    }, schema=QUARANTINE_SCHEMA)


def _build(table: str, cols: dict[str, pa.Array], n: int, file: str, record: pa.Array,
           line: pa.Array) -> pa.Table:
    schema = staged_schema(table)
    arrays = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in schema
              if not f.name.startswith("_")]
    arrays += [pa.repeat(file, n), record, line, pa.repeat(False, n)]
    return pa.table(arrays, schema=schema)


def _bad_item(items: pa.Array, values: pa.Array, col: Column) -> pa.Array:
    """An item that is no value of its column: unparseable, or (a code) no code-like text with a digit."""
    bad = pc.is_null(values)
    if col.kind == "code":
        shaped = pc.match_substring_regex(pc.fill_null(values, ""), "^" + _CODE_ITEM.pattern + "$")
        bad = pc.or_(bad, pc.invert(pc.and_(shaped, pc.match_substring_regex(items, r"\d"))))
    return pc.fill_null(bad, True)


def _explode(text: pa.Array, keep: pa.Array, separators: str) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``(row index, seq 1..n within its row, item)`` of every non-empty item of the kept rows' lists."""
    text = pc.if_else(keep, pc.fill_null(text, ""), pa.scalar("", pa.string()))
    lists = pc.split_pattern_regex(text, "[" + re.escape(separators) + "]")
    rows = pc.list_parent_indices(lists)
    items = pc.utf8_trim_whitespace(pc.list_flatten(lists))
    nonempty = pc.greater(pc.utf8_length(items), 0)
    rows, items = rows.filter(nonempty), items.filter(nonempty)
    idx = np.asarray(rows.to_numpy(zero_copy_only=False), dtype=np.int64)
    pos = np.arange(len(idx), dtype=np.int64)
    first = np.r_[True, idx[1:] != idx[:-1]] if len(idx) else np.array([], dtype=bool)
    starts = np.maximum.accumulate(np.where(first, pos, 0)) if len(idx) else pos
    return pa.array(idx), pa.array(pos - starts + 1), items


def list_children(spec: FileSpec, parent: str, rows: pa.RecordBatch, parent_key: pa.Array, good: pa.Array,
                  file: str, record: pa.Array, line: pa.Array, ctx: ParseContext,
                  keys_for: KeysFor) -> list[Derived]:
    """The child rows of every list column of one block (``good``: the parent rows that were staged)."""
    names = {n.upper(): n for n in rows.schema.names}
    out: list[Derived] = []
    for src, lc in spec.lists.items():
        col_src = names.get(src.upper())
        if col_src is None:
            continue
        child = TABLES[lc.table]
        link = next(c.name for c in child.columns if c.fk == parent)
        keep = pc.and_(pc.fill_null(good, False), pc.is_valid(parent_key))
        take, seq_arr, item_arr = _explode(rows.column(col_src), keep, lc.split)
        n_items = len(item_arr)
        col = child.by_name[lc.column]
        parsed = parse_column(item_arr, col, ctx)
        cols: dict[str, pa.Array] = {link: pc.take(parent_key, take), lc.column: parsed.values}
        if "seq" in child.by_name:
            cols["seq"] = seq_arr
        rest = [c for c in child.pk if c not in cols]
        if len(rest) == 1 and child.by_name[rest[0]].kind == "int":
            cols[rest[0]] = synth_key(lc.table, [cols[link], seq_arr, pa.repeat(src, n_items)],
                                      pa.repeat(True, n_items))
        rec, ln = pc.take(record, take), pc.take(line, take)
        data = _build(lc.table, cols, n_items, file, rec, ln)
        bad = _bad_item(item_arr, parsed.values, col)
        ok_rows = pc.invert(bad)
        nb = n_items - int(pc.sum(ok_rows.cast(pa.int64())).as_py() or 0)
        why = [f"item {s} of list column {src} is no valid {lc.column}: {REASONS['LST1']}"
               for s in seq_arr.filter(bad).to_pylist()]
        quarantine = (_quarantine(file, lc.table, rec.filter(bad), ln.filter(bad), "LST1", why,
                                  item_arr.filter(bad)) if nb else empty(QUARANTINE_SCHEMA))
        data = data.filter(ok_rows)
        findings = findings_table(file, lc.table, col_src, data["_record"], data["_line"],
                                  keys_for(data, child.pk), parsed.codes.filter(ok_rows),
                                  parsed.actions.filter(ok_rows))
        out.append(Derived(lc.table, data, findings, quarantine))
    return out


@dataclass
class _Pending:
    table: str
    values: dict[str, pa.Array]
    present: pa.Array
    codes: list[tuple[str, pa.Array, pa.Array]]
    key_source: str | None = None  # the file's column holding the key, when the file maps it
    own: list[str] = field(default_factory=list)  # the columns the file maps (compared under one key)


@dataclass
class Denormalised:
    """The derived tables of denormalised files; ``seen`` holds the keys already staged, per table."""

    seen: dict[str, dict[str, str | None]] = field(default_factory=dict)  # key -> its values (mapped keys)

    def derive(self, spec: FileSpec, primary: str, rows: pa.RecordBatch, values: dict[str, pa.Array],
               mapped: set[str], ctx: ParseContext) -> list[_Pending]:
        """Parse the derived tables' columns of one block, key them and fill the links between them and
        into the primary row's ``values`` (in place). Nothing is filtered yet: see ``emit``."""
        names = {n.upper(): n for n in rows.schema.names}
        n = rows.num_rows
        keyed: dict[str, pa.Array] = {}
        pending: list[_Pending] = []
        ptable = TABLES[primary]
        for d in [t for t in TABLE_ORDER if t in spec.derived]:
            t = TABLES[d]
            vals: dict[str, pa.Array] = {}
            codes: list[tuple[str, pa.Array, pa.Array]] = []
            for src, canon in spec.derived[d].items():
                s = names.get(src.upper())
                if s is None or canon in vals:
                    continue
                p = parse_column(rows.column(s), t.by_name[canon], ctx)
                vals[canon] = p.values
                codes.append((s, p.codes, p.actions))
            present = pa.repeat(False, n)
            for v in vals.values():
                present = pc.or_(present, pc.is_valid(v))
            for c in t.columns:
                if c.name in vals or not c.fk:
                    continue
                if c.fk in keyed:
                    vals[c.name] = keyed[c.fk]
                elif c.required:  # e.g. the subscriber: the row's own patient when the file does not say
                    same = [values[x.name] for x in ptable.columns if x.fk == c.fk and x.name in mapped]
                    if same:
                        vals[c.name] = same[0]
            key_source = None
            if all(k in vals for k in t.pk):
                keyed[d] = vals[t.pk[0]] if len(t.pk) == 1 else pa.nulls(n, pa.int64())
                key_source = next((s for s, c in spec.derived[d].items() if c == t.pk[0]), None)
            elif len(t.pk) == 1 and t.by_name[t.pk[0]].kind == "int":
                vals[t.pk[0]] = keyed[d] = synth_key(d, [vals[c] for c in sorted(vals)], present)
            # (a composite key the file does not map stays blank: those rows are quarantined, KEY1)
            own = [c for c in spec.derived[d].values() if c not in t.pk]
            pending.append(_Pending(d, vals, present, codes, key_source, own))
        for c in ptable.columns:
            if c.fk in keyed and c.name not in mapped:
                values[c.name] = pc.coalesce(values[c.name], keyed[c.fk].cast(values[c.name].type))
        pk = ptable.pk
        if pending and len(pk) == 1 and pk[0] not in mapped and ptable.by_name[pk[0]].kind == "int":
            filled = sorted(c for c in values if c in mapped or (ptable.by_name[c].fk in keyed))
            values[pk[0]] = synth_key(primary, [values[c] for c in filled], pa.repeat(True, n))
        return pending

    def emit(self, pending: list[_Pending], good: pa.Array, file: str, record: pa.Array, line: pa.Array,
             keys_for: KeysFor) -> list[Derived]:
        """The derived rows of the staged source rows (``good``), each key once across the export."""
        out: list[Derived] = []
        for p in pending:
            t = TABLES[p.table]
            n = len(good)
            data = _build(p.table, p.values, n, file, record, line)
            want = pc.fill_null(pc.and_(p.present, good), False)
            missing = pa.repeat(False, n)
            for c in t.columns:
                if c.required:
                    missing = pc.or_(missing, pc.is_null(data[c.name]))
            bad = pc.and_(want, missing)
            keep = pc.and_(want, pc.invert(missing))
            seen = self.seen.setdefault(p.table, {})
            keys = keys_for(data, t.pk)
            sigs = (pc.binary_join_element_wise(*[pc.fill_null(pc.cast(data[c], pa.string()), "\x00")
                                                  for c in p.own], "\x1f").to_pylist()
                    if p.key_source and p.own else [None] * n)
            new: list[bool] = []
            clash: list[bool] = []  # a key the file maps, seen before with other values: flagged (KEY2)
            for k, ok, sig in zip(keys.to_pylist(), keep.to_pylist(), sigs, strict=True):
                new.append(bool(ok) and k not in seen)
                clash.append(bool(ok) and k in seen and seen[k] != sig)
                if new[-1]:
                    seen[k] = sig
            fresh = pa.array(new, pa.bool_())
            flagged = pa.array(clash, pa.bool_())
            nb = int(pc.sum(bad.cast(pa.int64())).as_py() or 0)
            why = f"a derived {p.table} row lacks {'/'.join(c.name for c in t.columns if c.required)}: "
            quarantine = (_quarantine(file, p.table, record.filter(bad), line.filter(bad), "KEY1",
                                      [why + REASONS["KEY1"]] * nb) if nb else empty(QUARANTINE_SCHEMA))
            kept = data.filter(fresh)
            kk = keys_for(kept, t.pk)
            finds = [findings_table(file, p.table, src, kept["_record"], kept["_line"], kk,
                                    codes.filter(fresh), actions.filter(fresh))
                     for src, codes, actions in p.codes]
            if p.key_source and pc.any(flagged).as_py():
                blank = pa.scalar(None, pa.string())
                finds.append(findings_table(file, p.table, p.key_source, record, line, keys,
                                            pc.if_else(flagged, pa.scalar("KEY2"), blank),
                                            pc.if_else(flagged, pa.scalar("flagged"), blank)))
            findings = pa.concat_tables(finds) if finds else empty(FINDINGS_SCHEMA)
            out.append(Derived(p.table, kept, findings, quarantine))
        return out
