"""Scalar parsers for text-like kinds: str, memo, code, enum, phone, email, zip, state, procedure
codes and teeth (the reference the vectorised kernels must match)."""

from __future__ import annotations

import re

import ftfy
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from ._common import FLAGGED, NULL_TOKENS, NULLED, REPAIRED, WS, ParseContext, Result, clean_text

__all__ = [
    "parse_str", "clean_memo", "parse_code", "parse_enum", "parse_phone", "parse_email", "parse_zip",
    "parse_state", "parse_proc_code", "parse_tooth", "MOJIBAKE_RE", "CTRL_RE", "MEMO_CTRL_RE",
    "EMAIL_RE", "PHONE_CANON_RE", "PHONE_CHARS_RE", "PHONE_VECTOR", "NANP_REGIONS", "TOOTH_RE",
    "PROC_CANON_RE", "ZIP_CANON_RE", "STATE_RE", "PLACEHOLDER_DIGITS_RE",
]

# ---- shared with the vectorised kernels (RE2 syntax) -------------------------------------------
MOJIBAKE_RE = "Ã|Â|â€"
CTRL_RE = "[\\x00-\\x1f\\x7f]"
MEMO_CTRL_RE = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]"
EMAIL_RE = (r"^[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
            r"[a-z]{2,24}$")
NANP_REGIONS = frozenset({"US", "CA", "PR", "VI", "GU", "AS", "MP"})
#: The phone layout taken as-is (no PH1) in NANP regions: ``(413) 555-0142``.
PHONE_CANON_RE = r"^\([2-9][0-9]{2}\) [2-9][0-9]{2}-[0-9]{4}$"
PHONE_CHARS_RE = r"^[0-9 ().\-/]+$"
PLACEHOLDER_DIGITS_RE = r"^(?:0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$"
#: Regions whose national numbers the vectorised kernel converts: region -> (country code, digits
#: pattern, canonical layout).
PHONE_VECTOR: dict[str, tuple[str, str, str]] = {
    "GR": ("30", r"^[26][0-9]{9}$", r"^[0-9]{10}$"),
}
_TOOTH_TOKEN = r"(?:[1-9]|[12][0-9]|3[0-2]|5[1-9]|[67][0-9]|8[0-2]|[A-T]S?|UR|UL|LL|LR|U|L)"
_TOOTH_ITEM = f"{_TOOTH_TOKEN}(?:-{_TOOTH_TOKEN})?"
TOOTH_RE = f"^{_TOOTH_ITEM}(?:,{_TOOTH_ITEM})*$"
PROC_CANON_RE = r"^D[0-9]{4}$"
ZIP_CANON_RE = r"^[0-9]{5}(?:-[0-9]{4})?$"
STATE_RE = r"^[A-Za-z]{2}$"

_MOJI = re.compile(MOJIBAKE_RE)
_CTRL = re.compile(CTRL_RE + "+")
_MEMO_CTRL = re.compile(MEMO_CTRL_RE)
_EMAIL = re.compile(EMAIL_RE)
_EMAIL_SPLIT = re.compile(r"[;,\s]+")
_PHONE_CANON = re.compile(PHONE_CANON_RE)
_PHONE_CHARS = re.compile(r"[0-9 ().\-/+]+")
_NON_DIGIT = re.compile(r"[^0-9]")
_PLUS1 = re.compile(r"\+1[0-9 ().\-/]*")  # "+1 413 555 0142": NANP digits, no libphonenumber needed
_EXT = re.compile(r"(?i)[\s,;]*(?:x|ext\.?|extn\.?|extension|#)[\s.:]*[0-9]{1,6}$")
_NANP10 = re.compile(r"(?<![0-9])(?:\+?1[\s.-]*)?\(?([2-9][0-9]{2})\)?[\s.-]*([2-9][0-9]{2})[\s.-]*([0-9]{4})"
                     r"(?![0-9])")
