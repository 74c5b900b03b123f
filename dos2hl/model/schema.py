"""Arrow schemas and pydantic record models derived from the canonical tables.

The arrow schema is what staging writes and what the generator's ``truth/`` holds; the pydantic
model validates single records where a record is handled one at a time (API payload building,
hand-written fixtures, the quarantine replay).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, create_model

from .tables import TABLES, Column, Kind, Table

__all__ = ["ARROW_TYPES", "MONEY", "arrow_schema", "record_model", "phi_columns"]

MONEY = pa.decimal128(14, 2)

ARROW_TYPES: dict[Kind, pa.DataType] = {
    "int": pa.int64(),
    "code": pa.string(),
    "str": pa.string(),
    "memo": pa.string(),
    "date": pa.date32(),
    "dob": pa.date32(),
    "time": pa.time32("s"),
    "datetime": pa.timestamp("s"),
    "money": MONEY,
    "bool": pa.bool_(),
    "enum": pa.string(),
    "lookup": pa.string(),
    "phone": pa.string(),
    "email": pa.string(),
    "zip": pa.string(),
    "state": pa.string(),
}

_PY_TYPES: dict[Kind, Any] = {
    "int": int, "code": str, "str": str, "memo": str, "date": dt.date, "dob": dt.date,
    "time": dt.time, "datetime": dt.datetime, "money": Decimal, "bool": bool, "enum": str,
    "lookup": str, "phone": str, "email": str, "zip": str, "state": str,
}


def _field(col: Column) -> pa.Field:
    meta = {b"phi": col.phi.encode(), b"kind": col.kind.encode()}
    return pa.field(col.name, ARROW_TYPES[col.kind], nullable=not col.pk, metadata=meta)


@cache
def arrow_schema(name: str) -> pa.Schema:
    """The Parquet/Arrow schema of canonical table ``name`` (PHI class in field metadata)."""
    t = TABLES[name]
    return pa.schema([_field(c) for c in t.columns], metadata={b"table": name.encode()})


@cache
def record_model(name: str) -> type[BaseModel]:
    """A pydantic model validating one record of canonical table ``name``."""
    t: Table = TABLES[name]
    fields: dict[str, Any] = {}
    for c in t.columns:
        py: Any = _PY_TYPES[c.kind]
        if c.kind == "enum" and c.values:
            py = Literal[c.values]
        if c.required:
            fields[c.name] = (py, ...)
        else:
            fields[c.name] = (py | None, None)
    return create_model(
        f"{name.capitalize()}Record",
        __config__=ConfigDict(extra="forbid", frozen=True),
        **fields,
    )


def phi_columns(name: str, classes: str = "DHF") -> list[str]:
    """Columns of ``name`` whose PHI class is one of ``classes`` (patient data by default)."""
    return [c.name for c in TABLES[name].columns if c.phi in classes]
