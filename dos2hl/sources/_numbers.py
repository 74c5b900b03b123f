"""Scalar parsers for integers, money and booleans (the reference the vectorised kernels must match)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ._common import NULLED, REPAIRED, ParseContext, Result, clean_text

__all__ = [
    "parse_int", "parse_money", "parse_bool", "BOOL_TRUE", "BOOL_FALSE", "INT_RE", "MONEY_RE",
    "MONEY_RE_COMMA", "MONEY_CANON_RE", "MONEY_CANON_RE_COMMA", "MAX_MONEY",
]

INT_MAX = 2**63 - 1
#: Plain integers the vectorised kernel casts directly (18 digits cannot overflow int64).
INT_RE = r"^-?[0-9]{1,18}$"
_INT = re.compile(r"([-+]?)([0-9]+)")
_INT_FMT = re.compile(r"([-+]?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.0+)?")

BOOL_TRUE = ("Y", "YES", "T", "TRUE", "1", "-1", "X", "ON")
BOOL_FALSE = ("N", "NO", "F", "FALSE", "0", "OFF")
_BOOL = {**{k: True for k in BOOL_TRUE}, **{k: False for k in BOOL_FALSE}}

MAX_MONEY = Decimal("999999999999.99")  # decimal128(14, 2)
_CENT = Decimal("0.01")
#: Canonical amounts (no code): ``1234.50``, ``-45.00``, ``12`` (``1234,50`` with a decimal comma).
MONEY_CANON_RE = r"^-?[0-9]{1,12}(?:\.[0-9]{1,2})?$"
MONEY_CANON_RE_COMMA = r"^-?[0-9]{1,12}(?:,[0-9]{1,2})?$"
#: The non-canonical shapes the vectorised kernel converts: ``$1,234.50``, ``(45.00)``, ``45.00-``.
MONEY_RE = (r"^(?P<o>\(?)(?P<s>[-+]?)\$?(?P<i>[0-9]{1,3}(?:,[0-9]{3}){1,3}|[0-9]{1,12})"
            r"(?P<f>(?:\.[0-9]{1,2})?)(?P<c>\)?)(?P<t>-?)$")
MONEY_RE_COMMA = (r"^(?P<o>\(?)(?P<s>[-+]?)(?P<i>[0-9]{1,3}(?:\.[0-9]{3}){1,3}|[0-9]{1,12})"
                  r"(?P<f>(?:,[0-9]{1,2})?)(?P<c>\)?)(?P<t>-?)$")
_CANON = re.compile(MONEY_CANON_RE[1:-1])
_CANON_COMMA = re.compile(MONEY_CANON_RE_COMMA[1:-1])
_CURRENCY = re.compile(r"(?i)\$|€|£|\bUSD\b|\bEUR\b|\s+")
_CRDR = re.compile(r"(?i)(.*?)(CR|DR)")
_DOT_BODY = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_COMMA_BODY = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?|[0-9]+(?:,[0-9]+)?|,[0-9]+")
_DOT_IN_COMMA = re.compile(r"[0-9]+\.[0-9]{1,2}")
_COMMA_IN_DOT = re.compile(r"[0-9]+,[0-9]{1,2}")


def parse_int(s: str | None) -> Result:
    """Parse an integer id or count: ``000123`` -> 123 (ID1), ``1,234``/``12.0``/``+5`` (FMT).

    Examples:
        >>> parse_int("000412")
        (412, 'ID1', 'repaired')
        >>> parse_int("12a")
        (None, 'TYPE', 'nulled')
    """
    c = clean_text(s)
    if c is None:
        return None, None, None
    m = _INT.fullmatch(c)
    code: str | None = None
    if m:
        sign, digits = m.groups()
        if sign == "+":
            code = "FMT"
        elif len(digits) > 1 and digits[0] == "0":
            code = "ID1"
    else:
        m = _INT_FMT.fullmatch(c)
        if not m:
            return None, "TYPE", NULLED
        sign, digits = m.group(1), m.group(2).replace(",", "")
        code = "FMT"
    v = int(digits) * (-1 if sign == "-" else 1)
    if abs(v) > INT_MAX:
        return None, "TYPE", NULLED
    return v, code, REPAIRED if code else None


def parse_bool(s: str | None) -> Result:
    """Parse ``Y/N``, ``T/F``, ``1/0``, ``-1/0``, ``X``, ``YES/NO``, ``TRUE/FALSE``, ``ON/OFF``.

    Blank -> None; anything else -> None with code TYPE. (Whether blank means false in an
    ``X``-style column is the reader's call, per profile.)
    """
    c = clean_text(s)
    if c is None:
        return None, None, None
    v = _BOOL.get(c.upper())
    if v is None:
        return None, "TYPE", NULLED
    return v, None, None


def _money_body(t: str, decimal_comma: bool) -> Decimal | None:
    if decimal_comma:
        if _COMMA_BODY.fullmatch(t):
            return Decimal(t.replace(".", "").replace(",", "."))
        if _DOT_IN_COMMA.fullmatch(t):
            return Decimal(t)
        return None
    if _DOT_BODY.fullmatch(t):
        return Decimal(t.replace(",", ""))
    if _COMMA_IN_DOT.fullmatch(t):
        return Decimal(t.replace(",", "."))
    return None


def parse_money(s: str | None, ctx: ParseContext) -> Result:
    """Parse an amount into a ``Decimal`` with 2 places, signed (debits +, credits -).

    ``1234.50`` and ``-45.00`` are canonical; ``$1,234.50``, ``(45.00)``, ``45.00-``, ``45.00 CR`` and
    (with ``ctx.decimal_comma``) ``1.234,50`` are converted with code ``$1``.

    Examples:
        >>> parse_money("(80.80)", ParseContext())
        (Decimal('-80.80'), '$1', 'repaired')
    """
    c = clean_text(s)
    if c is None:
        return None, None, None
    canon = _CANON_COMMA if ctx.decimal_comma else _CANON
    if canon.fullmatch(c):
        return Decimal(c.replace(",", ".")).quantize(_CENT), None, None
    t = _CURRENCY.sub("", c)
    neg = 0
    m = _CRDR.fullmatch(t)
    if m:
        t = m.group(1)
        neg += m.group(2).upper() == "CR"
    if t.startswith("(") and t.endswith(")"):
        t, neg = t[1:-1], neg + 1
    if t.startswith("+"):
        t = t[1:]
    elif t.startswith("-"):
        t, neg = t[1:], neg + 1
    if t.endswith("-"):
        t, neg = t[:-1], neg + 1
    if neg > 1 or not t:
        return None, "TYPE", NULLED
    try:
        v = _money_body(t, ctx.decimal_comma)
    except InvalidOperation:  # pragma: no cover - the body regexes only let digits through
        v = None
    if v is None or v.adjusted() >= 12:
        return None, "TYPE", NULLED
    v = v.quantize(_CENT, rounding=ROUND_HALF_UP)
    if v > MAX_MONEY:
        return None, "TYPE", NULLED
    return (-v if neg else v), "$1", REPAIRED
