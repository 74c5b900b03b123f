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

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import html as htmllib
import mimetypes
import re
import struct
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["InlineImage", "Converted", "Chain", "detect_format", "to_text", "revision_chains", "compose"]


# ---------------------------------------------------------------------------------------------------
# data model


@dataclass(frozen=True)
class InlineImage:
    """One picture embedded in a note."""

    index: int  # 1-based position in the note
    mime: str  # image/png, image/jpeg, image/x-wmf, ...; application/octet-stream if unknown
    ext: str  # png, jpg, wmf, emf, bmp, bin
    data: bytes | None  # None when the image could not be decoded
    error: str = ""  # why data is None; a fixed text, never a note value

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else None


@dataclass(frozen=True)
class Converted:
    """A note as readable text; each image's place holds ``[image N]``."""

    text: str
    fmt: str  # the format actually used: "TXT" | "RTF" | "HTML"
    images: tuple[InlineImage, ...]


@dataclass(frozen=True)
class Chain:
    """All revisions of one note."""

    head_id: int  # the latest revision's note_id (the record that represents the chain)
    root_id: int  # the original note's note_id
    ids: tuple[int, ...]  # every note_id of the chain, oldest first
    latest: dict  # the latest revision's row
    history: tuple[dict, ...]  # earlier revisions' rows, oldest first
    voided: bool  # the latest revision is void


# ---------------------------------------------------------------------------------------------------
# helpers shared by the formats

_S_OPEN, _S_CLOSE = "\ue000", "\ue001"  # private-use sentinels around an image number
_SENTINEL = re.compile(f"{_S_OPEN}(\\d+){_S_CLOSE}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EXTERNAL = ": external reference not migrated"
_PLACEHOLDER = re.compile(r"\[image (\d+)(" + re.escape(_EXTERNAL) + r")?\]")

_MIME_EXT = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/x-bmp": "bmp",
    "image/x-ms-bmp": "bmp",
    "image/tiff": "tif",
    "image/webp": "webp",
    "image/svg+xml": "svg",
    "image/x-wmf": "wmf",
    "image/wmf": "wmf",
    "image/x-emf": "emf",
    "image/emf": "emf",
    "image/x-pict": "pict",
}
_OCTET = "application/octet-stream"


def _ext(mime: str) -> str:
    return _MIME_EXT.get(mime, "bin")


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith(b"BM") and len(data) > 14:
        return "image/bmp"
    return None


