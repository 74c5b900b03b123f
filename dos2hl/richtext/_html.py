"""HTML notes: cut out ``<img>`` tags (decoding ``data:`` URIs), convert with ``inscriptis``, and a
crude fallback for HTML the library cannot read. See :mod:`dos2hl.richtext.notes`.

Pure: no I/O, no logging. Nothing here ever puts note content into an exception or an ``error`` string.
"""

from __future__ import annotations

import base64
import binascii
import html as htmllib
import mimetypes
import re
import urllib.parse

from ._common import _EXTERNAL, _MAX_IMAGE, _OCTET, InlineImage, _ext, _mark, _sniff

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
    if len(payload) > 3 * _MAX_IMAGE:  # even percent-encoded, more than the upload limit: not decoded
        return InlineImage(index, mime, _ext(mime), None, "picture over the 25 MB upload limit")
    if "base64" in params:
        try:
            data = base64.b64decode(re.sub(r"\s+", "", urllib.parse.unquote(payload)), validate=True)
        except (binascii.Error, ValueError):
            return InlineImage(index, mime, _ext(mime), None, "invalid base64 in data: URI")
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if not data:
        return InlineImage(index, mime, _ext(mime), None, "empty data: URI")
    if len(data) > _MAX_IMAGE:
        return InlineImage(index, mime, _ext(mime), None, "picture over the 25 MB upload limit")
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


_UNSHOWN = re.compile(r"<!--.*?(?:-->|$)|<(script|style|title)\b[^>]*>.*?(?:</\1\s*>|$)",
                      re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(r"(?i)<br\s*/?>|</p\s*>|</div\s*>|</li\s*>|</tr\s*>|</h[1-6]\s*>")
_TAG = re.compile(r"<[^<>]*>")  # never scans past the next "<": linear on text full of stray brackets
_NOT_LETTER = re.compile(r"[\W\d_]+")


def _html_fallback(s: str) -> str:
    """Plain text by stripping tags: no parser, so no depth limit (what a browser would not show is dropped:
    comments, scripts, styles, the title)."""
    s = _BREAKS.sub("\n", _UNSHOWN.sub("", s))
    return htmllib.unescape(_TAG.sub("", s))


def _letters(text: str) -> int:
    return len(_NOT_LETTER.sub("", text))


def _from_html(s: str, first: int) -> tuple[str, list[InlineImage], dict[int, str], bool]:
    """Text, images, image labels, and whether the note fell back to plain text.

    lxml (libxml2) stops building the tree at 255 nested elements, and every word below that depth (and
    often after it) is silently gone from the library's text; verification converts the same way, so it
    could never see the loss. So the letters of the library's text are counted against those of a plain
    tag strip, which has no depth limit: fewer letters means text was lost, and the note is kept as the
    plain strip instead (flagged, and reported by the run) - never a silent loss."""
    from inscriptis import get_text

    body, images, labels = _html_cut(s, first)
    plain = _html_fallback(body)
    try:
        text = get_text(body)
    except Exception:  # noqa: BLE001 - a malformed note must not stop a migration
        return plain, images, labels, True
    if _letters(text) < _letters(plain):
        return plain, images, labels, True
    return text, images, labels, False