_NANP7 = re.compile(r"(?<![0-9])([2-9][0-9]{2})[\s.-]?([0-9]{4})(?![0-9])")
_TOOTH = re.compile(TOOTH_RE)
_TOOTH_TOK = re.compile(_TOOTH_TOKEN)
_TOOTH_SPLIT = re.compile(r"[,;/\s]+")
_PROC = re.compile(r"D?([0-9]{1,4})(?:\.[0-9]{1,3})?")
_ZIP = re.compile(ZIP_CANON_RE)
_STATE = re.compile(STATE_RE)
_TOKENS = frozenset(NULL_TOKENS)

_STATE_NAMES = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA",
    "COLORADO": "CO", "CONNECTICUT": "CT", "DELAWARE": "DE", "DISTRICT OF COLUMBIA": "DC",
    "FLORIDA": "FL", "GEORGIA": "GA", "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL", "INDIANA": "IN",
    "IOWA": "IA", "KANSAS": "KS", "KENTUCKY": "KY", "LOUISIANA": "LA", "MAINE": "ME", "MARYLAND": "MD",
    "MASSACHUSETTS": "MA", "MICHIGAN": "MI", "MINNESOTA": "MN", "MISSISSIPPI": "MS", "MISSOURI": "MO",
    "MONTANA": "MT", "NEBRASKA": "NE", "NEVADA": "NV", "NEW HAMPSHIRE": "NH", "NEW JERSEY": "NJ",
    "NEW MEXICO": "NM", "NEW YORK": "NY", "NORTH CAROLINA": "NC", "NORTH DAKOTA": "ND", "OHIO": "OH",
    "OKLAHOMA": "OK", "OREGON": "OR", "PENNSYLVANIA": "PA", "RHODE ISLAND": "RI",
    "SOUTH CAROLINA": "SC", "SOUTH DAKOTA": "SD", "TENNESSEE": "TN", "TEXAS": "TX", "UTAH": "UT",
    "VERMONT": "VT", "VIRGINIA": "VA", "WASHINGTON": "WA", "WEST VIRGINIA": "WV", "WISCONSIN": "WI",
    "WYOMING": "WY", "PUERTO RICO": "PR", "GUAM": "GU", "VIRGIN ISLANDS": "VI",
}


# ---- str, memo, code, enum ----------------------------------------------------------------------
def _fix_mojibake(t: str) -> str:
    return ftfy.fix_encoding(t) if _MOJI.search(t) else t


def parse_str(s: str | None) -> Result:
    """Trimmed single-line text: mojibake repaired (ENC3), control characters -> one space (CSV4)."""
    c = clean_text(s)
    if c is None:
        return None, None, None
    code = None
    t = _fix_mojibake(c)
    if t != c:
        code = "ENC3"
    if _CTRL.search(t):
        t = _CTRL.sub(" ", t).strip(WS)
        code = code or "CSV4"
    if not t:
        return None, code, NULLED if code else None
    return t, code, REPAIRED if code else None


def clean_memo(s: str | None) -> Result:
    """Memo text: CRLF/CR -> LF, mojibake repaired (ENC3), control characters other than LF and
    TAB removed (CSV4); otherwise untouched (RTF/HTML kept, not trimmed). Blank -> None."""
    if s is None:
        return None, None, None
    stripped = s.strip(WS)
    if not stripped or stripped in _TOKENS:
        return None, None, None
    t = s.replace("\r\n", "\n").replace("\r", "\n") if "\r" in s else s
    code = None
    f = _fix_mojibake(t)
    if f != t:
        t, code = f, "ENC3"
    if _MEMO_CTRL.search(t):
        t = _MEMO_CTRL.sub("", t)
        code = code or "CSV4"
    if not t.strip(WS):
        return None, code, NULLED if code else None
    return t, code, REPAIRED if code else None


def parse_code(s: str | None) -> Result:
    """A code (provider, location, lookup ...): trimmed and upper-cased, no defect code."""
    c = clean_text(s)
    return (None if c is None else c.upper()), None, None


def parse_enum(s: str | None, values: tuple[str, ...] | frozenset[str]) -> Result:
    """An enum value: upper-cased; a value outside ``values`` -> None with code ENUM."""
    c = clean_text(s)
    if c is None:
        return None, None, None
    u = c.upper()
    return (u, None, None) if u in values else (None, "ENUM", NULLED)


