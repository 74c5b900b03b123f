"""Clinical note text (Dent-O-Soft CLINNOTE.NOTE_TEXT) -> readable plain text + inline images, and
revision chains (AMENDS_NOTE_ID) -> one composed record per chain.

Pure: no I/O, no logging. Nothing here ever puts note content into an exception or an ``error`` string.

Why these libraries
    RTF and HTML are converted by libraries, not by regular expressions: ``striprtf`` is a small,
    dependency-free RTF reader that honours ``\\ansicpgNNNN`` / ``\\'xx`` escapes, ``\\uN?`` unicode
    with ``\\ucN`` skipping, ``\\par``/``\\line``/``\\tab`` and ignorable destinations (font table,
    ``{\\*\\...}``); ``inscriptis`` renders HTML the way a browser lays out text (block elements,
    ``<br>``, lists, tables) instead of just deleting tags. Both are pure Python (inscriptis on lxml).

How images are found
    Neither library returns pictures, so they are cut out *before* conversion and replaced by a
    private-use sentinel that survives conversion and is then turned into ``[image N]``:

    * RTF: a small brace-aware scanner (it honours ``\\{``, ``\\}``, ``\\\\`` and ``\\binN`` raw data)
      finds ``{\\pict ...}`` groups, ``{\\*\\shppict {\\pict ...}}`` and the ``{\\nonshppict ...}``
      fallback Word writes right after a ``shppict`` (that duplicate is dropped, so one picture counts
      once). Inside the ``\\pict`` group the blip word gives the type (``\\pngblip``, ``\\jpegblip``,
      ``\\emfblip``, ``\\wmetafileN``, ``\\dibitmapN``...), nested groups (``\\*\\blipuid``,
      ``\\*\\picprop``) are skipped, and the remaining characters are the hex data (whitespace allowed).
      DIB data gets a BITMAPFILEHEADER so the stored file is a valid ``.bmp``.
    * HTML: a small tag scanner finds ``<img ...>`` (quoted attributes may contain ``>``; an
      unterminated tag runs to the end of the text). ``data:`` URIs are decoded (base64 strictly, else
      percent-encoding); any other ``src`` is reported as an image with ``data=None`` and the
      placeholder ``[image N: external reference not migrated]``.

    Broken input never raises: an undecodable picture becomes an :class:`InlineImage` with
    ``data=None`` and a fixed ``error`` text, and a library failure falls back to a crude strip.

Format detection
    The declared NOTE_FMT is often absent or wrong, so content wins: ``{\\rtf`` at the start is RTF,
    recognisable HTML tags are HTML, otherwise TXT. The declared format only decides borderline
    content (RTF control words without the header, HTML entities without tags).

Revision chains
    ``revision_chains`` follows AMENDS_NOTE_ID to the root; a parent that is not among the rows makes
    the row a root of its own chain; cycles are broken at their lowest note_id. ``compose`` renders the
    latest revision followed by an "Amendment history" section and renumbers the images of all
    revisions in the order they appear in the composed text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._common import _CONTROL, _PLACEHOLDER, _S_CLOSE, _S_OPEN, InlineImage, _place, _tidy
from ._html import _from_html
from ._rtf import _from_rtf

__all__ = ["InlineImage", "Converted", "Chain", "detect_format", "to_text", "revision_chains", "compose"]


# ---------------------------------------------------------------------------------------------------
# data model (InlineImage lives in ._richcommon, shared with the format modules; re-exported here)


@dataclass(frozen=True)
class Converted:
    """A note as readable text; each image's place holds ``[image N]``."""

    text: str
    fmt: str  # the format actually used: "TXT" | "RTF" | "HTML"
    images: tuple[InlineImage, ...]
    plain_fallback: bool = False  # the library lost text (HTML nested too deep...): kept as a plain tag strip


@dataclass(frozen=True)
class Chain:
    """All revisions of one note."""

    head_id: int  # the latest revision's note_id (the record that represents the chain)
    root_id: int  # the original note's note_id
    ids: tuple[int, ...]  # every note_id of the chain, oldest first
    latest: dict[str, Any]  # the latest revision's row
    history: tuple[dict[str, Any], ...]  # earlier revisions' rows, oldest first
    voided: bool  # the latest revision is void


# ---------------------------------------------------------------------------------------------------
# format detection

