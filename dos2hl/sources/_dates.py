"""Scalar parsers for dates, times and datetimes (the reference the vectorised kernels must match).

Every parser takes the raw cell text and returns ``(value, code, action)``; see ``values`` for the
rules. Regular expressions that the vectorised kernels also use live here, written in the common
subset of Python ``re`` and RE2.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from ._common import NULLED, REPAIRED, ParseContext, Result, clean_text, is_mask

__all__ = [
    "parse_date", "parse_time", "parse_datetime", "clock_seconds", "digits_seconds", "time_seconds",
    "SENTINELS", "US_DATE_RE", "ISO_DATE_RE", "CLOCK_RE", "DATE_PREFIX_RE", "two_digit_year",
    "DigitsMode",
]

#: (year, month, day) triples that mean "no date" (plus any four-digit year before 1800).
SENTINELS = frozenset({(1900, 1, 1), (1899, 12, 30), (1901, 1, 1)})
MIN_YEAR = 1800

# Shared with the vectorised kernels (RE2): keep to the common syntax.
CLOCK_RE = (r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d{1,6})?)?"
            r"[ ]*(?P<P>[AaPp]\.?(?:[Mm]\.?)?)?")
US_DATE_RE = r"^(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4}|\d{2})(?:[ T]+(?P<rest>.+))?$"
ISO_DATE_RE = r"^(?P<y>\d{4})-(?P<a>\d{2})-(?P<b>\d{2})(?:[ T]+(?P<rest>.+))?$"
DATE_PREFIX_RE = r"^\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}[ T]+"

_CLOCK = re.compile(CLOCK_RE)
_HOUR_AP = re.compile(r"(\d{1,2})[ ]*([AaPp])\.?(?:[Mm]\.?)?")
_DIGITS = re.compile(r"\d{1,4}")
_DATE_PREFIX = re.compile(DATE_PREFIX_RE)
_SEP_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T]+(.+))?")
_YMD_DATE = re.compile(r"(\d{4})([/.-])(\d{1,2})\2(\d{1,2})(?:[ T]+(.+))?")
_COMPACT = re.compile(r"(\d{8}|\d{6})")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
_DAY_MON = re.compile(r"(\d{1,2})[ -]([A-Za-z]{3,9})\.?[ ,-]+(\d{4}|\d{2})(?:[ T]+(.+))?")
_MON_DAY = re.compile(r"([A-Za-z]{3,9})\.?[ -]+(\d{1,2})(?:st|nd|rd|th)?,?[ -]+(\d{4}|\d{2})(?:[ T]+(.+))?")
_ISO_Z = re.compile(r"(.*?)(?:Z|[+-]\d{2}:?\d{2})")

DigitsMode = Literal["auto", "minutes"]


def clock_seconds(h: int, m: int, s: int, ap: str | None) -> int | None:
    """Seconds after midnight for ``h:m:s`` with an optional ``a``/``p`` marker; None if impossible."""
    if m > 59 or s > 59:
        return None
    if ap:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if ap in "pP" else 0)
    elif h > 23:
        return None
    return h * 3600 + m * 60 + s


def digits_seconds(d: str, mode: DigitsMode = "auto") -> int | None:
    """A bare 1-4 digit time: ``HHMM``/``HMM`` when valid (mode auto), else minutes after midnight."""
    if mode == "auto" and len(d) >= 3:
        hh, mm = int(d[:-2]), int(d[-2:])
        if hh <= 23 and mm <= 59:
            return hh * 3600 + mm * 60
    n = int(d)
    return n * 60 if n <= 1439 else None


def _clock_text(t: str) -> int | None:
    m = _CLOCK.fullmatch(t)
    if m:
        ap = m.group("P")
        return clock_seconds(int(m.group("H")), int(m.group("M")), int(m.group("S") or 0),
                             ap[0] if ap else None)
    m = _HOUR_AP.fullmatch(t)
    if m:
        return clock_seconds(int(m.group(1)), 0, 0, m.group(2))
    return None


def time_seconds(c: str, digits: DigitsMode = "auto") -> int | None:
    """Seconds after midnight of a cleaned time cell, or None when it is not a time."""
    if _DIGITS.fullmatch(c):
        return digits_seconds(c, digits)
    p = _DATE_PREFIX.match(c)  # Access style: a time stored as "12/30/1899 08:30:00 AM"
    if p:
        c = c[p.end():]
    return _clock_text(c)


def parse_time(s: str | None, *, digits: DigitsMode = "auto") -> Result:
    """Parse a time of day: ``hh:mm AM``, ``08:30a``, ``HH:MM[:SS]``, ``HHMM``, minutes after midnight.

    ``digits="minutes"`` reads every bare number as minutes after midnight (``parse_column`` picks
    it for a whole column when some bare number is not a valid ``HHMM``).

    Examples:
        >>> parse_time("08:30a")
        (datetime.time(8, 30), None, None)
        >>> parse_time("495")[0], parse_time("1430")[0]  # 495 minutes; 14:30
        (datetime.time(8, 15), datetime.time(14, 30))
    """
    c = clean_text(s)
    if c is None:
        return None, None, None
    secs = time_seconds(c, digits)
    if secs is None:
        return None, "TYPE", NULLED
    return dt.time(secs // 3600, secs // 60 % 60, secs % 60), None, None


def two_digit_year(yy: int, month: int, day: int, ctx: ParseContext, birth: bool) -> int:
    """The four-digit year of ``yy`` (architecture.md): birth dates never after the export date."""
    e = ctx.export_date
    if birth:
        y = e.year // 100 * 100 + yy
        if (y, month, day) > (e.year, e.month, e.day):
            y -= 100
        return y
    return 2000 + yy if 2000 + yy <= e.year + 20 else 1900 + yy


def _valid(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def _finish(y_txt: str, month: int, day: int, rest: str | None, code: str | None, swap: bool,
            ctx: ParseContext, birth: bool) -> tuple[dt.date | None, int | None, str | None, str | None]:
    """Sentinels, two-digit years, validity and the optional time part of one date."""
    secs: int | None = None
    if rest:
        z = _ISO_Z.fullmatch(rest)
        secs = _clock_text(z.group(1) if z else rest)
        if secs is None:
            return None, None, "TYPE", NULLED
    y = int(y_txt)
    if (len(y_txt) == 4 and (y < MIN_YEAR or (y, month, day) in SENTINELS)) or (y, month, day) == (0, 0, 0):
        return None, None, "DT1", REPAIRED
    orders = [(month, day)] + ([(day, month)] if swap and day != month else [])
    for i, (mo, da) in enumerate(orders):
        yr = two_digit_year(y, mo, da, ctx, birth) if len(y_txt) == 2 else y
        d = _valid(yr, mo, da)
        if d is not None:
            c = "DT3" if i else (code or ("DT2" if len(y_txt) == 2 else None))
            return d, secs, c, (REPAIRED if c else None)
    return None, None, "TYPE", NULLED


def _month(name: str) -> int | None:
    """1-12 for an English month name or abbreviation (``Mar``, ``March``, ``Sept``), else None."""
    n = name.lower()
    n = "sep" if n == "sept" else n
    return next((i for i, full in enumerate(_MONTHS, 1) if len(n) >= 3 and full.startswith(n)), None)


def date_parts(c: str, ctx: ParseContext, birth: bool = False
               ) -> tuple[dt.date | None, int | None, str | None, str | None]:
    """(date, seconds of an optional time part, code, action) of a cleaned date or datetime cell."""
    m = _SEP_DATE.fullmatch(c)
    if m:
        a, sep, b, y, rest = m.groups()
        mo, da = (int(a), int(b)) if ctx.date_order == "MDY" else (int(b), int(a))
        return _finish(y, mo, da, rest, None if sep == "/" else "DT3", True, ctx, birth)
    m = _YMD_DATE.fullmatch(c)
    if m:
        y, _sep, mo_t, da_t, rest = m.groups()
        return _finish(y, int(mo_t), int(da_t), rest, "DT3", False, ctx, birth)
    m = _COMPACT.fullmatch(c)
    if m:
        if len(c) == 8 and MIN_YEAR <= int(c[:4]) <= 2200:
            return _finish(c[:4], int(c[4:6]), int(c[6:]), None, "DT3", False, ctx, birth)
        a, b, y = int(c[:2]), int(c[2:4]), c[4:]
        mo, da = (a, b) if ctx.date_order == "MDY" else (b, a)
        return _finish(y, mo, da, None, "DT3", False, ctx, birth)
    for rx, dmy in ((_DAY_MON, True), (_MON_DAY, False)):
        m = rx.fullmatch(c)
        if m:
            g = m.groups()
            named = _month(g[1] if dmy else g[0])
            if named is None:
                break
            da = int(g[0] if dmy else g[1])
            return _finish(g[2], named, da, g[3], "DT3", False, ctx, birth)
    return None, None, "TYPE", NULLED


def parse_date(s: str | None, ctx: ParseContext, *, birth: bool = False) -> Result:
    """Parse a date cell (``date`` kind, or ``dob`` with ``birth=True``) into a ``datetime.date``.

    Codes: DT1 sentinel or mask -> None; DT2 two-digit year expanded; DT3 another format (ISO,
    ``-``/``.`` separators, swapped day/month, month names, digits only); TYPE unreadable -> None.

    Examples:
        >>> ctx = ParseContext(export_date=dt.date(2024, 4, 12))
        >>> parse_date("03/15/45", ctx, birth=True)
        (datetime.date(1945, 3, 15), 'DT2', 'repaired')
        >>> parse_date("01/01/1900", ctx)
        (None, 'DT1', 'repaired')
    """
    c = clean_text(s)
    if c is None:
        return (None, "DT1", REPAIRED) if is_mask(s) else (None, None, None)
    d, _secs, code, action = date_parts(c, ctx, birth)
    return d, code, action


def parse_datetime(s: str | None, ctx: ParseContext) -> Result:
    """Parse ``MM/DD/YYYY hh:mm:ss AM`` (or any date format of ``parse_date`` plus an optional time)."""
    c = clean_text(s)
    if c is None:
        return (None, "DT1", REPAIRED) if is_mask(s) else (None, None, None)
    d, secs, code, action = date_parts(c, ctx)
    if d is None:
        return None, code, action
    ts = dt.datetime(d.year, d.month, d.day) + dt.timedelta(seconds=secs or 0)
    return ts, code, action
