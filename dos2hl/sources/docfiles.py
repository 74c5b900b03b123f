"""The one way a document's file is found and read from an export (issue 14, finding 1).

A DOCUMENT row names its file by FILE_PATH (a Windows folder: ``D:\\DentOSoft\\Images\\S\\SMITHJ000123\\``
or ``\\\\DOSSRV\\DOSIMG\\000123\\``) and FILE_NAME. Both come from a machine we do not control, so
they are input, never a path to follow:

* :func:`document_key` turns them into a key under the export's ``IMAGES/`` tree: the image root is
  cut off (the drive or UNC share and the folders up to ``Images``), and a row is **refused** when
  any part climbs (``..``), is rooted without being a drive or UNC path (``/etc``), carries a drive
  or stream colon after the root (``C:`` inside the path, ``x:stream``), or holds a control
  character; FILE_NAME must be a bare file name (no separator at all).
* :func:`document_size` and :func:`read_document` open that key **below** ``IMAGES`` one component
  at a time, each with ``O_NOFOLLOW`` relative to its parent's descriptor (``openat``): a symbolic
  link anywhere (the file, a folder on the way, ``IMAGES`` itself) is refused, and nothing can be
  swapped between a check and the open. The file is opened with ``O_NONBLOCK`` (a FIFO cannot hang
  the run) and ``fstat`` of the open descriptor must say *regular file*: FIFOs, sockets and devices
  are refused by name, not by the accident of a zero size. A read takes at most
  ``MAX_DOCUMENT_BYTES + 1`` bytes, so a file that grows or lies about its size is still bounded.
* An ``s3://`` export has no links; its keys are the same validated keys below the export's prefix
  (a key with ``..`` or a leading ``/`` never reaches S3), sizes come from HEAD and reads are ranged
  to the same cap.

Refusals raise :class:`RefusedDocument` whose ``reason`` is a fixed text: never the path or the
name, which can hold a patient's name. The caller excludes the row with that reason.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from typing import TYPE_CHECKING

from ..errors import SourceError, StorageError

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["MAX_DOCUMENT_BYTES", "IMAGES", "RefusedDocument", "TooLarge", "document_key", "document_size",
           "read_document", "too_large_reason"]

MAX_DOCUMENT_BYTES = 25 * 1024 * 1024  # HighLevel's media upload limit
IMAGES = "IMAGES"

_SEP = re.compile(r"[\\/]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:$")
_UNC_SHARES = ("DOSIMG",)  # \\SERVER\DOSIMG\rest: the share is the image root


class RefusedDocument(SourceError):
    """A document file that is not read; ``reason`` is a fixed text, safe for a report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooLarge(RefusedDocument):
    def __init__(self, size: int) -> None:
        super().__init__(too_large_reason(size))
        self.size = size


def too_large_reason(size: int) -> str:
    return (f"{size / 2**20:.1f} MB is over HighLevel's 25 MB upload limit: keep it in the imaging archive "
            f"and "
            "link it by hand")


def _check_part(part: str) -> None:
    if part == "..":
        raise RefusedDocument("unsafe file path: it climbs out of the image folder (..)")
    if _CONTROL.search(part):
        raise RefusedDocument("unsafe file path: control character in the path")
    if ":" in part:
        raise RefusedDocument("unsafe file path: a drive letter or stream inside the path")


def document_key(folder: str | None, name: str | None) -> str | None:
    """FILE_PATH + FILE_NAME -> ``IMAGES/<folders below the image root>/<name>``; None when there is no
    file name. Raises :class:`RefusedDocument` for anything that could point outside ``IMAGES``."""
    if name is None or not str(name).strip():
        return None
    name = str(name)
    if _SEP.search(name) or _DRIVE.match(name[:2]):
        raise RefusedDocument("unsafe file name: FILE_NAME is a path, not a file name")
    if name in (".", ".."):
        raise RefusedDocument("unsafe file path: it climbs out of the image folder (..)")
    _check_part(name)
    text = str(folder or "")
    raw = text.replace("/", "\\")
    parts = [p for p in raw.split("\\") if p and p != "."]
    if raw.startswith("\\\\"):  # UNC: \\SERVER\SHARE\rest
        if len(parts) >= 2 and parts[1].upper() in _UNC_SHARES:
            parts = parts[2:]
    elif parts and _DRIVE.match(parts[0]):  # D:\DentOSoft\Images\rest
        low = [p.lower() for p in parts]
        parts = parts[low.index("images") + 1:] if "images" in low else parts[1:]
    elif raw.startswith("\\"):
        raise RefusedDocument("unsafe file path: an absolute path that is neither a drive nor a UNC path")
    elif parts and ":" in parts[0]:
        raise RefusedDocument("unsafe file path: a drive letter or stream inside the path")
    for p in parts:
        _check_part(p)
    return "/".join([IMAGES, *parts, name])


