"""How one export file spells values: the per-file style and the per-kind formatters.

The typical Dent-O-Soft profile (EXPORT_FORMAT.md §1) writes cp1252, CRLF, ``,``/``"`` quoting only
when needed, MM/DD/YYYY dates, ``hh:mm AM`` times, Y/N booleans and signed ``1234.50`` money; the
SoftDent-like profile changes quote char, years, banner/trailer and code spelling. Clean values go
through these formatters; the mess module replaces single cells with dirty spellings afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ..model import Column

__all__ = ["FileStyle", "Fmt", "formatter", "fmt_date", "fmt_phone", "quote_field", "RawText"]

Fmt = Callable[[Any], str]


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


def quote_field(s: str, delim: str, q: str) -> str:
    """Quote a field only when it needs it (delimiter, quote char or a line break inside)."""
    if isinstance(s, RawText):
        return s
    if delim in s or q in s or "\n" in s or "\r" in s:
        return q + s.replace(q, q + q) + q
    return s
