"""A file-like wrapper that turns any export encoding into UTF-8 for pyarrow, losing nothing.

Exports mix encodings (a cp1252 file with a UTF-8 field, a UTF-8 file re-saved with one cp1252
byte). A strict decoder would stop the whole file; ``errors="replace"`` would lose characters.
Instead, bytes that are invalid in the file's encoding are decoded as cp1252 (latin-1 for the five
bytes cp1252 leaves undefined), so every byte becomes a character and double-decoded text can be
repaired later (ENC3). The wrapper also hashes the raw bytes (sha256) and counts them.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import threading
from collections.abc import Callable
from typing import IO

__all__ = ["Utf8Stream", "FALLBACK_ERRORS"]

FALLBACK_ERRORS = "dos2hl-cp1252-fallback"
_ASCII_COMPATIBLE = frozenset({"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "iso8859-15", "cp1250",
                               "cp1251", "cp1252", "cp1253", "cp1254", "cp1257", "cp437", "cp850"})


_local = threading.local()  # the stream decoding on this thread (counts what it could not decode)


def _fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    if exc.encoding.replace("_", "-").lower().startswith(("utf-16", "utf-32")):
        # A lone surrogate or a cut code unit: no character to keep. U+FFFD, counted (a file warning).
        stream = getattr(_local, "stream", None)
        if stream is not None:
            stream.replaced += 1
        return "\ufffd", exc.end
    bad = exc.object[exc.start : exc.end]
    return bad.decode("cp1252",
                      errors="strict") if all(b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) for b in bad) \
        else bad.decode("latin-1"), exc.end


codecs.register_error(FALLBACK_ERRORS, _fallback)


class Utf8Stream:
    """Read-only binary stream: raw bytes in ``encoding`` in, UTF-8 out."""

    def __init__(self, raw: IO[bytes], encoding: str, chunk: int = 1 << 20,
                 admit: Callable[[], None] | None = None) -> None:
        self._raw = raw
        self.admit = admit  # called before each ``read`` (the read-ahead bound: ``prefetch.ReadAhead``)
        self._decoder = codecs.getincrementaldecoder(encoding)(errors=FALLBACK_ERRORS)
        # ASCII bytes are their own UTF-8 in these codecs: a chunk of pure ASCII (after the first
        # chunk, which may hold a BOM, and with no character left half-decoded) is passed through.
        self._ascii_safe = codecs.lookup(encoding).name in _ASCII_COMPATIBLE
        self._started = False
        self._chunk = chunk
        self._buf = b""
        self._eof = False
        self._pos = 0
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        self.last = b""  # the last byte handed out (does the text end with a line break?)
        self.ended_in_quote = False  # set by skip_record: the stream ended inside a quoted value
        self.replaced = 0  # UTF-16/32 code units that decode to no character (read as U+FFFD)
        self.closed = False

    def _fill(self, want: int) -> None:
        # Parts are joined once per call: appending to one bytes object would copy it on every
        # chunk (quadratic in a large block).
        have = len(self._buf)
        if have >= want or self._eof:
            return
        parts = [self._buf]
        _local.stream = self
        while have < want:
            data = self._raw.read(self._chunk)
            if not data:
                self._eof = True
                parts.append(self._decoder.decode(b"", final=True).encode("utf-8"))
                break
            self.sha256.update(data)
            self.bytes_read += len(data)
            if self._started and self._ascii_safe and data.isascii() and not self._decoder.getstate()[0]:
                part = data
            else:
                part = self._decoder.decode(data).encode("utf-8")
                self._started = True
            parts.append(part)
            have += len(part)
        self._buf = b"".join(parts)

    def read(self, size: int = -1) -> bytes:
        if self.admit is not None:
            self.admit()
        if size is None or size < 0:
            self._fill(1 << 62)
            out, self._buf = self._buf, b""
        else:
            self._fill(size)
            out, self._buf = self._buf[:size], self._buf[size:]
        self._pos += len(out)
        if out:
            self.last = out[-1:]
        return out

    def at_eof(self) -> bool:
        """True when no decoded byte is left to read."""
        self._fill(1)
        return not self._buf

    def skip_lines(self, n: int) -> None:
        """Consume the first ``n`` physical lines (up to and including the ``n``-th ``\\n``).

        Used to resume reading at a line: newlines are counted in C (``bytes.count``), one chunk
        held at a time, so memory does not grow with the lines skipped."""
        while n > 0:
            self._fill(self._chunk)
            if not self._buf:
                return
            k = self._buf.count(b"\n")
            if k < n:
                n -= k
                self._pos += len(self._buf)
                self._buf = b""
                continue
            at = -1
            for _ in range(n):
                at = self._buf.index(b"\n", at + 1)
            self._pos += at + 1
            self._buf = self._buf[at + 1:]
            return

    def skip_record(self, delimiter: str, quotechar: str) -> tuple[int, int, bool]:
        """Consume one CSV record without keeping it: ``(bytes, newlines, complete)``.

        Quote-aware as pyarrow is (a quote opens a quoted value only at the start of a field, a
        doubled quote inside it is literal); the record ends at the first line break outside
        quotes (``complete``) or at the end of the stream. Only the current chunk is held, and the
        scan jumps from delimiter to delimiter, so a 2 GB line costs one pass and a chunk of memory.
        """
        q = quotechar.encode()
        stop = re.compile(b"[" + re.escape(delimiter.encode() + b"\n") + b"]")
        size = newlines = 0
        in_quote = False
        field_start = True
        i = 0
        while True:
            if i >= len(self._buf):
                size += len(self._buf)
                newlines += self._buf.count(b"\n")
                self._pos += len(self._buf)
                self._buf, i = b"", 0
                self._fill(self._chunk)
                if not self._buf:
                    self.ended_in_quote = in_quote
                    return size, newlines, False
            buf = self._buf
            if in_quote:
                j = buf.find(q, i)
                if j < 0:
                    i = len(buf)
                    continue
                if j + 1 >= len(buf):  # is it a doubled quote? keep it and read on
                    self._fill(len(buf) + self._chunk)
                    if len(self._buf) == len(buf):  # the stream ends with the closing quote
                        i, in_quote = j + 1, False
                    continue
                if buf[j + 1:j + 2] == q:
                    i = j + 2
                else:
                    i, in_quote = j + 1, False
                continue
            if field_start and buf[i:i + 1] == q:
                i, in_quote, field_start = i + 1, True, False
                continue
            m = stop.search(buf, i)
            if m is None:
                i, field_start = len(buf), False
                continue
            if m.group() == b"\n":
                end = m.end()
                size += end
                newlines += buf.count(b"\n", 0, end)
                self._pos += end
                self._buf = buf[end:]
                return size, newlines, True
            i, field_start = m.end(), True

    def drain(self) -> None:
        """Read the rest of the raw stream so ``sha256`` covers the whole file."""
        while not self._eof:
            self._buf = b""
            self._fill(1 << 24)

    # The file-object protocol pyarrow's PythonFile expects.
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self.closed = True
        self._raw.close()
