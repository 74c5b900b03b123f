"""How one export file spells values: the per-file style and the per-kind formatters.

The typical Dent-O-Soft profile (EXPORT_FORMAT.md §1) writes cp1252, CRLF, ``,``/``"`` quoting only
when needed, MM/DD/YYYY dates, ``hh:mm AM`` times, Y/N booleans and signed ``1234.50`` money; the
SoftDent-like profile changes quote char, years, banner/trailer and code spelling. Clean values go
through these formatters; the mess module replaces single cells with dirty spellings afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ..model import Column

__all__ = ["FileStyle", "Fmt", "RowFmt", "formatter", "fmt_date", "fmt_phone", "quote_field", "RawText",
           "row_formatter"]

Fmt = Callable[[Any], str]
RowFmt = Callable[[dict[str, Any]], list[str]]


class RawText(str):
    """A dirty cell written without CSV quoting even if it needs it (CSV2 broken rows)."""

    __slots__ = ()


@dataclass(slots=True)
class FileStyle:
    """Byte-level and value-level conventions of one export file."""

    encoding: str = "cp1252"  # cp1252 | utf-8-sig | utf-16
    delimiter: str = ","
    quote: str = '"'
    two_digit_year: bool = False
    banner: str | None = None
    trailer: bool = False
    ragged: bool = False  # a trailing delimiter on every data line
    zip_strip: bool = False  # ZIP1: leading zeros lost in this file
    pad_id_cols: frozenset[str] = field(default_factory=frozenset)  # ID1: zero-padded id columns
    codes_without_d: bool = False  # CD1 whole column (softdent_like)


def fmt_date(d: dt.date, two_digit: bool = False) -> str:
    if two_digit:
        return f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}"
    return f"{d.month:02d}/{d.day:02d}/{d.year:04d}"


def _fmt_time(t: dt.time | dt.datetime, seconds: bool = False) -> str:
    h = t.hour % 12 or 12
    ap = "AM" if t.hour < 12 else "PM"
    if seconds:
        return f"{h:02d}:{t.minute:02d}:{t.second:02d} {ap}"
    return f"{h:02d}:{t.minute:02d} {ap}"


def fmt_phone(e164: str) -> str:
    """``+14135550142`` -> ``(413) 555-0142`` (the export's usual spelling)."""
    d = e164[2:]
    return f"({d[:3]}) {d[3:6]}-{d[6:]}"


# a practice's dates and slot times repeat (a few thousand distinct values over the history): formatted once
@lru_cache(maxsize=1 << 16)
def _fmt_date_4(d: dt.date) -> str:
    return fmt_date(d)


@lru_cache(maxsize=1 << 16)
def _fmt_date_yy(d: dt.date) -> str:
    return fmt_date(d, True)


@lru_cache(maxsize=1 << 12)
def _fmt_time_cached(t: dt.time) -> str:
    return _fmt_time(t)


def _fmt_money(v: Decimal) -> str:
    return f"{v:.2f}"


def _code_without_d(v: str) -> str:
    return v[1:] if len(v) == 5 and v[0] == "D" and v[1:].isdigit() else v


def formatter(col: Column, style: FileStyle) -> Fmt:
    """The clean-value formatter of one column in a file of this style (None -> "")."""
    k = col.kind
    yy = style.two_digit_year
    if k == "int":
        if col.name in style.pad_id_cols:
            return lambda v: f"{v:06d}" if v >= 0 else str(v)
        return str
    if k in ("date", "dob"):
        return _fmt_date_yy if yy else _fmt_date_4

    if k == "datetime":
        return lambda v: fmt_date(v, yy) + " " + _fmt_time(v, True)
    if k == "time":
        return _fmt_time_cached
    if k == "money":
        return _fmt_money
    if k == "bool":
        return lambda v: "Y" if v else "N"
    if k == "phone":
        return fmt_phone
    if k == "memo":
        return lambda v: v.replace("\n", "\r\n")
    if k == "zip" and style.zip_strip:
        return lambda v: v.lstrip("0")
    if k == "code" and col.name == "proc_code" and style.codes_without_d:
        return _code_without_d
    return lambda v: v


# row_formatter's spelling of one non-null value ``v`` per kind: the same text as ``formatter``'s, as an
# inline expression (no call per cell where the spelling is an f-string or a method of the value). A
# datetime's fields come from lookup tables: formatting six ints with ``:02d`` costs ~7x more
_2D = tuple(f"{i:02d}" for i in range(100))
_4D = tuple(f"{i:04d}" for i in range(10_000))
_H12 = tuple(f"{h % 12 or 12:02d}" for h in range(24))
_AMPM = tuple(" AM" if h < 12 else " PM" for h in range(24))
_DATETIME = "f'{_2d[v.month]}/{_2d[v.day]}/%s {_h12[v.hour]}:{_2d[v.minute]}:{_2d[v.second]}{_ampm[v.hour]}'"


@lru_cache(maxsize=1 << 16)
def _fmt_money_cached(v: Decimal) -> str:
    # equal Decimals spell alike with .2f (1.5 and 1.50: "1.50"), except 0 and -0: zero is not cached
    return f"{v:.2f}"


def _expr(col: Column, style: FileStyle) -> str:
    k = col.kind
    if k == "int":
        return "(f'{v:06d}' if v >= 0 else str(v))" if col.name in style.pad_id_cols else "str(v)"
    if k in ("date", "dob"):
        return "_date_yy(v)" if style.two_digit_year else "_date_4(v)"
    if k == "datetime":
        return _DATETIME % ("{_2d[v.year % 100]}" if style.two_digit_year else "{_4d[v.year]}")
    if k == "time":
        return "_time(v)"
    if k == "money":
        return "(_money(v) if v else f'{v:.2f}')"
    if k == "bool":
        return "('Y' if v else 'N')"
    if k == "phone":
        return "f'({v[2:5]}) {v[5:8]}-{v[8:]}'"
    if k == "memo":
        return "v.replace('\\n', '\\r\\n')"
    if k == "zip" and style.zip_strip:
        return "v.lstrip('0')"
    if k == "code" and col.name == "proc_code" and style.codes_without_d:
        return "_code_without_d(v)"
    return "v"


def row_formatter(cols: Sequence[Column], style: FileStyle) -> RowFmt:
    """``row -> [cell, ...]``: every column's clean spelling (None -> ""), as ``formatter`` spells it,
    in one compiled function per file (a list display, not a call per cell: millions of rows)."""
    items = ",\n        ".join(f"'' if (v := row[{c.name!r}]) is None else {_expr(c, style)}" for c in cols)
    src = f"def cells(row):\n    return [\n        {items},\n    ]\n"
    ns: dict[str, Any] = {"_date_4": _fmt_date_4, "_date_yy": _fmt_date_yy, "_time": _fmt_time_cached,
                          "_money": _fmt_money_cached, "_code_without_d": _code_without_d,
                          "_2d": _2D, "_4d": _4D, "_h12": _H12, "_ampm": _AMPM}
    exec(compile(src, "<row_formatter>", "exec"), ns)  # our own columns' source, no input
    fn: RowFmt = ns["cells"]
    return fn


def quote_field(s: str, delim: str, q: str) -> str:
    """Quote a field only when it needs it (delimiter, quote char or a line break inside)."""
    if isinstance(s, RawText):
        return s
    if delim in s or q in s or "\n" in s or "\r" in s:
        return q + s.replace(q, q + q) + q
    return s
