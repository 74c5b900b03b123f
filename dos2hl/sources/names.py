"""Person-name clean-up shared by the reader and the generator (NM1, NM2)."""

from __future__ import annotations

import re

__all__ = ["SUFFIXES", "title_case_name", "split_suffix", "split_nickname"]

SUFFIXES = ("JR", "SR", "II", "III", "IV", "V", "MD", "DDS", "PHD")
_SUFFIX_RE = re.compile(r"^(?P<name>.+?)[\s,]+(?P<suffix>JR|SR|II|III|IV|V|MD|DDS|PHD)\.?$", re.IGNORECASE)
_NICK_RE = re.compile(r"^(?P<name>[^\"'(]+?)\s*[\"'(](?P<nick>[^\"')]+)[\"')]\s*$")
_WORD_RE = re.compile(r"[A-Za-z\u00C0-\u024F]+")


def _cap(word: str) -> str:
    w = word.lower()
    if len(w) > 2 and w.startswith("mc"):
        return "Mc" + w[2:].capitalize()
    return w.capitalize()


def title_case_name(value: str) -> str:
    """Title-case an ALL-CAPS name; mixed-case input is returned unchanged.

    Examples:
        >>> title_case_name("GARCIA")
        'Garcia'
        >>> title_case_name("O'BRIEN-SMITH")
        "O'Brien-Smith"
        >>> title_case_name("McDonald")
        'McDonald'
    """
    if value != value.upper() or not any(c.isalpha() for c in value):
        return value
    return _WORD_RE.sub(lambda m: _cap(m.group(0)), value)


def split_suffix(lname: str) -> tuple[str, str | None]:
    """``"GARCIA JR"`` -> ``("GARCIA", "JR")``; names without a suffix come back unchanged."""
    m = _SUFFIX_RE.match(lname.strip())
    if not m:
        return lname, None
    return m.group("name").strip(), m.group("suffix").upper()


def split_nickname(fname: str) -> tuple[str, str | None]:
    """``'ROBERT "BOB"'`` -> ``("ROBERT", "BOB")``; names without a nickname come back unchanged."""
    m = _NICK_RE.match(fname.strip())
    if not m:
        return fname, None
    return m.group("name").strip(), m.group("nick").strip()
