"""Vectorised kernels: parse whole Arrow string columns with ``pyarrow.compute``.

Each kernel handles the common shapes of its kind with Arrow kernels and sends every other non-blank
cell to the scalar parser of the same kind (the reference), so a kernel never has to know all the
formats; it only must not disagree with the scalar parser on the cells it does take. Date and time
kernels live in ``_vdates``.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from ..model import MONEY
from . import _numbers, _text
from ._arrow import I64, NULL_STR, TOKENS, Out, any_true, clean, match, to_int, unhandled
from ._common import NULLED, REPAIRED, WS, ParseContext
from ._vdates import k_date, k_datetime, k_dob, k_time

__all__ = ["KERNELS", "Kernel", "kernel_for"]


def k_int(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    ok = match(c, _numbers.INT_RE)
    out = Out(to_int(pc.if_else(ok, c, NULL_STR)), I64)
    out.mark(pc.and_(ok, match(c, r"^-?0[0-9]")), "ID1", REPAIRED)
    out.fallback(c, unhandled(c, out.values), _numbers.parse_int)
    return out


def k_money(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    comma = ctx.decimal_comma
    canon = match(c, _numbers.MONEY_CANON_RE_COMMA if comma else _numbers.MONEY_CANON_RE)
    txt = pc.if_else(canon, c, NULL_STR)
    if comma:
        txt = pc.replace_substring(txt, ",", ".")
    vals = pc.cast(txt, MONEY)
    rest = pc.and_(pc.is_valid(c), pc.invert(canon))
    ok = pa.nulls(len(c), pa.bool_())
    if any_true(rest):
        st = pc.extract_regex(pc.if_else(rest, c, NULL_STR),
                              _numbers.MONEY_RE_COMMA if comma else _numbers.MONEY_RE)
        o, cl = pc.equal(pc.struct_field(st, "o"), "("), pc.equal(pc.struct_field(st, "c"), ")")
        negs = pc.add(pc.add(pc.cast(o, I64), pc.cast(pc.equal(pc.struct_field(st, "s"), "-"), I64)),
                      pc.cast(pc.equal(pc.struct_field(st, "t"), "-"), I64))
        ok = pc.fill_null(pc.and_(pc.equal(o, cl), pc.less_equal(negs, 1)), False)
        digits = pc.replace_substring(pc.struct_field(st, "i"), "." if comma else ",", "")
        frac = pc.struct_field(st, "f")
        if comma:
            frac = pc.replace_substring(frac, ",", ".")
        sign = pc.if_else(pc.equal(negs, 1), "-", "")
        num = pc.binary_join_element_wise(sign, digits, frac, "")
        vals = pc.coalesce(vals, pc.cast(pc.if_else(ok, num, NULL_STR), MONEY))
    out = Out(vals, MONEY)
    out.mark(ok, "$1", REPAIRED)
    out.fallback(c, unhandled(c, out.values), lambda s: _numbers.parse_money(s, ctx))
    return out


_BOOL_SET = pa.array(_numbers.BOOL_TRUE + _numbers.BOOL_FALSE, pa.string())


def k_bool(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    idx = pc.index_in(pc.utf8_upper(c), value_set=_BOOL_SET)
    out = Out(pc.less(idx, len(_numbers.BOOL_TRUE)), pa.bool_())
    out.fallback(c, unhandled(c, out.values), _numbers.parse_bool)
    return out


# ---- text ------------------------------------------------------------------------------------------
def _upper_ascii(raw: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(cleaned, upper-cased, non-ASCII mask): non-ASCII cells go to the scalar (Python) upper."""
    c, _ = clean(raw)
    return c, pc.utf8_upper(c), pc.invert(pc.fill_null(pc.string_is_ascii(c), True))


