"""The shapes of what the reader yields and staging writes: a staged row (canonical columns + lineage),
a finding, a quarantined record, one block of a file (``Chunk``) and one file's accounting
(``FileStats``). The reader builds them and the row rules derive rows in them; staging stores them."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from ..model import arrow_schema

__all__ = ["Chunk", "FINDINGS_SCHEMA", "FileStats", "LINEAGE", "QUARANTINE_SCHEMA", "empty", "findings_table",
           "staged_schema"]

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


def empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


@dataclass
class FileStats:
    """What happened to one export file; the counts must add up (``balanced``)."""

    file: str
    table: str
    bytes: int = 0
    sha256: str = ""
    format: dict[str, object] = field(default_factory=dict)
    records: int = 0
    clean: int = 0
    repaired: int = 0
    quarantined: int = 0
    # rows of other tables made from this file's records (wide or list procedure columns, the carrier and
    # plan of a coverage file: ``dos2hl.sources.shaped``): not records; per table in ``derived_tables``
    derived: int = 0
    derived_tables: Counter[str] = field(default_factory=Counter)
    derived_quarantined: int = 0  # derived rows quarantined alone (a bad list item), their record staged
    joined: int = 0  # records staged as part of another file's row of the same table (split tables)
    banner_lines: int = 0
    header_lines: int = 0
    blank_lines: int = 0
    trailer_lines: int = 0
    declared_records: int | None = None
    lines: int = 0  # physical lines accounted for (banner + header + records + blank + trailer)
    columns: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    findings: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """Every record accounted for, and nothing of the file left unread (``error``)."""
        return self.error is None and self.records == self.clean + self.repaired + self.quarantined

    def identity(self) -> str:
        return (f"{self.file}: {self.records} records = {self.clean} clean + {self.repaired} repaired"
                f" + {self.quarantined} quarantined" + ("" if self.error is None
                                                        else " (NOT BALANCED: read error)"))

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["findings"] = dict(sorted(self.findings.items()))
        d["derived_tables"] = dict(sorted(self.derived_tables.items()))
        d["balanced"] = self.balanced
        return d


@dataclass
class Chunk:
    """One block of one file, read into the canonical model."""

    table: str
    file: str
    data: pa.Table  # canonical columns + LINEAGE
    findings: pa.Table
    quarantine: pa.Table
    unmapped: pa.Table | None = None  # raw text of the file's columns the profile does not map
