"""The shapes of what staging writes: a staged row (canonical columns + lineage), a finding, a
quarantined record. The reader builds them and the row rules derive rows in them; staging stores them."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..model import arrow_schema

__all__ = ["FINDINGS_SCHEMA", "LINEAGE", "QUARANTINE_SCHEMA", "findings_table", "staged_schema"]

FINDINGS_SCHEMA = pa.schema([
    ("file", pa.string()), ("table", pa.string()), ("record", pa.int64()), ("line", pa.int64()),
    ("column", pa.string()), ("key", pa.string()), ("code", pa.string()), ("action", pa.string()),
])
QUARANTINE_SCHEMA = pa.schema([
    ("file", pa.string()), ("table", pa.string()), ("record", pa.int64()), ("line", pa.int64()),
    ("code", pa.string()), ("reason", pa.string()), ("raw", pa.string()),
])
LINEAGE = [("_file", pa.string()), ("_record", pa.int64()), ("_line", pa.int64()), ("_repaired", pa.bool_())]


def staged_schema(table: str) -> pa.Schema:
    """The canonical schema of ``table`` plus the lineage columns every staged row carries."""
    schema = arrow_schema(table)
    for name, typ in LINEAGE:
        schema = schema.append(pa.field(name, typ))
    return schema


def findings_table(file: str, table: str, column: str, record: pa.Array, line: pa.Array, keys: pa.Array,
                   codes: pa.Array, actions: pa.Array) -> pa.Table:
    """One findings row per cell of ``column`` that carries a code (ids and line numbers only)."""
    mask = pc.is_valid(codes)
    n = int(pc.sum(mask.cast(pa.int64())).as_py() or 0)
    return pa.table({
        "file": pa.repeat(file, n), "table": pa.repeat(table, n),
        "record": record.filter(mask), "line": line.filter(mask), "column": pa.repeat(column, n),
        "key": keys.filter(mask), "code": codes.filter(mask), "action": actions.filter(mask),
    }, schema=FINDINGS_SCHEMA)