def _split(key: str) -> list[str]:
    """A key's components, checked again (keys may come from elsewhere than document_key, e.g. a listing):
    a file below a folder named IMAGES, no empty, ``.`` or ``..`` part, no drive, no control character."""
    parts = key.split("/")
    if any(p in ("", ".") for p in parts) or not any(p.upper() == IMAGES for p in parts[:-1]):
        raise RefusedDocument("unsafe file path: not a file below the export's IMAGES folder")
    for p in parts:
        _check_part(p)
        if "\\" in p:
            raise RefusedDocument("unsafe file name: FILE_NAME is a path, not a file name")
    return parts


def _open_local(root: str, parts: list[str]) -> int | None:
    """A read-only descriptor of ``root/<parts>`` opened one component at a time, none of them followed
    when it is a link (the export's root itself is the operator's choice
                       and may be one); None when missing."""
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    fds: list[int] = []
    try:
        try:
            top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            _missing_or_refused(exc, root, None)
            return None
        fds.append(top)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_RDONLY | nofollow | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                fd = os.open(part, flags, dir_fd=fds[-1])
            except OSError as exc:
                _missing_or_refused(exc, part, fds[-1])
                return None
            if last:
                return fd
            fds.append(fd)
        return None
    finally:
        for fd in fds:
            os.close(fd)


def _missing_or_refused(exc: OSError, name: str, dir_fd: int | None) -> None:
    if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
        try:
            st = os.lstat(name, dir_fd=dir_fd) if dir_fd is not None else os.lstat(name)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise RefusedDocument("unsafe file: a symbolic link in the export's IMAGES folder is never "
                                  "followed") \
                from None
        if exc.errno == errno.ENOTDIR:
            return None  # a file where a folder was expected: the document's file is not there
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return None
    raise RefusedDocument(f"unreadable file ({type(exc).__name__}, errno {exc.errno})") from None


def _regular(fd: int) -> int:
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    kind = (
        "a FIFO"
        if stat.S_ISFIFO(st.st_mode)
        else "a device"
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
        else "a socket"
        if stat.S_ISSOCK(st.st_mode)
        else "a folder"
        if stat.S_ISDIR(st.st_mode)
        else "special"
    )
    raise RefusedDocument(f"unsafe file: {kind}, not a regular file")


def _local_root(store: Store) -> str | None:
    from ..storage import LocalStore

    return str(store.root) if isinstance(store, LocalStore) else None


def document_size(store: Store, key: str) -> int | None:
    """The document's size in bytes, None when the export does not have it; refuses what must not be read."""
    parts = _split(key)
    root = _local_root(store)
    if root is not None:
        fd = _open_local(root, parts)
        if fd is None:
            return None
        try:
            return _regular(fd)
        finally:
            os.close(fd)
    try:
        return store.size(key) if store.exists(key) else None
    except (OSError, StorageError) as exc:  # their texts hold the key: a path that can hold a name
        raise RefusedDocument(f"unreadable file ({type(exc).__name__})") from None


def read_document(store: Store, key: str, *, cap: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The document's bytes (at most ``cap``); :class:`TooLarge` past it, :class:`RefusedDocument` for a
    file that must not be read, ``FileNotFoundError`` (no path in it) when it is gone."""
    parts = _split(key)
    root = _local_root(store)
    if root is None:
        try:
            data = store.read_bytes(key, length=cap + 1)
        except (OSError, StorageError) as exc:
            raise RefusedDocument(f"unreadable file ({type(exc).__name__})") from None
    else:
        fd = _open_local(root, parts)
        if fd is None:
            raise FileNotFoundError(errno.ENOENT, "document file missing from the export")
        try:
            size = _regular(fd)
            if size > cap:
                raise TooLarge(size)
            chunks, left = [], cap + 1
            while left > 0:
                b = os.read(fd, min(left, 1 << 20))
                if not b:
                    break
                chunks.append(b)
                left -= len(b)
            data = b"".join(chunks)
        finally:
            os.close(fd)
    if len(data) > cap:
        raise TooLarge(len(data))
    return data
