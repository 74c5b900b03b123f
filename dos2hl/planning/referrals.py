"""Referral sources (many:1): a patient's incoming referral -> two tags and one pick-list value.

Tags: ``referral: <kind>`` (doctor, patient, marketing, other) and, for a marketing channel, the
channel (``referral: google``), the same lower-case names ``provision`` creates. The pick-list
``contact.referral_source`` holds one canonical value: the practice's marketing channel names (REFSRC
rows of kind MKT) plus "Doctor referral", "Patient referral" and "Other".

Free text typed at the front desk ("google", "Googled", "GOOGLE MAPS") is normalised to one canonical
channel: a keyword table for the channels dental practices use, then a close match on the practice's
own channel names (difflib), else "Other". The report shows, per canonical channel, how many rows
were typed as free text and how many distinct spellings they had; text that matched nothing is
only counted. A typed text itself is never reported (nor kept in a shard's result): free text can
name a person ("Googled by my neighbour Jane" matches Google and still names Jane).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FIXED_SOURCES", "Referrals", "referral_options"]

FIXED_SOURCES = {"DOC": "Doctor referral", "PAT": "Patient referral", "OTH": "Other"}
KIND_TAG = {"DOC": "doctor", "PAT": "patient", "MKT": "marketing", "OTH": "other"}
# keyword -> a word of the canonical channel it means (matched against the practice's own names)
_KEYWORDS = {
    "google": "google", "googled": "google", "internet": "google", "search": "google", "web": "google",
    "facebook": "facebook", "fb": "facebook", "instagram": "instagram", "insta": "instagram",
    "ig": "instagram",
    "yelp": "yelp", "drive": "drive", "drove": "drive", "sign": "sign", "walk": "drive",
    "postcard": "mailer", "mailer": "mailer", "flyer": "mailer", "mail": "mailer",
    "insurance": "insurance", "ins": "insurance", "delta": "insurance", "directory": "insurance",
}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def referral_options(sources: Iterable[Mapping[str, Any]]) -> list[str]:
    """The pick-list's options: the practice's marketing channels, then the fixed values."""
    names = [str(r["name"]).strip() for r in sources if str(r.get("ref_kind") or "").upper() == "MKT"
             and r.get("name")]
    return list(dict.fromkeys([*sorted(set(names), key=str.lower), *FIXED_SOURCES.values()]))


@dataclass
class Referrals:
    """Built once per location from REFSRC; ``resolve`` is called per incoming PATREF row."""

    sources: Mapping[Any, Mapping[str, Any]]  # ref_id -> REFSRC row
    channels: list[str] = field(default_factory=list)
    variants: Counter[tuple[str, str]] = field(default_factory=Counter)  # (variant, canonical) -> rows
    unresolved: int = 0

    def __post_init__(self) -> None:
        self.channels = [o for o in referral_options(self.sources.values())
                         if o not in FIXED_SOURCES.values()]

    def normalise(self, text: str) -> str:
        """Free text -> a canonical channel of this practice, or "Other"."""
        words = _words(text)
        low = {c.lower(): c for c in self.channels}
        joined = " ".join(words)
        if joined in {" ".join(_words(c)) for c in self.channels}:
            return next(c for c in self.channels if " ".join(_words(c)) == joined)
        for w in words:
            hint = _KEYWORDS.get(w)
            if hint:
                for c in self.channels:
                    if hint in _words(c):
                        return c
        close = difflib.get_close_matches(joined, list(low), n=1, cutoff=0.75)
        return low[close[0]] if close else "Other"

    def resolve(self, row: Mapping[str, Any]) -> tuple[list[str], str]:
        """(tags, pick-list value) of one incoming referral row."""
        src = self.sources.get(row.get("ref_id")) if row.get("ref_id") is not None else None
        if src is not None:
            kind = str(src.get("ref_kind") or "OTH").upper()
            if kind == "MKT" and src.get("name"):
                name = str(src["name"]).strip()
                return [f"referral: {KIND_TAG['MKT']}", f"referral: {name.lower()}"], name
            return [f"referral: {KIND_TAG.get(kind, 'other')}"], FIXED_SOURCES.get(kind, "Other")
        text = str(row.get("source_text") or "").strip()
        if not text:
            return ["referral: other"], "Other"
        canonical = self.normalise(text)
        if canonical == "Other" and " ".join(_words(text)) != "other":
            self.unresolved += 1
            return ["referral: other"], "Other"
        self.variants[(" ".join(_words(text)), canonical)] += 1
        return [f"referral: {KIND_TAG['MKT']}", f"referral: {canonical.lower()}"], canonical

    def table(self) -> dict[str, Any]:
        """The report's table: per canonical channel, free-text rows and distinct spellings (counts
        only, never the text); and the unresolved count."""
        rows: Counter[str] = Counter()
        spellings: Counter[str] = Counter()
        for (_variant, canonical), n in self.variants.items():
            rows[canonical] += n
            spellings[canonical] += 1
        return {"channels": [{"canonical": c, "rows": n, "spellings": spellings[c]}
                             for c, n in sorted(rows.items())],
                "unresolved_free_text": self.unresolved}
