"""Column-wise record transforms: a staged table's custom-object records built from its columns.

``Transformer.records`` built every record cell by cell (a row dict per source row, ``Transformer.value``
per mapped cell: millions of calls at DSO size). Here each mapped column is converted once per *distinct*
cell (Arrow's dictionary encoding; the conversion is the same ``Transformer.convert_raw``) and spread
back over the rows, only the columns a record needs become Python values, and a parent row (plan,
carrier, treatment plan) is converted once, not once per child. Sealing stays per record (its stable
key is part of the sealed text's context). The payloads are the ones ``records`` built, key order
included (tests/test_golden_outputs.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ..mapping.model import Entry
from .transform import NOT_TEXT

if TYPE_CHECKING:
    from .transform import RecordPayload, Transformer

__all__ = ["column_values", "records", "rows_where", "value_of"]

# the days (since 1970-01-01) of the dates Python has: Arrow writes them as date.isoformat() does
_DAY_MIN = (dt.date.min - dt.date(1970, 1, 1)).days
_DAY_MAX = (dt.date.max - dt.date(1970, 1, 1)).days


def column_values(tf: Transformer, e: Entry, col: pa.Array | pa.ChunkedArray | None, n: int) -> list[Any]:
    """``e``'s converted, unsealed value of each of the ``n`` rows (``col``: its column, None when the
    table has none). Each distinct cell is converted once; floating-point columns (``-0.0 == 0.0``) and
    types Arrow cannot encode are converted cell by cell."""
    if col is None or e.column is None or n == 0 or col.null_count == n:
        return [None] * n
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    if not tf.lookup_category(e):  # a LOOKUP column's codes are looked up as text first: the cell path
        if pa.types.is_integer(t) and e.type in ("NUMERICAL", "STANDARD"):
            ints: list[Any] = col.to_pylist()  # int(v), or v itself: the ints
            return ints
        text = pa.types.is_string(t) or pa.types.is_large_string(t)
        if text and not e.values and e.type not in NOT_TEXT:
            return [v or None for v in col.to_pylist()]  # str(v), or v itself; "" is nothing to send
        if pa.types.is_timestamp(t) and t.tz is None and e.type not in NOT_TEXT:
            col = col.cast(pa.date32())  # a datetime is sent as its date (``_iso``): fewer distinct cells
            t = col.type
        if pa.types.is_date32(t) and e.type not in NOT_TEXT:
            days = pc.min_max(col.cast(pa.int32()))
            if _DAY_MIN <= days["min"].as_py() and days["max"].as_py() <= _DAY_MAX:
                dates: list[Any] = col.cast(pa.string()).to_pylist()  # YYYY-MM-DD: date.isoformat()
                return dates
    if pa.types.is_floating(t) or pa.types.is_nested(t) or pa.types.is_dictionary(t):
        return [tf.convert_raw(e, x) for x in col.to_pylist()]
    try:
        enc = col.dictionary_encode()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return [tf.convert_raw(e, x) for x in col.to_pylist()]
    conv = [tf.convert_raw(e, x) for x in enc.dictionary.to_pylist()]
    conv.append(None)  # the nulls' slot
    out = list(map(conv.__getitem__, enc.indices.fill_null(len(conv) - 1).to_pylist()))
    if any(isinstance(v, list) for v in conv):  # each record its own list (CHECKBOX, MULTIPLE_OPTIONS)
        out = [list(v) if isinstance(v, list) else v for v in out]
    return out


def records(tf: Transformer, object_key: str, rows: pa.Table | Sequence[Mapping[str, Any]],
            parents: Mapping[str, Mapping[Any, dict[str, Any]]],
            excluded_patients: set[Any]) -> tuple[list[RecordPayload], int]:
    """``Transformer.records`` from a staged table (or row dicts): (payloads, rows excluded because
    their patient is)."""
    from .transform import OBJECT_NAMES, RECORD_TABLES, RecordPayload, _pk

    primary, joins = RECORD_TABLES[object_key]
    obj = OBJECT_NAMES[object_key]
    pk = _pk(primary)
    entries = {t: [e for e in tf.by_table.get(t, ()) if e.target.startswith(object_key + ".")]
               for t in (primary, *(j[0] for j in joins))}
    raw: Callable[[str], list[Any]]
    conv: Callable[[Entry], list[Any]]
    if isinstance(rows, pa.Table):
        table, n = rows, rows.num_rows
        names = set(table.column_names)

        def raw(c: str) -> list[Any]:
            return table.column(c).to_pylist() if c in names else [None] * n

        def conv(e: Entry) -> list[Any]:
            return column_values(tf, e, table.column(e.column) if e.column in names else None, n)
    else:
        dicts, n = rows, len(rows)

        def raw(c: str) -> list[Any]:
            return [r.get(c) for r in dicts]

        def conv(e: Entry) -> list[Any]:
            if e.column is None:
                return [None] * n
            col = e.column
            return [None if (v := r.get(col)) is None else tf.converted(e, v) for r in dicts]

    sids, pids = raw(pk), raw("pat_id")
    provs, treat_provs = raw("prov_id"), raw("treat_prov_id")
    fks = {fk: raw(fk) for _p, fk, _ppk in joins}
    own = [(e.target.rsplit(".", 1)[1], conv(e), e.phi == "encrypt", e.target) for e in entries[primary]]
    # a parent row's converted values (unsealed), once per parent row
    converted: dict[tuple[str, int], list[tuple[str, Any, bool, str]]] = {}

    def parent_values(parent: str, prow: Mapping[str, Any]) -> list[tuple[str, Any, bool, str]]:
        k = (parent, id(prow))
        got = converted.get(k)
        if got is None:
            got = converted[k] = [
                (e.target.rsplit(".", 1)[1], v, e.phi == "encrypt", e.target) for e in entries[parent]
                if (v := tf.convert_raw(e, prow.get(e.column) if e.column is not None else None)) is not None]
        return got

    seal, key, location = tf.seal, tf.key, tf.location
    policy = tf.relations.get(object_key, "association")
    out: list[RecordPayload] = []
    excluded = 0
    for i in range(n):
        pid = pids[i]
        if pid in excluded_patients:
            excluded += 1
            continue
        props: dict[str, Any] = {}
        sid = sids[i]
        sk = key(location, obj, sid)
        found: list[Mapping[str, Any]] = []  # the parents joined so far (a foreign key's next source)
        for parent, fk, _ppk in joins:
            ref = fks[fk][i]
            if ref is None:  # the row joined so far: the first parent that has it
                ref = next((v for p in found if (v := p.get(fk)) is not None), None)
            prow = parents.get(parent, {}).get(ref)
            if prow is None:
                continue
            found.append(prow)
            for name, v, sealed, target in parent_values(parent, prow):
                if sealed:
                    assert seal is not None
                    v = seal(str(v), target, sk)
                props[name] = v
        for name, col, sealed, target in own:  # the record's own columns win over its parents'
            v = col[i]
            if v is not None:
                if sealed:
                    assert seal is not None
                    v = seal(str(v), target, sk)
                props[name] = v
        props.setdefault("source_id", sid)
        owner = provs[i] or treat_provs[i]
        if policy == "lookup_field":  # the writer adds contact_id (known once the contact exists)
            props["patient_id"] = str(pid)
        out.append(RecordPayload(object_key, sk, str(sid), key(location, "patient", pid), props, owner,
                                 policy))
    return out, excluded


def rows_where(t: pa.Table | None, keep: Callable[[Any], bool]) -> pa.Table | None:
    """The rows of ``t`` whose PAT_ID passes ``keep`` (``rows_of(t, lambda r: keep(r.get("pat_id")))`` as a
    table)."""
    if t is None:
        return None
    pids = t.column("pat_id").to_pylist() if "pat_id" in t.column_names else [None] * t.num_rows
    mask = [bool(keep(p)) for p in pids]
    return t if all(mask) else t.filter(pa.array(mask, pa.bool_()))


Value = Callable[[Entry, Mapping[str, Any], str], Any]


def value_of(tf: Transformer, *sources: tuple[pa.Table | None, Sequence[Mapping[str, Any]], Sequence[Entry]]
             ) -> Value:
    """``tf.value`` for the rows of staged tables, each entry's column converted once per distinct cell:
    ``sources`` are (table, its rows as dicts in the table's order, the entries asked for). A row or an
    entry it does not know is converted by ``tf.value``."""
    cols: dict[int, tuple[Entry, list[Any], dict[int, int]]] = {}  # by id(entry): its values, rows' places
    for table, rows, entries in sources:
        if table is None:
            continue
        assert table.num_rows == len(rows)
        names = set(table.column_names)
        pos = {id(r): i for i, r in enumerate(rows)}
        for e in entries:
            if e.column is not None:
                col = table.column(e.column) if e.column in names else None
                cols[id(e)] = (e, column_values(tf, e, col, table.num_rows), pos)

    def value(e: Entry, row: Mapping[str, Any], record: str) -> Any:
        got = cols.get(id(e))
        i = got[2].get(id(row)) if got is not None and got[0] is e else None
        if got is None or i is None:
            return tf.value(e, row, record)
        v = got[1][i]
        if v is None:
            return None
        if e.phi == "encrypt":
            assert tf.seal is not None
            return tf.seal(str(v), e.target, record)
        return list(v) if v.__class__ is list else v

    return value
