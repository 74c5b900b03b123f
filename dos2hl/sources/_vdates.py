"""Vectorised kernels for dates, datetimes and times (``pyarrow.compute``).

Common fixed-width shapes (``MM/DD/YYYY``, ``MM/DD/YYYY hh:mm:ss AM``) are read by byte slicing,
the other slash and ISO shapes by one regex extraction; year/month/day become day numbers with
integer arithmetic (so impossible dates such as 02/30 are caught, unlike ``strptime``). Every other
non-blank cell goes to the scalar parser in ``_dates``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from . import _dates
from ._arrow import I64, NULL_STR, Out, any_true, clean, match, to_int, unhandled
from ._common import REPAIRED, ParseContext

__all__ = ["k_date", "k_dob", "k_datetime", "k_time"]


def _secs(h: pa.Array, m: pa.Array, s: pa.Array, ap: pa.Array) -> pa.Array:
    """Seconds after midnight from hour/minute/second ints and an ``a``/``p``/empty marker array
    (``_dates.clock_seconds``); null where impossible."""
    has_ap = pc.not_equal(ap, "")
    ok_h = pc.if_else(has_ap, pc.and_(pc.greater_equal(h, 1), pc.less_equal(h, 12)), pc.less_equal(h, 23))
    ok = pc.and_(ok_h, pc.and_(pc.less_equal(m, 59), pc.less_equal(s, 59)))
    h12 = pc.subtract(h, pc.multiply(pc.divide(h, 12), 12))
    h24 = pc.if_else(pc.equal(ap, "p"), pc.add(h12, 12), pc.if_else(pc.equal(ap, "a"), h12, h))
    secs = pc.add(pc.add(pc.multiply(h24, 3600), pc.multiply(m, 60)), s)
    return pc.if_else(ok, secs, pa.scalar(None, I64))


def _ap(p: pa.Array) -> pa.Array:
    return pc.utf8_lower(pc.utf8_slice_codeunits(p, 0, 1))


def _clock(c: pa.Array) -> pa.Array:
    """Seconds after midnight (int64) of ``hh:mm[:ss] [AM]`` cells; null for anything else."""
    st = pc.extract_regex(c, "^" + _dates.CLOCK_RE + "$")
    s_txt = pc.struct_field(st, "S")
    return _secs(to_int(pc.struct_field(st, "H")), to_int(pc.struct_field(st, "M")),
                 to_int(pc.if_else(pc.equal(s_txt, ""), "0", s_txt)), _ap(pc.struct_field(st, "P")))


_DIM = pa.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], I64)


def _days(y: pa.Array, m: pa.Array, d: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(days since 1970-01-01, validity) of year/month/day int64 arrays (proleptic Gregorian)."""
    ok_m = pc.and_(pc.greater_equal(m, 1), pc.less_equal(m, 12))
    mi = pc.if_else(ok_m, m, 0)
    leap = pc.and_(pc.equal(pc.bit_wise_and(y, 3), 0),
                   pc.or_(pc.not_equal(pc.subtract(y, pc.multiply(pc.divide(y, 100), 100)), 0),
                          pc.equal(pc.subtract(y, pc.multiply(pc.divide(y, 400), 400)), 0)))
    dim = pc.add(pc.take(_DIM, mi), pc.cast(pc.and_(pc.equal(m, 2), leap), I64))
    ok = pc.and_(pc.and_(ok_m, pc.greater_equal(d, 1)), pc.less_equal(d, dim))
    ok = pc.and_(ok, pc.greater_equal(y, 1))
    # Howard Hinnant's days_from_civil (all operands positive here).
    y2 = pc.subtract(y, pc.cast(pc.less_equal(m, 2), I64))
    era = pc.divide(y2, 400)
    yoe = pc.subtract(y2, pc.multiply(era, 400))
    mp = pc.if_else(pc.greater(m, 2), pc.subtract(m, 3), pc.add(m, 9))
    doy = pc.add(pc.divide(pc.add(pc.multiply(mp, 153), 2), 5), pc.subtract(d, 1))
    doe = pc.add(pc.subtract(pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)), pc.divide(yoe, 100)), doy)
    days = pc.subtract(pc.add(pc.multiply(era, 146097), doe), 719468)
    return days, pc.fill_null(ok, False)


