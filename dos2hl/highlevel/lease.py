"""A lease in an ``s3://`` token store: one refresher of a location's OAuth token across machines, no Ray.

HighLevel's refresh token works once, so two machines refreshing one location at once fork it (the
loser's is refused: an outage). With a local token store an ``flock`` serialises the machine's processes
(``token_store.py``); with Ray the ``oauth-tokens`` actor is the one refresher. Two flow runs on two
machines, or a CLI run beside a deployment, share only the ``s3://`` store: this lease is their lock.

The lease is one small object beside the token record, ``<location id>.lease``: JSON with the holder's
``owner`` (host, PID, a random suffix: no secret, no patient data) and ``expires_at`` (the holder's wall
clock + ``ttl_s``). It is taken with S3's conditional writes, which S3 applies atomically:

- no lease object: ``PutObject`` with ``If-None-Match: *`` (create only if absent);
- an expired (or unreadable) one: ``PutObject`` with ``If-Match: <its ETag>`` (replace only the object
  read: of two machines that saw it expire, one wins);
- a live one: wait (polls, 0.1 s growing to 2 s) and read again.

A refused condition (``412 PreconditionFailed``, ``409 ConditionalRequestConflict`` while another
conditional write is in flight, or a 404 when the lease read was released before the take-over) is a
lost race: read again. Release deletes the object with ``If-Match``
(never another holder's lease, should ours have expired and been taken over). A holder that dies leaves
its lease to expire: a waiter takes it over after at most ``ttl_s``. The wait is bounded by
``max_wait_s`` (default ``ttl_s`` + 30 s) and a round count; past them ``LeaseTimeout`` (a
``StorageError``: the run stops as on any storage failure; the refresh token is untouched).

``ttl_s`` (150 s at the default timeouts: ``lease_ttl_s``) outlasts a refresh at its slowest
(``oauth.exchange``: 3 attempts of at most 10 s to connect and 30 s to read, 3 s of back-off; 25 s
more for the record's write): a live holder's lease does not expire under it. Longer HTTP timeouts
(``DOS2HL_HIGHLEVEL_CONNECT_TIMEOUT``/``READ_TIMEOUT``) make it longer. Expiry compares the holder's
clock with the waiter's: machines' clocks must agree to well within ``ttl_s`` (NTP does). The taker
then re-reads the token record (``OAuthToken._refresh_locked``): if another machine refreshed
meanwhile, its record (and its rotated refresh token) is used, no refresh.

S3-compatible stores: AWS S3 (conditional writes since 2024) and MinIO honour both headers. A store that
rejects them (``501 NotImplemented`` and the like) makes the refresh fail with a ``StorageError`` that
says so: use a local token store, Ray's token actor, or one machine. A store that silently ignores them
gives no exclusion across machines: two refreshes at once fork the token, the loser's refresh is
refused and its location pauses (a 401 of cause ``token``) as without this lease.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import StorageError

__all__ = ["LEASE_TTL_S", "Lease", "LeaseStore", "LeaseTimeout", "S3Lease", "lease_ttl_s", "owner_id"]

log = logging.getLogger("dos2hl.highlevel.lease")
#: How long a lease holds without its holder (see the module docstring).
LEASE_TTL_S = 150.0
_POLL_S, _MAX_POLL_S = 0.1, 2.0


def lease_ttl_s(connect_s: float, read_s: float, attempts: int = 3) -> float:
    """A lease's lifetime for these HTTP timeouts: ``oauth.exchange`` at its slowest (every attempt times
    out, with its back-off between) and 25 s for the record's write, never under ``LEASE_TTL_S``."""
    slowest = attempts * (connect_s + read_s) + sum(min(2.0 ** i, 5.0) for i in range(attempts - 1))
    return max(LEASE_TTL_S, slowest + 25.0)


@runtime_checkable
class LeaseStore(Protocol):
    """The conditional operations a lease needs (``storage.S3Store`` has them)."""

    def read_tagged(self, key: str) -> tuple[bytes, str] | None: ...
    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None: ...
    def delete_if(self, key: str, etag: str) -> bool: ...


