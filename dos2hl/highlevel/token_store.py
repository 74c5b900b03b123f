"""Where an OAuth location's rotated refresh token lives between refreshes, runs and processes.

HighLevel's refresh token works once: every refresh hands out the next one, and the previous one is
refused from then on. The new one must be durable before anything uses the new access token, or a crash
in between leaves only a dead token (an outage until the location's admin installs the app again). One
record per location, ``<root>/<location id>.token``: the refresh token, the current access token and
when it expires, as JSON sealed with the run's key (AES-256-GCM, ``phi.Sealer``, bound to the location
id: a record copied to another location does not open). The root is a folder or ``s3://`` (the
storage's own atomic writes: a reader sees the old record or the new one).

``locked()`` serialises refreshes of one location: for a local root across the processes of the machine
(an ``flock`` on a lock file beside the record); for an ``s3://`` root across processes and machines (a
lease object beside the record, ``<location id>.lease``, taken with S3's conditional writes:
``lease.py``, which says what a holder that dies leaves and what stores without conditional writes do).
With Ray the token actor (``token_actor``) is moreover the one refresher of every worker. Whoever gets
the lock re-reads the record first (``OAuthToken``): a new run, or another machine's refresh, is found
here and the stale token is never used again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import SecretStr

from ..phi import Sealer
from ..storage import Store, make_private_dirs, open_store
from .lease import LEASE_TTL_S, LeaseStore, S3Lease

__all__ = ["TokenRecord", "TokenStore"]

_FIELD = "oauth-token-record"


@dataclass(frozen=True)
class TokenRecord:
    """A location's tokens: what the last refresh answered, and when (wall clock, seconds)."""

    refresh_token: str
    access_token: str
    expires_at: float
    issued_at: float
    seed: str = ""  # digest of the first refresh token this chain of rotations started from

    @staticmethod
    def digest(token: str) -> str:
        """A token's digest (``seed``): tells two installations' first tokens apart, reveals neither."""
        import hashlib

        return hashlib.sha256(b"dos2hl-oauth-seed\x1f" + token.encode()).hexdigest()[:32]

    def __repr__(self) -> str:  # a record in a traceback or a log never shows a token
        return f"TokenRecord(expires_at={self.expires_at:.0f}, issued_at={self.issued_at:.0f})"

    @property
    def access(self) -> SecretStr:
        return SecretStr(self.access_token)


class TokenStore:
    """The sealed token records under ``root`` (a local folder or ``s3://bucket/prefix``)."""

    def __init__(self, root: str, sealer: Sealer, *, store: Store | None = None,
                 lease_ttl_s: float = LEASE_TTL_S) -> None:
        self.root = root.rstrip("/")
        self._sealer = sealer
        self._store = store or open_store(self.root)
        self.lease_ttl_s = lease_ttl_s

    def __repr__(self) -> str:
        return f"TokenStore({self.root!r})"

    @staticmethod
    def _key(location_id: str) -> str:
        if not location_id or not all(c.isalnum() or c in "-_" for c in location_id):
            raise ValueError("a location id is letters, digits, - and _ only")
        return f"{location_id}.token"

    def load(self, location_id: str) -> TokenRecord | None:
        """The location's latest record, or None before its first refresh."""
        key = self._key(location_id)
        if not self._store.exists(key):
            return None
        sealed = self._store.read_bytes(key).decode("ascii")
        return TokenRecord(**json.loads(self._sealer.open(sealed, _FIELD, location_id)))

    def save(self, location_id: str, record: TokenRecord) -> None:
        """Write the record durably (atomic replace, fsynced; an S3 PUT) before anyone uses it."""
        sealed = self._sealer.seal(json.dumps(asdict(record)), _FIELD, location_id)
        self._store.write_bytes(self._key(location_id), sealed.encode("ascii"))

    def lease(self, location_id: str) -> S3Lease | None:
        """The location's lease in an ``s3://`` store (None for a local root: it has ``flock``)."""
        if not isinstance(self._store, LeaseStore) or self._store.local_path(self._key(location_id)):
            return None
        return S3Lease(self._store, f"{location_id}.lease", ttl_s=self.lease_ttl_s)

    @contextlib.contextmanager
    def locked(self, location_id: str) -> Iterator[None]:
        """Hold the location's refresh lock: across this machine's processes for a local root (``flock``),
        across machines for an ``s3://`` root (the lease); a store with neither is not locked."""
        local = self._store.local_path(self._key(location_id))
        if local is None:
            lease = self.lease(location_id)
            if lease is None:
                yield
                return
            with lease.held():
                yield
            return
        import fcntl

        make_private_dirs(Path(local).parent)
        fd = os.open(f"{local}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes, a crash included
            yield
        finally:
            os.close(fd)