#: Fixed-width shapes read by slicing (no regex captures): (length, shape, has time, has AM/PM).
_FIXED = (
    (10, r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$", False, False),
    (22, r"^[0-9]{2}/[0-9]{2}/[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [AaPp][Mm]$", True, True),
    (19, r"^[0-9]{2}/[0-9]{2}/[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}$", True, False),
)


def _cut(b: pa.Array, start: int, stop: int) -> pa.Array:
    """Integer value of bytes ``start:stop`` of an ASCII column viewed as binary."""
    return to_int(pc.binary_slice(b, start, stop).cast(pa.string()))


def _date_fields(c: pa.Array, ctx: ParseContext) -> dict[str, pa.Array]:
    """Year, month, day, year width, seconds of the time part (0 when absent, null when invalid)
    and an ISO flag of every cell in a handled shape; null elsewhere."""
    n = len(c)
    f: dict[str, pa.Array] = {k: pa.nulls(n, I64) for k in ("a", "b", "y", "ylen", "secs")}
    f["iso"] = pa.nulls(n, pa.bool_())
    todo = pc.is_valid(c)
    length = pc.binary_length(c)
    for width, shape, timed, has_ap in _FIXED:
        cand = pc.and_(todo, pc.fill_null(pc.equal(length, width), False))
        if not any_true(cand):
            continue
        hit = pc.and_(cand, match(c, shape))
        cc = pc.if_else(hit, c, NULL_STR).cast(pa.binary())
        part = {"a": _cut(cc, 0, 2), "b": _cut(cc, 3, 5), "y": _cut(cc, 6, 10),
                "ylen": pc.if_else(hit, pa.scalar(4, I64), pa.scalar(None, I64))}
        if timed:
            ap = (_ap(pc.binary_slice(cc, 20, 21).cast(pa.string())) if has_ap
                  else pc.if_else(hit, "", NULL_STR))
            part["secs"] = _secs(_cut(cc, 11, 13), _cut(cc, 14, 16), _cut(cc, 17, 19), ap)
        else:
            part["secs"] = pc.if_else(hit, pa.scalar(0, I64), pa.scalar(None, I64))
        for k, v in part.items():
            f[k] = pc.coalesce(f[k], v)
        todo = pc.and_(todo, pc.invert(hit))
    for rx, iso in ((_dates.US_DATE_RE, False), (_dates.ISO_DATE_RE, True)):
        if not any_true(todo):
            break
        st = pc.extract_regex(pc.if_else(todo, c, NULL_STR), rx)
        hit = pc.is_valid(st)
        y_txt, rest = pc.struct_field(st, "y"), pc.struct_field(st, "rest")
        has_rest = pc.greater(pc.binary_length(rest), 0)
        secs = pc.if_else(has_rest, pa.scalar(None, I64), pa.scalar(0, I64))
        if any_true(has_rest):
            secs = pc.coalesce(secs, _clock(pc.if_else(has_rest, rest, NULL_STR)))
        part = {"a": to_int(pc.struct_field(st, "a")), "b": to_int(pc.struct_field(st, "b")),
                "y": to_int(y_txt),
                "ylen": pc.cast(pc.binary_length(y_txt), I64), "secs": secs}
        if iso:
            f["iso"] = hit
        for k, v in part.items():
            f[k] = pc.coalesce(f[k], v)
        todo = pc.and_(todo, pc.invert(pc.fill_null(hit, False)))
    dmy = ctx.date_order == "DMY"
    iso_hit = pc.fill_null(f["iso"], False)
    # ISO fields are (month=a, day=b) whatever the date order.
    f["m"] = pc.if_else(iso_hit, f["a"], f["b"]) if dmy else f["a"]
    f["d"] = pc.if_else(iso_hit, f["b"], f["a"]) if dmy else f["b"]
    return f


def _century(f: dict[str, pa.Array], ctx: ParseContext, birth: bool) -> pa.Array:
    y, m, d = f["y"], f["m"], f["d"]
    e = ctx.export_date
    if birth:
        y0 = pc.add(y, e.year // 100 * 100)
        after = pc.or_(pc.greater(y0, e.year), pc.and_(
            pc.equal(y0, e.year),
            pc.or_(pc.greater(m, e.month), pc.and_(pc.equal(m, e.month), pc.greater(d, e.day)))))
        y2 = pc.if_else(after, pc.subtract(y0, 100), y0)
    else:
        y2 = pc.if_else(pc.less_equal(pc.add(y, 2000), e.year + 20), pc.add(y, 2000), pc.add(y, 1900))
    return pc.if_else(pc.equal(f["ylen"], 2), y2, y)


def _datelike(raw: pa.Array, ctx: ParseContext, *, birth: bool, stamp: bool) -> Out:
    c, maskhit = clean(raw)
    f = _date_fields(c, ctx)
    y, m, d, secs = f["y"], f["m"], f["d"], f["secs"]
    time_ok = pc.is_valid(secs)
    four = pc.equal(f["ylen"], 4)
    sentinel = pc.or_(
        pc.and_(four, pc.or_(
            pc.less(y, _dates.MIN_YEAR),
            pc.or_(pc.or_(_ymd_is(y, m, d, 1900, 1, 1), _ymd_is(y, m, d, 1899, 12, 30)),
                   _ymd_is(y, m, d, 1901, 1, 1)))),
        _ymd_is(y, m, d, 0, 0, 0))
    sentinel = pc.fill_null(pc.and_(sentinel, time_ok), False)
    days, ok = _days(_century(f, ctx, birth), m, d)
    ok = pc.and_(pc.and_(ok, time_ok), pc.invert(sentinel))
    if stamp:
        vals = pc.if_else(ok, pc.add(pc.multiply(days, 86400), secs), pa.scalar(None, I64))
        out = Out(pc.cast(vals, pa.timestamp("s")), pa.timestamp("s"))
    else:
        vals = pc.if_else(ok, pc.cast(days, pa.int32()), pa.scalar(None, pa.int32()))
        out = Out(pc.cast(vals, pa.date32()), pa.date32())
    out.mark(pc.or_(sentinel, maskhit), "DT1", REPAIRED)
    out.mark(pc.and_(ok, pc.equal(f["ylen"], 2)), "DT2", REPAIRED)
    out.mark(pc.and_(ok, pc.fill_null(f["iso"], False)), "DT3", REPAIRED)
    todo = pc.and_(unhandled(c, out.values), pc.invert(sentinel))
    if stamp:
        out.fallback(c, todo, lambda s: _dates.parse_datetime(s, ctx))
    else:
        out.fallback(c, todo, lambda s: _dates.parse_date(s, ctx, birth=birth))
    return out


def _ymd_is(y: pa.Array, m: pa.Array, d: pa.Array, yv: int, mv: int, dv: int) -> pa.Array:
    return pc.and_(pc.and_(pc.equal(y, yv), pc.equal(m, mv)), pc.equal(d, dv))


def k_date(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    return _datelike(raw, ctx, birth=False, stamp=False)


def k_dob(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    return _datelike(raw, ctx, birth=True, stamp=False)


def k_datetime(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    return _datelike(raw, ctx, birth=False, stamp=True)


def k_time(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    t = c
    if any_true(match(c, _dates.DATE_PREFIX_RE)):
        t = pc.replace_substring_regex(c, _dates.DATE_PREFIX_RE, "")
    secs = _clock(t)
    digits = match(c, r"^[0-9]{1,4}$")
    mode: _dates.DigitsMode = "auto"
    if any_true(digits):
        n = to_int(pc.if_else(digits, c, NULL_STR))
        hh, mm = pc.divide(n, 100), pc.subtract(n, pc.multiply(pc.divide(n, 100), 100))
        hhmm = pc.and_(pc.greater_equal(pc.binary_length(c), 3),
                       pc.and_(pc.less_equal(hh, 23), pc.less_equal(mm, 59)))
        minutes = pc.if_else(pc.less_equal(n, 1439), pc.multiply(n, 60), pa.scalar(None, I64))
        if any_true(pc.and_(digits, pc.invert(pc.fill_null(hhmm, False)))):
            mode = "minutes"
            dsecs = minutes
        else:
            dsecs = pc.if_else(hhmm, pc.add(pc.multiply(hh, 3600), pc.multiply(mm, 60)), minutes)
        secs = pc.if_else(digits, dsecs, secs)
    out = Out(pc.cast(pc.cast(secs, pa.int32()), pa.time32("s")), pa.time32("s"))
    out.fallback(c, unhandled(c, out.values), lambda s: _dates.parse_time(s, digits=mode))
    return out