# ---- phone ----------------------------------------------------------------------------------------
def _placeholder(d: str) -> bool:
    return len(d) >= 7 and (len(set(d)) == 1 or d in ("1234567890", "0123456789", "1234567"))


def _nanp(d: str, ctx: ParseContext) -> str | None:
    if len(d) == 11 and d[0] == "1":
        d = d[1:]
    if len(d) == 7:
        area = ctx.default_area_code
        if not area or len(area) != 3 or not area.isdigit():
            return None
        d = area + d
    if len(d) == 10 and d[0] in "23456789" and d[3] in "23456789":
        return "+1" + d
    return None


def _lib(t: str, ctx: ParseContext) -> str | None:
    try:
        n = phonenumbers.parse(t, ctx.phone_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(n):
        return None
    e164 = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
    if e164.startswith("+1") and _nanp(e164[2:], ctx) is None:
        return None
    return e164


def _phone_text(t: str, ctx: ParseContext) -> str | None:
    """The first phone number found inside free text (``call after 5 (413) 555-0142``)."""
    if ctx.phone_region in NANP_REGIONS:
        m = _NANP10.search(t)
        if m:
            return "+1" + "".join(m.groups())
        m = _NANP7.search(t)
        return _nanp("".join(m.groups()), ctx) if m else None
    for match in phonenumbers.PhoneNumberMatcher(t, ctx.phone_region):
        if phonenumbers.is_possible_number(match.number):
            return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _phone_canonical(c: str, ctx: ParseContext) -> bool:
    if ctx.phone_region in NANP_REGIONS:
        return _PHONE_CANON.fullmatch(c) is not None
    spec = PHONE_VECTOR.get(ctx.phone_region)
    return spec is not None and re.fullmatch(spec[2][1:-1], c) is not None


def parse_phone(s: str | None, ctx: ParseContext) -> Result:
    """A phone number in E.164 (``+14135550142``); extensions and notes are dropped.

    ``(413) 555-0142`` is canonical; other recovered layouts -> PH1 repaired; 7 digits use
    ``ctx.default_area_code``; placeholders (all digits the same ...) -> None, PH2; nothing usable
    -> None, PH1 nulled.

    Examples:
        >>> parse_phone("413.555.0187", ParseContext())
        ('+14135550187', 'PH1', 'repaired')
    """
    c = clean_text(s)
    if c is None:
        return None, None, None
    t = _EXT.sub("", c)
    e164: str | None
    if t and _PHONE_CHARS.fullmatch(t):
        d = _NON_DIGIT.sub("", t)
        if _placeholder(d):
            return None, "PH2", REPAIRED
        nanp = ctx.phone_region in NANP_REGIONS
        if "+" in t and not (nanp and _PLUS1.fullmatch(t)):
            e164 = _lib(t, ctx)
        elif nanp:
            e164 = _nanp(d, ctx)
        else:
            e164 = _lib(d, ctx)
    else:
        e164 = _phone_text(t or c, ctx)
        if e164 is not None and _placeholder(e164.lstrip("+")[-10:]):
            return None, "PH2", REPAIRED
    if e164 is None:
        return None, "PH1", NULLED
    if t == c and _phone_canonical(c, ctx):
        return e164, None, None
    return e164, "PH1", REPAIRED


# ---- email ----------------------------------------------------------------------------------------
def _email_ok(tok: str) -> str | None:
    if len(tok) <= 254 and _EMAIL.fullmatch(tok):
        return tok
    try:
        return validate_email(tok, check_deliverability=False).normalized.lower()
    except (EmailNotValidError, ValueError, UnicodeError):
        return None


def parse_email(s: str | None) -> Result:
    """One lower-cased valid address: the first valid one of a list (EM2 repaired); none -> EM2 nulled.

    Examples:
        >>> parse_email("pepe@example.com; garcia.fam@example.com")
        ('pepe@example.com', 'EM2', 'repaired')
    """
    c = clean_text(s)
    if c is None:
        return None, None, None
    low = c.lower()
    if len(low) <= 254 and _EMAIL.fullmatch(low):
        return low, None, None
    toks = [t.strip("<>\"'()[]").removeprefix("mailto:") for t in _EMAIL_SPLIT.split(low)]
    toks = [t for t in toks if t]
    for tok in toks:
        v = _email_ok(tok)
        if v is not None:
            code = "EM2" if len(toks) > 1 or tok != low else None
            return v, code, REPAIRED if code else None
    return None, "EM2", NULLED


# ---- zip, state -------------------------------------------------------------------------------------
def parse_zip(s: str | None) -> Result:
    """``NNNNN`` or ``NNNNN-NNNN``; lost leading zeros and a missing dash repaired (ZIP1); anything
    else kept upper-cased and flagged (FMT)."""
    c = clean_text(s)
    if c is None:
        return None, None, None
    if _ZIP.fullmatch(c):
        return c, None, None
    d = re.sub(r"[\s-]", "", c)
    if d.isascii() and d.isdigit():
        if len(d) in (3, 4, 5):
            return d.zfill(5), "ZIP1", REPAIRED
        if len(d) in (7, 8, 9):
            d = d.zfill(9)
            return f"{d[:5]}-{d[5:]}", "ZIP1", REPAIRED
    return c.upper(), "FMT", FLAGGED


def parse_state(s: str | None) -> Result:
    """Two upper-case letters; a full state name -> its code (FMT repaired); else kept, FMT flagged."""
    c = clean_text(s)
    if c is None:
        return None, None, None
    if _STATE.fullmatch(c):
        return c.upper(), None, None
    u = " ".join(c.upper().replace(".", " ").split())
    if u in _STATE_NAMES:
        return _STATE_NAMES[u], "FMT", REPAIRED
    return c.upper(), "FMT", FLAGGED


# ---- procedure codes, teeth -------------------------------------------------------------------------
def parse_proc_code(s: str | None, *, cdt: bool = True) -> Result:
    """A procedure code: ``D0120``; ``0120``/``120``/``D120`` -> ``D0120`` and ``2750.01`` -> ``D2750``
    (CD1 repaired); custom codes (``BROKEN``, ``NC``, ``X1234``) upper-cased. ``cdt=False`` (local
    code sets) only upper-cases.

    Examples:
        >>> parse_proc_code("2750.01")
        ('D2750', 'CD1', 'repaired')
    """
    c = clean_text(s)
    if c is None:
        return None, None, None
    u = c.upper()
    if not cdt:
        return u, None, None
    m = _PROC.fullmatch(u)
    if m:
        v = "D" + m.group(1).zfill(4)
        return (v, None, None) if v == u else (v, "CD1", REPAIRED)
    return u, None, None


def _tooth_token(tok: str) -> str | None:
    if tok.isdigit():
        tok = tok.lstrip("0") or "0"
    return tok if _TOOTH_TOK.fullmatch(tok) else None


def parse_tooth(s: str | None) -> Result:
    """A tooth, list or range: ``3``, ``3,14``, ``3-5``, ``A``, ``AS``, ``UR``, ``U``.

    ``#3`` -> ``3``, ``a`` -> ``A``, ``#3 #14`` -> ``3,14`` (TH1 repaired); values that are not
    Universal numbers (``33``, FDI ``36``) are kept upper-cased and flagged (TH1).
    """
    c = clean_text(s)
    if c is None:
        return None, None, None
    if _TOOTH.fullmatch(c):
        return c, None, None
    u = c.upper()
    t = re.sub(r"\s*-\s*", "-", u.replace("#", " ")).strip(WS + ",;/")
    items: list[str] = []
    for part in (p for p in _TOOTH_SPLIT.split(t) if p):
        ends = [_tooth_token(x) for x in part.split("-")]
        if not 1 <= len(ends) <= 2 or any(e is None for e in ends):
            return u, "TH1", FLAGGED
        items.append("-".join(e for e in ends if e is not None))
    if not items:
        return u, "TH1", FLAGGED
    return ",".join(items), "TH1", REPAIRED
