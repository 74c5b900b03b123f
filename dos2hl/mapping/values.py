"""Value profiles: what a sample of a column's values looks like (emails, phones, dates, money, flags,
codes, enum values), and how well that fits a canonical column's kind. The sample stays in memory;
only shares (percentages) leave this module, never a value."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..model import Column

__all__ = ["KIND_WORDS", "ValueProfile", "kind_fit", "profile_values"]

_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC "
    "ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU".split())
_DATE = r"(\d{1,2}/\d{1,2}/(\d{2}|\d{4})|\d{4}-\d{2}-\d{2})"
_RX = {
    "email": re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[A-Za-z]{2,}([;, ]+[^@\s;,]+@[^@\s;,]+\.[A-Za-z]{2,})*$"),
    "phone": re.compile(r"^\+?1?[\s.\-]?\(?\d{3}\)?[\s.\-]?\d{3}[\s.\-]?\d{4}$"),
    "date": re.compile(rf"^{_DATE}$"),
    "datetime": re.compile(rf"^{_DATE}[ T]\d{{1,2}}:\d{{2}}(:\d{{2}})?\s*([AaPp][Mm])?$"),
    "time": re.compile(r"^\d{1,2}:\d{2}(:\d{2})?\s*([AaPp][Mm]?)?$"),
    "money": re.compile(r"^[-(]?\$?-?(\d{1,3}(,\d{3})+|\d+)\.\d{2}\)?-?$"),
    "int": re.compile(r"^-?\d+$"),
    "bool": re.compile(r"^(Y|N|T|F|YES|NO|TRUE|FALSE|X)$", re.I),
    "zip": re.compile(r"^\d{5}(-\d{4})?$"),
    "code": re.compile(r"^[A-Z0-9][A-Z0-9+\-]{0,7}$"),
}


@dataclass(frozen=True)
class ValueProfile:
    """Shares of the non-blank sample cells that look like each kind (no value is kept)."""

    n: int  # non-blank cells profiled
    blank: float  # share of blank cells
    shares: Mapping[str, float]  # email, phone, date, datetime, time, money, int, bool, zip, state, code
    upper: frozenset[str]  # distinct upper-cased short cells, to test enum membership (in memory only)
    mean_len: float
    text: float  # share of cells with a space and letters (names, free text)

    def share(self, kind: str) -> float:
        return self.shares.get(kind, 0.0)


def profile_values(values: Sequence[str]) -> ValueProfile:
    """Profile a sample of one column's cells: what share looks like each kind."""
    cells = [v.strip() for v in values if v is not None]
    nonblank = [v for v in cells if v and v.upper() not in ("NULL", "(NULL)", "N/A")]
    n = len(nonblank)
    shares: dict[str, float] = {}
    if n:
        for kind, rx in _RX.items():
            shares[kind] = sum(1 for v in nonblank if rx.match(v)) / n
        shares["state"] = sum(1 for v in nonblank if v.upper() in _STATES and len(v) == 2) / n
        shares["bool01"] = sum(1 for v in nonblank if v in ("0", "1", "-1")) / n
    upper = frozenset(v.upper() for v in nonblank if len(v) <= 8)
    mean_len = sum(len(v) for v in nonblank) / n if n else 0.0
    text = sum(1 for v in nonblank if " " in v and any(c.isalpha() for c in v)) / n if n else 0.0
    return ValueProfile(n, 1 - n / len(cells) if cells else 1.0, shares, upper, mean_len, text)


def _enum_share(p: ValueProfile, col: Column) -> float:
    if not p.upper:
        return 0.0
    allowed = set(col.values)
    return len(p.upper & allowed) / len(p.upper)


_SPECIFIC = ("email", "phone", "date", "datetime", "time", "money")


def kind_fit(p: ValueProfile, col: Column) -> float | None:
    """How well the sample fits the canonical column's kind, in [0, 1]; None when nothing to judge."""
    if p.n == 0:
        return None
    s = p.share
    k = col.kind
    special = max(s(x) for x in _SPECIFIC)
    if k == "email":
        return s("email")
    if k == "phone":
        return s("phone")
    if k in ("date", "dob"):
        return s("date")
    if k == "datetime":
        return max(s("datetime"), 0.6 * s("date"))
    if k == "time":
        return s("time")
    if k == "money":
        return max(s("money"), 0.6 * s("int"))
    if k == "bool":
        return max(s("bool"), 0.8 * s("bool01"))
    if k == "enum":
        return _enum_share(p, col)
    if k == "int":
        return s("int") * (1 - 0.5 * s("phone"))
    if k in ("code", "lookup"):
        return 0.3 + 0.7 * s("code") - 0.5 * special
    if k == "zip":
        return s("zip")
    if k == "state":
        return s("state")
    # free text is the catch-all kind (NPIs look like phones, typed dates sit in memo fields): mild only
    if k == "memo":
        return max(0.6, 0.6 + 0.4 * min(p.mean_len / 40, 1.0) - 0.3 * special)
    return max(0.6, 0.8 - 0.2 * special + 0.2 * p.text)  # str


KIND_WORDS = {"dob": "dates", "date": "dates", "datetime": "date-times", "time": "times", "money": "amounts",
               "bool": "yes/no flags", "enum": "values of the column's enum", "lookup": "short codes",
               "code": "short codes", "int": "integers", "email": "e-mail addresses",
               "phone": "phone numbers",
               "zip": "ZIP codes", "state": "state codes", "memo": "free text", "str": "text"}
