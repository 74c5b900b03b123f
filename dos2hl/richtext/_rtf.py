"""RTF notes: cut out ``{\\pict ...}`` pictures (brace-aware scanner), convert with ``striprtf``,
and a crude fallback for RTF the library cannot read. See :mod:`dos2hl.richtext.notes`.

Pure: no I/O, no logging. Nothing here ever puts note content into an exception or an ``error`` string.
"""

from __future__ import annotations

import dataclasses
import re
import struct

from ._common import _MAX_IMAGE, _OCTET, InlineImage, _ext, _mark, _sniff

_WORD_AT = re.compile(r"\\([a-zA-Z]{1,32})(-?\d{1,10})?[ ]?")
_SPECIAL = re.compile(r"[\\{}]")
_PICT_GROUP = re.compile(r"\{\s*(?:\\\*\s*)?\\(pict|shppict|nonshppict)(?![a-zA-Z])")
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")
_INNER_PICT = re.compile(r"\{\s*\\pict(?![a-zA-Z])")
_BLIP_MIME = {
    "pngblip": "image/png",
    "jpegblip": "image/jpeg",
    "emfblip": "image/x-emf",
    "wmetafile": "image/x-wmf",
    "dibitmap": "image/bmp",
    "macpict": "image/x-pict",
}


def _past_control(s: str, i: int) -> int:
    """Index just past the control word or symbol at ``s[i] == "\\"`` (``\\binN`` skips its N raw bytes)."""
    m = _WORD_AT.match(s, i)
    if m and m.group(1) == "bin" and m.group(2):
        return m.end() + max(int(m.group(2)), 0)
    return m.end() if m else i + 2


def _group_end(s: str, start: int) -> int | None:
    """Index just past the ``}`` closing the group opened at ``s[start] == "{"``; None if unterminated."""
    depth, i, n = 0, start, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i = _past_control(s, i)
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
    spans: list[tuple[int, int]] = []  # where the hex data is (no copy until it is known to fit)
    raw: list[tuple[int, int]] = []  # \\binN data
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
                raw.append((m.end(), min(m.end() + n, body_end)))
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
            spans.append((i, j))
            i = j
            continue
        i += 1
    mime = _BLIP_MIME.get(kind or "", _OCTET)

    def bad(error: str) -> InlineImage:
        return InlineImage(index, mime, _ext(mime), None, error)

    if end is None:
        return bad("unterminated \\pict group")
    if raw:
        if sum(b - a for a, b in raw) > _MAX_IMAGE:
            return bad("picture over the 25 MB upload limit")
        data = b"".join(s[a:b].encode("latin-1", "replace") for a, b in raw)
    else:
        # two hex digits a byte; whitespace is counted without copying the text
        digits = sum(b - a - sum(s.count(w, a, b) for w in " \t\r\n\f\v") for a, b in spans)
        if not digits:
            return bad("empty \\pict")
        if digits > 2 * _MAX_IMAGE:
            return bad("picture over the 25 MB upload limit")
        hexdata = re.sub(r"\s+", "", "".join(s[a:b] for a, b in spans))  # at most 50 MB: it fits
        if _NOT_HEX.search(hexdata):
            return bad("invalid hex in \\pict")
        if digits % 2:
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
            i = _past_control(s, i)
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
        # striprtf ships py.typed but leaves rtf_to_text unannotated (returns str)
        text: str = rtf_to_text(body, encoding="cp1252", errors="replace")  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - a malformed note must not stop a migration
        text = _rtf_fallback(body)
    return text, images