def k_code(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, u, non_ascii = _upper_ascii(raw)
    out = Out(u, pa.string())
    out.fallback(c, non_ascii, _text.parse_code)
    return out


def k_enum(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, u, non_ascii = _upper_ascii(raw)
    allowed = pc.fill_null(pc.is_in(u, value_set=pa.array(values, pa.string())), False)
    out = Out(pc.if_else(allowed, u, NULL_STR), pa.string())
    out.mark(pc.and_(pc.is_valid(c), pc.invert(allowed)), "ENUM", NULLED)
    out.fallback(c, non_ascii, lambda s: _text.parse_enum(s, values))
    return out


def k_str(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    out = Out(c, pa.string())
    out.fallback(c, match(c, f"{_text.MOJIBAKE_RE}|{_text.CTRL_RE}"), _text.parse_str)
    return out


def k_memo(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    t = pc.utf8_trim(raw, characters=WS)
    null = pc.fill_null(pc.or_(pc.equal(pc.binary_length(t), 0), pc.is_in(t, value_set=TOKENS)), True)
    v = pc.if_else(null, NULL_STR, raw)
    if any_true(pc.match_substring(v, "\r")):
        v = pc.replace_substring(pc.replace_substring(v, "\r\n", "\n"), "\r", "\n")
    out = Out(v, pa.string())
    out.fallback(raw, match(v, f"{_text.MOJIBAKE_RE}|{_text.MEMO_CTRL_RE}"), _text.clean_memo)
    return out


def _prefix(p: str, a: pa.Array) -> pa.Array:
    return pc.utf8_replace_slice(a, start=0, stop=0, replacement=p)


def _strip_seps(a: pa.Array) -> pa.Array:
    """Remove the usual phone separators ``( ) - .`` and spaces (what is left must be digits)."""
    for ch in ("(", ")", " ", "-", "."):
        a = pc.replace_substring(a, ch, "")
    return a


def _real(digits: pa.Array) -> pa.Array:
    return pc.invert(match(digits, _text.PLACEHOLDER_DIGITS_RE))


def k_phone(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    vals = pa.nulls(len(c), pa.string())
    nanp = ctx.phone_region in _text.NANP_REGIONS
    canon = match(c, _text.PHONE_CANON_RE) if nanp else pa.nulls(len(c), pa.bool_())
    canon = pc.fill_null(canon, False)
    if nanp and any_true(canon):  # "(413) 555-0142" -> "+1" + digits, by three literal edits
        e = pc.utf8_replace_slice(pc.if_else(canon, c, NULL_STR), start=0, stop=1, replacement="+1")
        e = pc.replace_substring(pc.replace_substring(e, ") ", ""), "-", "")
        vals = pc.if_else(_real(pc.utf8_slice_codeunits(e, 2)), e, NULL_STR)
    rest = pc.and_(pc.is_valid(c), pc.invert(canon))
    if any_true(rest):
        digits = pc.if_else(rest, c, NULL_STR)
        if nanp:  # "+1 413 555 0142": drop the "+", the 11-digit rule below takes the "1"
            plus1 = pc.fill_null(pc.starts_with(digits, "+1"), False)
            if any_true(plus1):
                digits = pc.if_else(plus1, pc.utf8_slice_codeunits(digits, 1), digits)
        digits = _strip_seps(digits)
        real = _real(digits)
        if nanp:
            ok10 = pc.and_(match(digits, r"^[2-9][0-9]{2}[2-9][0-9]{6}$"), real)
            vals = pc.if_else(ok10, _prefix("+1", digits), vals)
            ok11 = pc.and_(match(digits, r"^1[2-9][0-9]{2}[2-9][0-9]{6}$"), real)
            if any_true(ok11):
                vals = pc.if_else(ok11, _prefix("+", digits), vals)
            area = ctx.default_area_code
            if area and len(area) == 3 and area.isdigit() and area[0] in "23456789":
                ok7 = pc.and_(match(digits, r"^[2-9][0-9]{6}$"), real)
                vals = pc.if_else(ok7, _prefix("+1" + area, digits), vals)
        elif ctx.phone_region in _text.PHONE_VECTOR:
            cc, pattern, canon_re = _text.PHONE_VECTOR[ctx.phone_region]
            ok = pc.and_(match(digits, pattern), real)
            vals = pc.if_else(ok, _prefix("+" + cc, digits), vals)
            canon = match(c, canon_re)
    out = Out(vals, pa.string())
    out.mark(pc.and_(pc.is_valid(vals), pc.invert(canon)), "PH1", REPAIRED)
    out.fallback(c, unhandled(c, out.values), lambda s: _text.parse_phone(s, ctx))
    return out


def k_email(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    low = pc.utf8_lower(c)
    ok = pc.and_(pc.and_(match(low, _text.EMAIL_RE), pc.less_equal(pc.binary_length(low), 254)),
                 pc.fill_null(pc.string_is_ascii(c), False))
    out = Out(pc.if_else(ok, low, NULL_STR), pa.string())
    out.fallback(c, unhandled(c, out.values), _text.parse_email)
    return out


def k_zip(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    vals = pc.if_else(match(c, _text.ZIP_CANON_RE), c, NULL_STR)
    four = match(c, r"^[0-9]{4}$")
    nine = match(c, r"^[0-9]{9}$")
    if any_true(four):
        vals = pc.if_else(four, _prefix("0", c), vals)
    if any_true(nine):
        dashed = pc.binary_join_element_wise(pc.utf8_slice_codeunits(c, 0, 5),
                                             pc.utf8_slice_codeunits(c, 5), "-")
        vals = pc.if_else(nine, dashed, vals)
    out = Out(vals, pa.string())
    out.mark(pc.or_(four, nine), "ZIP1", REPAIRED)
    out.fallback(c, unhandled(c, out.values), _text.parse_zip)
    return out


def k_state(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    ok = match(c, _text.STATE_RE)
    out = Out(pc.if_else(ok, pc.ascii_upper(c), NULL_STR), pa.string())
    out.fallback(c, unhandled(c, out.values), _text.parse_state)
    return out


def k_proc_code(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, u, non_ascii = _upper_ascii(raw)
    out = Out(u, pa.string())
    if ctx.cdt:
        legacy = pc.and_(match(u, r"^D?[0-9]"), pc.invert(match(u, _text.PROC_CANON_RE)))
        out.fallback(c, pc.or_(legacy, non_ascii), _text.parse_proc_code)
    else:
        out.fallback(c, non_ascii, lambda s: _text.parse_proc_code(s, cdt=False))
    return out


def k_tooth(raw: pa.Array, ctx: ParseContext, values: tuple[str, ...]) -> Out:
    c, _ = clean(raw)
    out = Out(c, pa.string())
    out.fallback(c, pc.and_(pc.is_valid(c), pc.invert(match(c, _text.TOOTH_RE))), _text.parse_tooth)
    return out


Kernel = Callable[[pa.Array, ParseContext, tuple[str, ...]], Out]

KERNELS: dict[str, Kernel] = {
    "int": k_int, "code": k_code, "str": k_str, "memo": k_memo, "date": k_date, "dob": k_dob,
    "time": k_time, "datetime": k_datetime, "money": k_money, "bool": k_bool, "enum": k_enum,
    "lookup": k_code, "phone": k_phone, "email": k_email, "zip": k_zip, "state": k_state,
}

#: Column names whose kind gets a domain-specific kernel.
_BY_NAME: dict[tuple[str, str], Kernel] = {
    ("code", "proc_code"): k_proc_code, ("str", "tooth"): k_tooth, ("str", "tooth_list"): k_tooth,
}


def kernel_for(kind: str, name: str) -> Kernel:
    """The kernel for a column of ``kind`` called ``name``."""
    return _BY_NAME.get((kind, name)) or KERNELS[kind]
