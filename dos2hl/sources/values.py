"""Typed value parsers: raw export text -> canonical values (docs/architecture.md), plus defect codes.

``parse_column`` parses a whole Arrow string column: the common shapes of each kind go through
``pyarrow.compute`` kernels, and every other non-blank cell through the scalar parser of that kind
(``parse_date``, ``parse_money`` ...), which is the reference: on any cell the vectorised result equals
the scalar one. Each cell that was repaired, nulled or flagged gets a defect code (GENERATOR.md §6
ids, plus TYPE, FMT and ENUM, see ``REASONS``) and an action; cells taken as they are get nulls.

Examples:
    >>> import pyarrow as pa
    >>> from dos2hl.model import TABLES
    >>> p = parse_column(pa.array(["(413) 555-0142", "413.555.0187", None]),
    ...                  TABLES["patient"].by_name["hphone"], ParseContext())
    >>> p.values.to_pylist(), p.codes.to_pylist()
    (['+14135550142', '+14135550187', None], [None, 'PH1', None])

Codes never carry a value, so findings built from them hold no PHI.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ..model import ARROW_TYPES, Column
from ._arrow import clean
from ._common import REASONS, ParseContext, Result, clean_text
from ._dates import parse_date, parse_datetime, parse_time
from ._numbers import parse_bool, parse_int, parse_money
from ._text import (
    clean_memo,
    parse_code,
    parse_email,
    parse_enum,
    parse_phone,
    parse_proc_code,
    parse_state,
    parse_str,
    parse_tooth,
    parse_zip,
)
from ._vector import kernel_for
from .names import title_case_name

__all__ = [
    "ParseContext", "Parsed", "REASONS", "Result", "clean_raw", "clean_text", "parse_column",
    "parse_value", "parse_date", "parse_time", "parse_datetime", "parse_money", "parse_bool",
    "parse_int", "parse_code", "parse_enum", "parse_str", "parse_phone", "parse_email", "parse_zip",
    "parse_state", "parse_proc_code", "parse_tooth", "clean_memo", "title_case_name",
]


@dataclass
class Parsed:
    """One parsed column.

    Attributes:
        values: canonical values, Arrow type ``dos2hl.model.ARROW_TYPES[column.kind]``.
        codes: defect code per cell (``DT1``, ``PH1`` ...), null where the cell was taken as-is.
        actions: ``repaired`` | ``nulled`` | ``flagged`` per cell, null where ``codes`` is null.
    """

    values: pa.Array
    codes: pa.Array
    actions: pa.Array


def _as_array(raw: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks() if raw.num_chunks != 1 else raw.chunk(0)
    if raw.type == pa.large_string() or raw.type == pa.string_view():
        raw = raw.cast(pa.string())
    elif raw.type == pa.null():
        raw = raw.cast(pa.string())
    if raw.type != pa.string():
        raise TypeError(f"parse_column expects a string array, got {raw.type}")
    return raw


def clean_raw(raw: pa.Array) -> pa.Array:
    """Trim every cell and map null tokens (``NULL``, ``(null)``, ``N/A`` ...), blanks and masks
    (``"  /  /  "``, ``"(   )   -    "``, ``"  -  -    "``) to null."""
    return clean(_as_array(raw))[0]


def parse_column(raw: pa.Array | pa.ChunkedArray, column: Column, ctx: ParseContext) -> Parsed:
    """Parse the raw text of one column (nulls allowed) into canonical values, codes and actions.

    ``column.kind`` picks the parser; ``code`` columns named ``proc_code`` use ``parse_proc_code`` and
    ``str`` columns named ``tooth``/``tooth_list`` use ``parse_tooth``. For ``time`` columns, bare
    numbers are read as minutes after midnight for the whole array when any of them is not a valid
    ``HHMM``.
    """
    arr = _as_array(raw)
    out = kernel_for(column.kind, column.name)(arr, ctx, column.values)
    assert out.values.type == ARROW_TYPES[column.kind]
    return Parsed(out.values, out.codes, out.actions)


def parse_value(s: str | None, column: Column, ctx: ParseContext) -> Result:
    """The scalar twin of ``parse_column`` for one cell (tests, quarantine replay, debugging)."""
    kind, name = column.kind, column.name
    if kind == "code" and name == "proc_code":
        return parse_proc_code(s, cdt=ctx.cdt)
    if kind == "str" and name in ("tooth", "tooth_list"):
        return parse_tooth(s)
    match kind:
        case "int":
            return parse_int(s)
        case "code" | "lookup":
            return parse_code(s)
        case "str":
            return parse_str(s)
        case "memo":
            return clean_memo(s)
        case "date":
            return parse_date(s, ctx)
        case "dob":
            return parse_date(s, ctx, birth=True)
        case "time":
            return parse_time(s)
        case "datetime":
            return parse_datetime(s, ctx)
        case "money":
            return parse_money(s, ctx)
        case "bool":
            return parse_bool(s)
        case "enum":
            return parse_enum(s, column.values)
        case "phone":
            return parse_phone(s, ctx)
        case "email":
            return parse_email(s)
        case "zip":
            return parse_zip(s)
        case "state":
            return parse_state(s)
    raise ValueError(f"unknown column kind {kind!r}")  # pragma: no cover - Kind is a closed Literal
