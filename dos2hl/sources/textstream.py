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
from typing import IO

__all__ = ["Utf8Stream", "FALLBACK_ERRORS"]

FALLBACK_ERRORS = "dos2hl-cp1252-fallback"


def _fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return bad.decode("cp1252", errors="strict") if all(b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) for b in bad) \
        else bad.decode("latin-1"), exc.end


codecs.register_error(FALLBACK_ERRORS, _fallback)


class Utf8Stream:
    """Read-only binary stream: raw bytes in ``encoding`` in, UTF-8 out."""

    def __init__(self, raw: IO[bytes], encoding: str, chunk: int = 1 << 20) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)(errors=FALLBACK_ERRORS)
        self._chunk = chunk
        self._buf = b""
        self._eof = False
        self._pos = 0
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        self.closed = False

    def _fill(self, want: int) -> None:
        while len(self._buf) < want and not self._eof:
            data = self._raw.read(self._chunk)
            if not data:
                self._eof = True
                tail = self._decoder.decode(b"", final=True)
                self._buf += tail.encode("utf-8")
                break
            self.sha256.update(data)
            self.bytes_read += len(data)
            self._buf += self._decoder.decode(data).encode("utf-8")

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            self._fill(1 << 62)
            out, self._buf = self._buf, b""
        else:
            self._fill(size)
            out, self._buf = self._buf[:size], self._buf[size:]
        self._pos += len(out)
        return out

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
