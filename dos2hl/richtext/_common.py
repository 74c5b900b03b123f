"""Helpers shared by the rich-text note converters (:mod:`dos2hl.richtext.notes`, ``_rtf``, ``_html``).

The :class:`InlineImage` model, image type sniffing, the private-use sentinels that mark an image's
place through a library conversion, and the final text tidy-up. Pure: no I/O, no logging.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


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
_MAX_IMAGE = 25 * 1024 * 1024  # HighLevel's upload limit: a bigger picture is reported, never decoded


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