class LeaseTimeout(StorageError):
    """The lease was held by another live holder (or kept being won by others) past the wait's bound."""


@dataclass(frozen=True)
class Lease:
    key: str
    owner: str
    etag: str
    expires_at: float


def owner_id() -> str:
    """This holder's name in a lease: host, PID and a random suffix (two providers of a process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder(data: bytes) -> tuple[str, float] | None:
    try:
        body = json.loads(data)
        return str(body["owner"]), float(body["expires_at"])
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: treated as expired (taken over with If-Match, so still one winner)


class S3Lease:
    """The lease at ``key`` of ``store`` (see the module docstring)."""

    def __init__(self, store: LeaseStore, key: str, *, ttl_s: float = LEASE_TTL_S,
                 max_wait_s: float | None = None, owner: str | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease's ttl_s is positive")
        self.store, self.key, self.ttl_s = store, key, ttl_s
        self.max_wait_s = ttl_s + 30.0 if max_wait_s is None else max_wait_s
        self.owner = owner or owner_id()
        self._clock, self._sleep = clock, sleep
        # polls grow to _MAX_POLL_S: this many rounds cover the wait, with room for lost races
        self.max_rounds = int(self.max_wait_s / _MAX_POLL_S) + 60
        self.taken_over = 0  # expired leases this holder took over (tests, diagnosis)

    def __repr__(self) -> str:
        return f"S3Lease({self.key!r}, ttl_s={self.ttl_s})"

    def _body(self, now: float) -> tuple[bytes, float]:
        expires = now + self.ttl_s
        return json.dumps({"owner": self.owner, "expires_at": expires, "ttl_s": self.ttl_s}).encode(), expires

    def try_acquire(self) -> Lease | None:
        """One round: the lease if it was free or expired and this write won it, else None."""
        now = self._clock()
        found = self.store.read_tagged(self.key)
        data, expires = self._body(now)
        if found is None:
            etag = self.store.put_if(self.key, data, etag=None)
        else:
            holder = _holder(found[0])
            if holder is not None and holder[1] > now:
                return None  # held, not expired
            etag = self.store.put_if(self.key, data, etag=found[1])
            if etag is not None:
                self.taken_over += 1
                log.info("token lease %s: took over an expired lease", self.key)
        return None if etag is None else Lease(self.key, self.owner, etag, expires)

    def acquire(self) -> Lease:
        """Wait for the lease (bounded: ``max_wait_s`` and ``max_rounds``); ``LeaseTimeout`` past them."""
        deadline = self._clock() + self.max_wait_s
        delay = _POLL_S
        for _ in range(self.max_rounds):
            lease = self.try_acquire()
            if lease is not None:
                return lease
            left = deadline - self._clock()
            if left <= 0:
                break
            self._sleep(min(delay, left))
            delay = min(delay * 1.5, _MAX_POLL_S)
        raise LeaseTimeout(f"token lease {self.key}: still held by another process after "
                           f"{self.max_wait_s:.0f} s; a lease expires {self.ttl_s:.0f} s after it was taken")

    def release(self, lease: Lease) -> bool:
        """Delete the lease if it is still this one (If-Match); False if it had expired and was taken."""
        released = self.store.delete_if(lease.key, lease.etag)
        if not released:
            log.warning("token lease %s: held past its %.0f s; another process had taken it over",
                        lease.key, self.ttl_s)
        return released

    @contextlib.contextmanager
    def held(self) -> Iterator[Lease]:
        """Hold the lease for the block; released on exit (an error in release is logged: it expires)."""
        lease = self.acquire()
        try:
            yield lease
        finally:
            try:
                self.release(lease)
            except StorageError as exc:
                log.warning("token lease %s: not released (%s); it expires in %.0f s", lease.key,
                            type(exc).__name__, self.ttl_s)
