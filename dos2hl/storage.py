"""One small interface over the places dos2hl reads exports from and writes runs to.

``open_store("runs/")`` is a local folder; ``open_store("s3://bucket/prefix")`` is S3 (or an
S3-compatible endpoint such as moto's server in tests). Writes to S3 always ask for SSE-KMS
(with the configured key id) and go through boto3, because pyarrow's S3 filesystem cannot set
SSE-KMS headers. Local writes are atomic and durable: a temp file (created 0600 with ``os.open``,
whatever the umask) is written, fsynced, renamed into place and its folder fsynced (``durable_replace``),
so neither a reader nor a power loss ever sees half a file. Every file the local backend writes is
0600 and every folder it creates 0700: a run holds PHI (the staged export, reports, packages). S3 PUTs
are atomic and durable by nature.

Keys are built by dos2hl only from table names, location codes, shard numbers and run ids: never
from patient data.
"""

from __future__ import annotations

import builtins
import os
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlparse

from .errors import ConfigError, StorageError
from .settings import S3Settings

__all__ = ["Store", "LocalStore", "S3Store", "durable_replace", "fsync_dir", "make_private_dirs",
           "open_store",
           "FILE_MODE", "DIR_MODE"]

FILE_MODE, DIR_MODE = 0o600, 0o700
_CLIENTS = threading.Lock()  # S3 clients are made one at a time (prepare and the shards use threads)


def fsync_dir(path: str | Path) -> None:
    """fsync a folder, so a rename or a new file in it survives a power loss (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a folder: the file's own fsync is what they offer
    finally:
        os.close(fd)


def make_private_dirs(path: str | Path) -> Path:
    """Create ``path`` and its missing parents as 0700 folders (umask-independent); folders that already
    exist are left as they are (the operator's storage root, say). Returns the path."""
    p = Path(path)
    missing = []
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)
        fsync_dir(d.parent)
    return Path(path)