_RTF_HEAD = re.compile(r"^[\ufeff\s]*\{\\rtf", re.IGNORECASE)
_RTF_WORD = re.compile(r"\\(?:[a-z]{1,32}(?:-?\d{1,10})?(?![a-z])|'[0-9a-f]{2})", re.IGNORECASE)
_HTML_BLOCK = (
    "html|head|body|p|br|div|span|img|table|thead|tbody|tr|td|th|ul|ol|li|dl|dt|dd|h[1-6]|hr|pre|"
    "blockquote|font|center|section|article|header|footer|style|meta|title"
)
_HTML_TAG = re.compile(
    rf"<!doctype\s+html|<(?:{_HTML_BLOCK})(?:\s[^<>]*)?/?>|</(?:{_HTML_BLOCK}|a|b|i|u|s|em|strong|small|"
    r"big|sub|sup|code|mark)\s*>",
    re.IGNORECASE,
)
_HTML_ENTITY = re.compile(r"&(?:[a-z][a-z0-9]{1,31}|#\d{1,7}|#x[0-9a-f]{1,6});", re.IGNORECASE)


def detect_format(text: str, declared: str | None) -> str:
    """``"RTF"``, ``"HTML"`` or ``"TXT"``: what the content is, whatever NOTE_FMT says.

    The declared format only settles content that is ambiguous on its own: RTF control words without
    the ``{\\rtf`` header (declared RTF) and HTML entities without any tag (declared HTML).
    """
    if not text:
        return "TXT"
    d = (declared or "").strip().upper()
    if _RTF_HEAD.match(text):
        return "RTF"
    if _HTML_TAG.search(text):
        return "HTML"
    if d == "RTF" and _RTF_WORD.search(text):
        return "RTF"
    if d in ("HTML", "HTM") and _HTML_ENTITY.search(text):
        return "HTML"
    return "TXT"


# ---------------------------------------------------------------------------------------------------
# conversion


def _convert(text: str | None, declared: str | None, first: int) -> Converted:
    if not text:
        return Converted("", "TXT", ())
    text = text.replace(_S_OPEN, "").replace(_S_CLOSE, "")
    fmt = detect_format(text, declared)
    if fmt == "TXT":
        return Converted(_tidy(text, collapse=False), "TXT", ())
    text = _CONTROL.sub("", text)  # NUL & co. break lxml and mean nothing in RTF/HTML
    fallback = False
    if fmt == "RTF":
        out, images = _from_rtf(text, first)
        labels = {im.index: f"[image {im.index}]" for im in images}
    else:
        out, images, labels, fallback = _from_html(text, first)
    out = _CONTROL.sub("", out.replace("\r\n", "\n").replace("\r", "\n"))
    return Converted(_tidy(_place(out, labels), collapse=True), fmt, tuple(images), fallback)


def to_text(text: str | None, declared: str | None = None) -> Converted:
    """Readable text of a note plus its inline images; ``None``/``""`` -> ``Converted("", "TXT", ())``.

    Examples:
        >>> to_text(r"{\\rtf1\\ansi\\ansicpg1252 Caf\\'e9\\par ok}").text
        'Café\\nok'
    """
    return _convert(text, declared, 1)


# ---------------------------------------------------------------------------------------------------
# revision chains

_MIN = dt.datetime.min


def _stamp(row: dict[str, Any]) -> dt.datetime | None:
    """When the revision was made: the later of created_dt/modified_dt, else note_dt + note_tm."""
    vals = [v for v in (row.get("created_dt"), row.get("modified_dt")) if isinstance(v, dt.datetime)]
    if vals:
        return max(v.replace(tzinfo=None) for v in vals)
    d = row.get("note_dt")
    if isinstance(d, dt.date):
        t = row.get("note_tm")
        return dt.datetime.combine(d, t if isinstance(t, dt.time) else dt.time()).replace(tzinfo=None)
    return None


def _when(row: dict[str, Any]) -> dt.datetime | None:
    """The revision's timestamp shown in the history: created_dt, note date/time, modified_dt."""
    c = row.get("created_dt")
    if isinstance(c, dt.datetime):
        return c
    d = row.get("note_dt")
    if isinstance(d, dt.date):
        t = row.get("note_tm")
        return dt.datetime.combine(d, t if isinstance(t, dt.time) else dt.time())
    m = row.get("modified_dt")
    return m if isinstance(m, dt.datetime) else None


def _id(row: dict[str, Any]) -> int:
    return int(row["note_id"])