def _tidy(text: str, *, collapse: bool) -> str:
    """LF line ends, no trailing whitespace per line, at most 2 consecutive blank lines (``collapse``)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    if collapse:
        text = re.sub(r"\n{4,}", "\n\n\n", text)
        return text.strip("\n")
    return text.rstrip("\n")


def _place(text: str, labels: dict[int, str]) -> str:
    """Replace the sentinels by the labels (a space keeps a label off adjacent words); add lost ones."""
    seen: set[int] = set()

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n in seen or n not in labels:
            return ""
        seen.add(n)
        before = text[m.start() - 1] if m.start() > 0 else " "
        after = text[m.end()] if m.end() < len(text) else " "
        lead = "" if before.isspace() or before in "([" else " "
        tail = "" if after.isspace() or after in ".,;:)]" or after == _S_OPEN else " "
        return lead + labels[n] + tail

    out = _SENTINEL.sub(sub, text)
    out = out.replace(_S_OPEN, "").replace(_S_CLOSE, "")
    missing = [labels[n] for n in sorted(labels) if n not in seen]  # e.g. inside an ignorable RTF group
    if missing:
        out = out.rstrip() + ("\n" if out.strip() else "") + "\n".join(missing)
    return out


def _mark(n: int) -> str:
    return f"{_S_OPEN}{n}{_S_CLOSE}"


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
# RTF

_WORD_AT = re.compile(r"\\([a-zA-Z]{1,32})(-?\d{1,10})?[ ]?")
_SPECIAL = re.compile(r"[\\{}]")
_PICT_GROUP = re.compile(r"\{\s*(?:\\\*\s*)?\\(pict|shppict|nonshppict)(?![a-zA-Z])")
_INNER_PICT = re.compile(r"\{\s*\\pict(?![a-zA-Z])")
_BLIP_MIME = {
    "pngblip": "image/png",
    "jpegblip": "image/jpeg",
    "emfblip": "image/x-emf",
    "wmetafile": "image/x-wmf",
    "dibitmap": "image/bmp",
    "macpict": "image/x-pict",
}


def _group_end(s: str, start: int) -> int | None:
    """Index just past the ``}`` closing the group opened at ``s[start] == "{"``; None if unterminated."""
    depth, i, n = 0, start, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            m = _WORD_AT.match(s, i)
            if m and m.group(1) == "bin" and m.group(2):
                i = m.end() + max(int(m.group(2)), 0)
                continue
            i = m.end() if m else i + 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        else:  # plain text or hex data: jump to the next brace or backslash
            m = _SPECIAL.search(s, i)
            i = m.start() if m else n
            continue
        i += 1
    return None


def _group_kind(s: str, start: int) -> str | None:
    """``pict``/``shppict``/``nonshppict`` when the group at ``start`` is one of those, else None."""
    m = _PICT_GROUP.match(s, start)
    return m.group(1) if m else None


def _bmp_file(dib: bytes) -> bytes:
    """A DIB (``\\dibitmap``) as a ``.bmp`` file: prepend the 14-byte BITMAPFILEHEADER."""
    if len(dib) < 16:
        raise ValueError("short DIB")
    hsize = struct.unpack_from("<I", dib, 0)[0]
    bits = struct.unpack_from("<H", dib, 14)[0]
    colors = struct.unpack_from("<I", dib, 32)[0] if hsize >= 36 and len(dib) >= 36 else 0
    compression = struct.unpack_from("<I", dib, 16)[0] if hsize >= 20 and len(dib) >= 20 else 0
    if hsize == 12:  # BITMAPCOREHEADER: 3-byte palette entries
        palette = (1 << bits) * 3 if bits <= 8 else 0
    else:
        palette = (colors or (1 << bits if bits <= 8 else 0)) * 4
        if hsize == 40 and compression == 3:  # BI_BITFIELDS masks follow the header
            palette += 12
    offset = 14 + hsize + palette
    return b"BM" + struct.pack("<IHHI", 14 + len(dib), 0, 0, offset) + dib


def _pict(s: str, start: int, end: int | None, index: int) -> InlineImage:
    """Decode the ``{\\pict ...}`` group ``s[start:end]`` (end None: unterminated)."""
    body_end = len(s) if end is None else end - 1
    i = start + 1
    kind: str | None = None
    hexchars: list[str] = []
    raw: list[bytes] = []
    while i < body_end:
        c = s[i]
        if c == "{":
            j = _group_end(s, i)
            i = body_end if j is None else j
            continue
        if c == "\\":
            m = _WORD_AT.match(s, i)
            if not m:
                i += 2
                continue
            word, arg = m.group(1), m.group(2)
            if word == "bin" and arg:
                n = max(int(arg), 0)
                raw.append(s[m.end(): m.end() + n].encode("latin-1", "replace"))
                i = m.end() + n
                continue
            base = word.rstrip("0123456789")
            if kind is None and (base in _BLIP_MIME or word in _BLIP_MIME):
                kind = base if base in _BLIP_MIME else word
            i = m.end()
            continue
        if c != "}":
            m = _SPECIAL.search(s, i, body_end)
            j = m.start() if m else body_end
            hexchars.append(s[i:j])
            i = j
            continue
        i += 1
    mime = _BLIP_MIME.get(kind or "", _OCTET)

    def bad(error: str) -> InlineImage:
        return InlineImage(index, mime, _ext(mime), None, error)

    if end is None:
        return bad("unterminated \\pict group")
    if raw:
        data = b"".join(raw)
    else:
        hexdata = re.sub(r"\s+", "", "".join(hexchars))
        if not hexdata:
            return bad("empty \\pict")
        if re.search(r"[^0-9a-fA-F]", hexdata):
            return bad("invalid hex in \\pict")
        if len(hexdata) % 2:
            return bad("invalid hex in \\pict (odd length)")
        data = bytes.fromhex(hexdata)
    if kind == "dibitmap" and not data.startswith(b"BM"):
        try:
            data = _bmp_file(data)
        except (ValueError, struct.error, OverflowError):
            return bad("invalid DIB header in \\pict")
    sniffed = _sniff(data)
    if sniffed and (kind is None or mime in ("image/png", "image/jpeg", "image/bmp")):
        mime = sniffed  # a mislabelled blip: the bytes decide
    return InlineImage(index, mime, _ext(mime), data)


def _rtf_cut(s: str, first: int) -> tuple[str, list[InlineImage]]:
    """Replace picture groups by ``{<sentinel>}`` and decode them; numbering starts at ``first``."""
    out: list[str] = []
    images: list[InlineImage] = []
    i, n, copied = 0, len(s), 0
    last_shp_end = -1
    while i < n:
        c = s[i]
        if c == "\\":
            m = _WORD_AT.match(s, i)
            if m and m.group(1) == "bin" and m.group(2):
                i = m.end() + max(int(m.group(2)), 0)
            else:
                i = m.end() if m else i + 2
            continue
        if c != "{":
            m = _SPECIAL.search(s, i + 1)
            i = m.start() if m else n
            continue
        kind = _group_kind(s, i)
        if kind is None:
            i += 1
            continue
        end = _group_end(s, i)
        stop = n if end is None else end
        out.append(s[copied:i])
        if kind == "nonshppict" and last_shp_end >= 0 and not s[last_shp_end:i].strip():
            pass  # the fallback copy of the picture just written as \shppict: counted once
        else:
            index = first + len(images)
            if kind == "pict":
                img = _pict(s, i, end, index)
            else:  # shppict, or a nonshppict standing alone: its inner \pict
                inner = _INNER_PICT.search(s, i + 1, stop)
                if inner is None:
                    img = InlineImage(index, _OCTET, "bin", None, "picture group without \\pict")
                else:
                    iend = _group_end(s, inner.start())
                    if iend is not None and iend > stop:
                        iend = None
                    img = _pict(s, inner.start(), iend, index)
                    if end is None and img.data is not None:
                        img = dataclasses.replace(img, data=None, error="unterminated \\pict group")
            images.append(img)
            out.append("{" + _mark(index) + "}")
        if kind == "shppict":
            last_shp_end = stop
        i = copied = stop
    out.append(s[copied:])
    return "".join(out), images


_BARE_UC = re.compile(r"\\uc(?![0-9a-zA-Z-])")
_RTF_TOKEN = re.compile(
    r"\\u(-?\d{1,10})[ ]?(?:\\'[0-9a-fA-F]{2}|[^\\{}])?"  # \uN and its fallback character
    r"|\\'([0-9a-fA-F]{2})|\\([a-zA-Z]{1,32})(-?\d{1,10})?[ ]?|\\([^a-zA-Z])|[{}]|[\r\n]"
)
_FALLBACK_WORDS = {"par": "\n", "line": "\n", "sect": "\n\n", "page": "\n\n", "tab": "\t", "row": "\n",
                   "cell": " | "}


def _rtf_fallback(s: str) -> str:
    """Last resort when striprtf fails on a malformed note: escapes and paragraph words, nothing else.

    Destination groups (font table...) are not tracked here, so their words may leak into the text;
    that is accepted for a note the library could not read.
    """

    def sub(m: re.Match[str]) -> str:
        uni, hx, word, sym = m.group(1), m.group(2), m.group(3), m.group(5)
        if uni:  # \uN plus its one-character fallback
            c = int(uni) + (0x10000 if int(uni) < 0 else 0)
            return chr(c) if 0 <= c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF else "\ufffd"
        if hx:
            return bytes.fromhex(hx).decode("cp1252", "replace")
        if word:
            return _FALLBACK_WORDS.get(word, "")
        if sym in ("\\", "{", "}"):
            return sym
        return ""

    s = re.sub(r"\{\\\*?\\?(?:fonttbl|colortbl|stylesheet|info)(?:[^{}]|\{[^{}]*\})*\}", "", s)
    return _RTF_TOKEN.sub(sub, s)


def _from_rtf(s: str, first: int) -> tuple[str, list[InlineImage]]:
    from striprtf.striprtf import rtf_to_text

    body, images = _rtf_cut(s, first)
    body = _BARE_UC.sub(r"\\uc1", body)  # striprtf needs the number (a bare \uc would raise)
    try:
        text = rtf_to_text(body, encoding="cp1252", errors="replace")
    except Exception:  # noqa: BLE001 - a malformed note must not stop a migration
        text = _rtf_fallback(body)
    return text, images


# ---------------------------------------------------------------------------------------------------
# HTML

_IMG_START = re.compile(r"<img(?=[\s/>]|$)", re.IGNORECASE)
_ATTR = re.compile(r"""\s*([^\s=/>"']+)(?:\s*=\s*("[^"]*("|$)|'[^']*('|$)|[^\s>]*))?""")
_DATA_URI = re.compile(r"data:([^,;]*)((?:;[^,;]*)*),(.*)", re.IGNORECASE | re.DOTALL)


def _img_tag(s: str, start: int) -> tuple[int, str | None]:
    """End of the ``<img`` tag at ``start`` (past ``>`` or end of text) and its ``src`` (None: absent)."""
    i, n = start + 4, len(s)
    src: str | None = None
    while i < n:
        if s[i] == ">":
            return i + 1, src
        if s[i] == "/" or s[i].isspace():
            i += 1
            continue
        m = _ATTR.match(s, i)
        if not m or m.end() == i:
            i += 1
            continue
        name, value = m.group(1).lower(), m.group(2)
        if name == "src" and src is None and value is not None:
            if value[:1] in "\"'":
                value = value[1:-1] if len(value) > 1 and value[-1] == value[0] else value[1:]
            src = htmllib.unescape(value)
        i = m.end()
    return n, src


def _data_uri(uri: str, index: int) -> InlineImage:
    m = _DATA_URI.fullmatch(uri.strip())
    if not m:
        return InlineImage(index, _OCTET, "bin", None, "malformed data: URI")
    mime = m.group(1).strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", mime):
        mime = _OCTET
    params = [p.strip().lower() for p in m.group(2).split(";") if p.strip()]
    payload = m.group(3)
    if "base64" in params:
        try:
            data = base64.b64decode(re.sub(r"\s+", "", urllib.parse.unquote(payload)), validate=True)
        except (binascii.Error, ValueError):
            return InlineImage(index, mime, _ext(mime), None, "invalid base64 in data: URI")
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if not data:
        return InlineImage(index, mime, _ext(mime), None, "empty data: URI")
    if mime == _OCTET:
        mime = _sniff(data) or _OCTET
    return InlineImage(index, mime, _ext(mime), data)


def _html_cut(s: str, first: int) -> tuple[str, list[InlineImage], dict[int, str]]:
    out: list[str] = []
    images: list[InlineImage] = []
    labels: dict[int, str] = {}
    pos = 0
    for m in _IMG_START.finditer(s):
        if m.start() < pos:
            continue  # inside the previous (unterminated) tag
        end, src = _img_tag(s, m.start())
        index = first + len(images)
        if src is not None and src.strip()[:5].lower() == "data:":
            img = _data_uri(src, index)
            labels[index] = f"[image {index}]"
        else:
            path = urllib.parse.urlsplit(src.strip()).path if src else ""
            mime = (mimetypes.guess_type(path)[0] or _OCTET) if path else _OCTET
            mime = mime if mime.startswith("image/") else _OCTET
            why = "external image reference" if src and src.strip() else "image without source"
            img = InlineImage(index, mime, _ext(mime), None, why)
            labels[index] = f"[image {index}{_EXTERNAL}]"
        images.append(img)
        out.append(s[pos: m.start()])
        out.append("<span>" + _mark(index) + "</span>")
        pos = end
    out.append(s[pos:])
    return "".join(out), images, labels


def _html_fallback(s: str) -> str:
    s = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>|</li\s*>|</tr\s*>", "\n", s)
    return htmllib.unescape(re.sub(r"<[^>]*>", "", s))


def _from_html(s: str, first: int) -> tuple[str, list[InlineImage], dict[int, str]]:
    from inscriptis import get_text

    body, images, labels = _html_cut(s, first)
    try:
        text = get_text(body)
    except Exception:  # noqa: BLE001 - a malformed note must not stop a migration
        text = _html_fallback(body)
    return text, images, labels


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
    if fmt == "RTF":
        out, images = _from_rtf(text, first)
        labels = {im.index: f"[image {im.index}]" for im in images}
    else:
        out, images, labels = _from_html(text, first)
    out = _CONTROL.sub("", out.replace("\r\n", "\n").replace("\r", "\n"))
    return Converted(_tidy(_place(out, labels), collapse=True), fmt, tuple(images))


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


def revision_chains(rows: list[dict]) -> list[Chain]:
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
        i: int | None = s
        while i is not None and state[i] == 0:
            state[i] = 1
            path.append(i)
            i = parent[i]
        if i is not None and state[i] == 1:  # a cycle: path[path.index(i):]
            cycle = path[path.index(i):]
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
        while root[i] < 0 and parent[i] is not None:
            path.append(i)
            i = parent[i]  # type: ignore[assignment]
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
    for r, idx in members.items():
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
            root_id=_id(rows[r]),
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
    return Converted(_PLACEHOLDER.sub(sub, conv.text), conv.fmt, images)


def compose(chain: Chain, convert: Callable[..., Converted] = to_text) -> tuple[str, tuple[InlineImage, ...]]:
    """The text stored in HighLevel for a chain, and the images of all its revisions.

    The latest revision's text, then (when there are earlier revisions) an "Amendment history"
    section with each earlier revision, oldest first, as ``<YYYY-MM-DD HH:MM> (note <id>):`` and its
    text. Images are numbered 1..n in the order they appear in the composed text.
    """
    images: list[InlineImage] = []

    def conv(row: dict[str, Any]) -> Converted:
        offset = len(images)
        if convert is to_text:  # number directly: a literal "[image 1]" in a note stays as typed
            c = _convert(row.get("note_text"), row.get("note_fmt"), offset + 1)
        else:
            c = _renumber(convert(row.get("note_text"), row.get("note_fmt")), offset)
        images.extend(c.images)
        return c

    parts = [conv(chain.latest).text]
    if chain.history:
        entries = []
        for row in chain.history:
            w = _when(row)
            stamp = f"{w:%Y-%m-%d %H:%M}" if w else "date unknown"
            text = conv(row).text
            entries.append(f"{stamp} (note {_id(row)}):\n{text}" if text else f"{stamp} (note {_id(row)}):")
        parts.append("Amendment history\n" + "\n\n".join(entries))
    body = "\n\n".join(p for p in parts if p)
    return body, tuple(images)