def durable_replace(tmp: str | Path, dest: str | Path) -> None:
    """Make ``tmp`` (already written) 0600 and durable, rename it over ``dest``, fsync the folder: after a
    power loss ``dest`` is either the old file or the whole new one."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fchmod(fd, FILE_MODE)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    fsync_dir(Path(dest).parent)


class Store(Protocol):
    """A folder-like place addressed by relative, ``/``-separated keys."""

    uri: str

    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def list(self, prefix: str = "", *, skip_dirs: Collection[str] = ()) -> list[str]:
        """Keys under ``prefix``, recursively; folders named in ``skip_dirs`` (any case) are not entered."""
    def iter_keys(self, prefix: str = "", *, skip_dirs: Collection[str] = ()) -> Iterator[str]:
        """``list`` a key at a time, in no set order: a listing of millions never held at once."""
    def open_read(self, key: str) -> IO[bytes]: ...
    def read_bytes(self, key: str, *, length: int | None = None) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, local: Path) -> None:
        """Store the local file ``local`` at ``key`` (it may be moved)."""
    def local_path(self, key: str) -> Path | None: ...
    # builtins.list: inside these classes, a bare ``list`` names the list() method
    def delete(self, keys: builtins.list[str]) -> None: ...
    @contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]: ...


class LocalStore:
    """A local folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def _p(self, key: str) -> Path:
        return self.root / key if key else self.root

    def exists(self, key: str) -> bool:
        return self._p(key).exists()

    def size(self, key: str) -> int:
        return self._p(key).stat().st_size

    def list(self, prefix: str = "", *, skip_dirs: Collection[str] = ()) -> list[str]:
        return sorted(self.iter_keys(prefix, skip_dirs=skip_dirs))

    def iter_keys(self, prefix: str = "", *, skip_dirs: Collection[str] = ()) -> Iterator[str]:
        base = self._p(prefix)
        if base.is_file():
            yield prefix
            return
        skip = {d.upper() for d in skip_dirs}
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d.upper() not in skip)
            rel = Path(dirpath).relative_to(self.root)
            for f in filenames:
                yield (rel / f).as_posix()

    def open_read(self, key: str) -> IO[bytes]:
        return self._p(key).open("rb")

    def read_bytes(self, key: str, *, length: int | None = None) -> bytes:
        with self._p(key).open("rb") as fh:
            return fh.read() if length is None else fh.read(length)

    def local_path(self, key: str) -> Path | None:
        return self._p(key)

    def delete(self, keys: builtins.list[str]) -> None:
        for key in keys:
            self._p(key).unlink(missing_ok=True)

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.writer(key) as fh:
            fh.write(data)

    def put_file(self, key: str, local: Path) -> None:
        """Move ``local`` into place (a rename when it sits on the same filesystem, else a copy); 0600,
        durable."""
        dest = self._p(key)
        make_private_dirs(dest.parent)
        try:
            durable_replace(local, dest)
        except OSError:
            with self.writer(key) as fh, open(local, "rb") as src:
                shutil.copyfileobj(src, fh)

    @contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        dest = self._p(key)
        make_private_dirs(dest.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)  # O_EXCL, mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
            durable_replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class S3Store:
    """``s3://bucket/prefix`` through boto3, SSE-KMS on every write."""

    def __init__(self, bucket: str, prefix: str, settings: S3Settings) -> None:
        import boto3  # local import: only S3 users pay for it

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.settings = settings
        with _CLIENTS:  # boto3's default session is not safe to create clients from several threads at once
            self.client = boto3.client(
                "s3", endpoint_url=settings.endpoint_url or None, region_name=settings.region
            )

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}".strip("/") if self.prefix else key

    def _extra(self) -> dict[str, str]:
        if not self.settings.require_sse_kms:
            return {}
        extra = {"ServerSideEncryption": "aws:kms"}
        if self.settings.kms_key_id:
            extra["SSEKMSKeyId"] = self.settings.kms_key_id
        return extra

    def _call(self, what: str, key: str, fn, *args, **kw):  # type: ignore[no-untyped-def]
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kw)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise StorageError(f"S3 {what} of {self.uri}/{key} failed ({code}); check the bucket, "
                               "credentials and KMS key permissions") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {what} of {self.uri}/{key} failed: {type(exc).__name__}; "
                               "check DOS2HL_S3_ENDPOINT_URL and network access") from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as exc:
            if _missing(exc):
                return False
            raise StorageError(f"S3 head of {self.uri}/{key} failed") from exc

    def size(self, key: str) -> int:
        r = self._call("head", key, self.client.head_object, Bucket=self.bucket, Key=self._k(key))
        return int(r["ContentLength"])

    def list(self, prefix: str = "", *, skip_dirs: Collection[str] = ()) -> list[str]:
        return sorted(self.iter_keys(prefix, skip_dirs=skip_dirs))

    def iter_keys(self, prefix: str = "", *, skip_dirs: Collection[str] = ()) -> Iterator[str]:
        """A page (1,000 keys) at a time: the listing is never held whole."""
        full = self._k(prefix)
        pager = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        skip = {d.upper() for d in skip_dirs}
        pages = iter(self._call("list", prefix, pager.paginate, Bucket=self.bucket, Prefix=full))
        while (page := self._call("list", prefix, next, pages, None)) is not None:
            for o in page.get("Contents", []):
                key = o["Key"][strip:]
                if not skip or not any(p.upper() in skip for p in key.split("/")[:-1]):
                    yield key

    def open_read(self, key: str) -> IO[bytes]:
        r = self._call("get", key, self.client.get_object, Bucket=self.bucket, Key=self._k(key))
        return r["Body"]  # type: ignore[no-any-return]

    def read_bytes(self, key: str, *, length: int | None = None) -> bytes:
        kw = {"Range": f"bytes=0-{length - 1}"} if length else {}
        r = self._call("get", key, self.client.get_object, Bucket=self.bucket, Key=self._k(key), **kw)
        return r["Body"].read()  # type: ignore[no-any-return]

    def local_path(self, key: str) -> Path | None:
        return None

    def delete(self, keys: builtins.list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self._k(k)} for k in keys[i:i + 1000]]
            self._call("delete", keys[i] if keys else "", self.client.delete_objects, Bucket=self.bucket,
                       Delete={"Objects": batch, "Quiet": True})

    def write_bytes(self, key: str, data: bytes) -> None:
        self._call("put", key, self.client.put_object, Bucket=self.bucket, Key=self._k(key), Body=data,
                   **self._extra())

    # Conditional writes (S3's If-None-Match / If-Match on PUT and DELETE; AWS since 2024, MinIO too): the
    # token store's lease (highlevel/lease.py). A refused condition (412) or a concurrent conditional write
    # (409 ConditionalRequestConflict) is an answer, None/False, not an error.

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None if there is none."""
        from botocore.exceptions import ClientError

        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise StorageError(f"S3 get of {self.uri}/{key} failed "
                               f"({exc.response.get('Error', {}).get('Code', '?')})") from exc
        return r["Body"].read(), str(r["ETag"])

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        """PUT only if there is no object yet (``etag`` None: ``If-None-Match: *``) or only if it still has
        ``etag`` (``If-Match``); the new ETag, or None when the condition failed (another writer won)."""
        from botocore.exceptions import ClientError

        cond = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        try:
            r = self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, **cond,
                                       **self._extra())
        except ClientError as exc:
            gone = etag is not None and _missing(exc)
            if _lost(exc) or gone:  # gone: the object read was deleted since (If-Match on nothing: 404)
                return None
            raise _conditional_error("put", self.uri, key, exc) from exc
        return str(r["ETag"])

    def delete_if(self, key: str, etag: str) -> bool:
        """DELETE only if the object still has ``etag``: False when it changed or is gone."""
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._k(key), IfMatch=etag)
        except ClientError as exc:
            if _lost(exc) or _missing(exc):
                return False
            raise _conditional_error("delete", self.uri, key, exc) from exc
        return True

    def put_file(self, key: str, local: Path) -> None:
        self._call("upload", key, self.client.upload_file, str(local), self.bucket, self._k(key),
                   ExtraArgs=self._extra())

    @contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        # Spool to a local temp file, then one upload: bounded memory, atomic on S3.
        with tempfile.NamedTemporaryFile(prefix="dos2hl-", suffix=".part") as tmp:
            yield tmp
            tmp.flush()
            self.put_file(key, Path(tmp.name))


def _missing(exc: Exception) -> bool:
    """S3 answered that the object is not there."""
    err = getattr(exc, "response", {}) or {}
    return err.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _lost(exc: Exception) -> bool:
    """A conditional request's condition did not hold (412), or another conditional write raced it (409)."""
    err = getattr(exc, "response", {}) or {}
    code = err.get("Error", {}).get("Code")
    status = err.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def _conditional_error(what: str, uri: str, key: str, exc: Exception) -> StorageError:
    err = getattr(exc, "response", {}) or {}
    code = err.get("Error", {}).get("Code", "?")
    hint = ("the store does not take conditional writes (If-None-Match/If-Match): use AWS S3 or MinIO, a "
            "local token store, or Ray's token actor" if code in ("NotImplemented", "InvalidArgument",
                                                                  "InvalidRequest") else
            "check the bucket, credentials and KMS key permissions")
    return StorageError(f"S3 conditional {what} of {uri}/{key} failed ({code}); {hint}")


def open_store(uri: str | Path, s3: S3Settings | None = None) -> Store:
    """A ``Store`` for a local path or an ``s3://bucket/prefix`` URI."""
    text = str(uri)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise ConfigError(f"{text!r} has no bucket: use s3://bucket/prefix")
        return S3Store(parsed.netloc, parsed.path, s3 or S3Settings())
    if "://" in text:
        raise ConfigError(f"unsupported storage URI {text!r}: use a local path or s3://bucket/prefix")
    return LocalStore(text)