def revision_chains(rows: list[dict[str, Any]]) -> list[Chain]:
    """Group note rows into revision chains by following ``amends_note_id`` to the root.

    * The latest revision is one that no other row amends; among several (a fork) the one with the
      latest created_dt/modified_dt, then the highest note_id. Every other row is history, oldest first
      (timestamp, then depth in the chain, then note_id).
    * A row whose parent is not among ``rows`` is the root of its own chain (``root_id`` == its id).
    * A cycle is broken at its lowest note_id, which becomes the root.
    * Every row is in exactly one chain; chains come sorted by root_id. Rows sharing a note_id
      (duplicates) share a chain.
    """
    n = len(rows)
    by_id: dict[int, int] = {}
    for i, r in enumerate(rows):
        by_id.setdefault(_id(r), i)
    parent: list[int | None] = []
    for r in rows:
        a = r.get("amends_note_id")
        p = by_id.get(int(a)) if a is not None else None
        parent.append(p)
    for i, r in enumerate(rows):  # duplicates of a note_id hang under its first row
        first = by_id[_id(r)]
        if first != i:
            parent[i] = first
    # break cycles (deterministically at the lowest note_id, then the lowest row index)
    state = [0] * n  # 0 unvisited, 1 on the current path, 2 done
    for s in range(n):
        path: list[int] = []
        at: int | None = s
        while at is not None and state[at] == 0:
            state[at] = 1
            path.append(at)
            at = parent[at]
        if at is not None and state[at] == 1:  # a cycle: path[path.index(at):]
            cycle = path[path.index(at):]
            cut = min(cycle, key=lambda k: (_id(rows[k]), k))
            parent[cut] = None
        for k in path:
            state[k] = 2
    # roots and depths (now a forest)
    root: list[int] = [-1] * n
    depth: list[int] = [0] * n
    for s in range(n):
        path = []
        i = s
        while root[i] < 0 and (up := parent[i]) is not None:
            path.append(i)
            i = up
        if root[i] < 0:
            root[i], depth[i] = i, 0
        for k in reversed(path):
            p = parent[k]
            assert p is not None
            root[k], depth[k] = root[p], depth[p] + 1
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root[i], []).append(i)
    has_child = {p for p in parent if p is not None}
    chains: list[Chain] = []
    for top, idx in members.items():
        leaves = [i for i in idx if i not in has_child] or idx

        def latest_key(i: int) -> tuple[bool, dt.datetime, int, int]:
            st = _stamp(rows[i])
            return (st is not None, st or _MIN, _id(rows[i]), i)

        head = max(leaves, key=latest_key)
        rest = sorted((i for i in idx if i != head),
                      key=lambda i: (_stamp(rows[i]) or _MIN, depth[i], _id(rows[i]), i))
        latest = rows[head]
        chains.append(Chain(
            head_id=_id(latest),
            root_id=_id(rows[top]),
            ids=tuple(_id(rows[i]) for i in rest) + (_id(latest),),
            latest=latest,
            history=tuple(rows[i] for i in rest),
            voided=bool(latest.get("void_flg")),
        ))
    chains.sort(key=lambda c: (c.root_id, c.head_id))
    return chains


def _renumber(conv: Converted, offset: int) -> Converted:
    """Shift a converted note's image numbers (text placeholders and indices) by ``offset``."""
    if not offset or not conv.images:
        return conv
    k = len(conv.images)

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"[image {n + offset}{m.group(2) or ''}]" if 1 <= n <= k else m.group(0)

    images = tuple(dataclasses.replace(im, index=im.index + offset) for im in conv.images)
    return Converted(_PLACEHOLDER.sub(sub, conv.text), conv.fmt, images, conv.plain_fallback)


def _wall(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M")


def compose(chain: Chain, convert: Callable[..., Converted] = to_text, *,
            stamp: Callable[[dt.datetime], str] = _wall,
            fallbacks: list[int] | None = None) -> tuple[str, tuple[InlineImage, ...]]:
    """The text stored in HighLevel for a chain, and the images of all its revisions.

    The latest revision's text, then (when there are earlier revisions) an "Amendment history"
    section with each earlier revision, oldest first, as ``<YYYY-MM-DD HH:MM> (note <id>):`` and its
    text; ``stamp`` writes a revision's wall time (the planner's places it in the zone of the office
    where the note was written: ``2024-03-10 09:30 MDT (-06:00)``). Images are numbered 1..n in the
    order they appear in the composed text. ``fallbacks`` (when given) receives the note id of every
    revision kept as plain text because the converter lost text (:attr:`Converted.plain_fallback`).
    """
    images: list[InlineImage] = []

    def conv(row: dict[str, Any]) -> Converted:
        offset = len(images)
        if convert is to_text:  # number directly: a literal "[image 1]" in a note stays as typed
            c = _convert(row.get("note_text"), row.get("note_fmt"), offset + 1)
        else:
            c = _renumber(convert(row.get("note_text"), row.get("note_fmt")), offset)
        images.extend(c.images)
        if c.plain_fallback and fallbacks is not None:
            fallbacks.append(_id(row))
        return c

    parts = [conv(chain.latest).text]
    if chain.history:
        entries = []
        for row in chain.history:
            w = _when(row)
            when = stamp(w.replace(tzinfo=None)) if w else "date unknown"
            text = conv(row).text
            entries.append(f"{when} (note {_id(row)}):\n{text}" if text else f"{when} (note {_id(row)}):")
        parts.append("Amendment history\n" + "\n\n".join(entries))
    body = "\n\n".join(p for p in parts if p)
    return body, tuple(images)
