"""Token providers: where the client gets the bearer token of each request, and a new one after a 401.

- ``FixedToken``: one token for the client's life (tests, ``dos2hl`` commands given a token).
- ``StaticToken``: a private integration token (PIT) from an environment variable or a file. The admin
  may rotate it while a run goes on: after a 401 the source is read again and, if it changed, the
  request is sent once more with the new token (no restart).
- ``OAuthToken``: a Marketplace app's tokens. The access token (HighLevel: 24 h) is refreshed ahead of
  its expiry (``margin_s`` before it, at most a fifth of its lifetime) and once after a 401; the
  rotated refresh token is written to the ``TokenStore`` (sealed, durable) before the new access token
  is used; a later run starts from that record, unless the environment holds the first refresh token of
  a new installation of the app (the record remembers a digest of the first token it started from).
  One refresh at a time: a lock per location in the process, the store's file lock across
  the machine's processes (a local store) or its lease across machines (an ``s3://`` store:
  ``lease.py``), the token actor (``governor.token_actor``) across Ray workers; whoever waited finds the
  new record and uses it without a second refresh.

A provider is shared by every client of its location in the process (``shared``). Requests to the
token endpoint are counted by the client that caused them (``on_send``: request class ``auth``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx
from pydantic import SecretStr

from ..errors import ConfigError
from .oauth import OAuthApp, exchange
from .token_store import TokenRecord, TokenStore

__all__ = ["TokenProvider", "FixedToken", "StaticToken", "OAuthToken", "OnSend", "shared", "forget_shared",
           "DEFAULT_MARGIN_S"]

OnSend = Callable[[], None] | None
#: Refresh this long before the access token expires (capped at a fifth of its lifetime).
DEFAULT_MARGIN_S = 300.0


@runtime_checkable
class TokenProvider(Protocol):
    def token(self, on_send: OnSend = None) -> SecretStr:
        """The token for the next request (refreshed first if it is about to expire)."""

    def renew(self, failed: SecretStr, on_send: OnSend = None) -> bool:
        """A request with ``failed`` got 401: True if another token is now there to try once more."""


class FixedToken:
    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "FixedToken(**********)"

    def token(self, on_send: OnSend = None) -> SecretStr:
        return self._token

    def renew(self, failed: SecretStr, on_send: OnSend = None) -> bool:
        return False


class StaticToken:
    """A PIT read from ``file`` (its first line) or else from the environment variable ``env``.

    After a 401 the file is read again (``renew``). An admin who rotates a token may revoke the old one
    before the new one is written to the file: while the file still holds the refused token it is read
    again every ``poll_s`` for up to ``settle_s`` before the 401 is final (one wait for every thread
    refused with that token: they share the lock)."""

    def __init__(self, env: str | None = None, file: str | Path | None = None, *,
                 what: str = "token", settle_s: float = 2.0, poll_s: float = 0.1) -> None:
        if not env and not file:
            raise ValueError("a StaticToken needs an environment variable or a file")
        self.env, self.file, self.what = env, Path(file) if file else None, what
        self.settle_s, self.poll_s = settle_s, poll_s
        self._lock = threading.Lock()
        self._value = self._read()

    def __repr__(self) -> str:
        return f"StaticToken(env={self.env!r}, file={str(self.file) if self.file else None!r})"

    def _read(self) -> SecretStr:
        if self.file is not None:
            try:
                lines = self.file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"{self.what}: token file {self.file} cannot be read "
                                  f"({type(exc).__name__})") from None
            value = lines[0].strip() if lines else ""
            where = f"token file {self.file}"
        else:
            value, where = os.environ.get(str(self.env), "").strip(), f"environment variable {self.env}"
        if not value:
            raise ConfigError(f"{where} ({self.what}) is empty or not set; export or write it before running")
        return SecretStr(value)

    def token(self, on_send: OnSend = None) -> SecretStr:
        return self._value

    def renew(self, failed: SecretStr, on_send: OnSend = None) -> bool:
        """Read the source again: True if it holds another token than ``failed`` (the admin rotated it)."""
        with self._lock:
            if self._value.get_secret_value() != failed.get_secret_value():
                return True  # another thread has read the new one already
            # a file may be written after the old token stopped working: read it again for a while
            deadline = time.monotonic() + (self.settle_s if self.file is not None else 0.0)
            while True:
                try:
                    fresh: SecretStr | None = self._read()
                except ConfigError:  # being rewritten (empty for a moment) or gone
                    fresh = None
                if fresh is not None and fresh.get_secret_value() != failed.get_secret_value():
                    self._value = fresh
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(self.poll_s)


class OAuthToken:
    """A location's OAuth tokens, refreshed ahead of expiry and after a 401 (see the module docstring)."""

    def __init__(self, location_id: str, app: OAuthApp, first_refresh: SecretStr, *,
                 http: httpx.Client, store: TokenStore | None, margin_s: float = DEFAULT_MARGIN_S,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.location_id, self.app, self.margin_s = location_id, app, margin_s
        self._first, self._http, self._store = first_refresh, http, store
        first = first_refresh.get_secret_value()
        self._seed = TokenRecord.digest(first) if first else ""  # no first token: follow the store
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._record: TokenRecord | None = None
        self.refreshes = 0  # exchanges this provider made (tests, the auth check)

    def __repr__(self) -> str:
        return f"OAuthToken(location_id={self.location_id!r})"

    def fresh(self, record: TokenRecord | None) -> bool:
        """Whether ``record``'s access token is good for a while yet (not within the margin of expiry)."""
        if record is None:
            return False
        margin = min(self.margin_s, (record.expires_at - record.issued_at) / 5)
        return self._clock() < record.expires_at - margin

    def token(self, on_send: OnSend = None) -> SecretStr:
        record = self._record
        if self.fresh(record):
            assert record is not None
            return record.access
        return self._refresh(None, on_send).access

    def renew(self, failed: SecretStr, on_send: OnSend = None) -> bool:
        self._refresh(failed.get_secret_value(), on_send)
        return True

    def current(self, failed: str | None = None, on_send: OnSend = None) -> TokenRecord:
        """The record to use: the one held or stored if fresh (and not ``failed``), else a new one."""
        record = self._record
        if self.fresh(record) and record is not None and record.access_token != failed:
            return record
        return self._refresh(failed, on_send)

    def _refresh(self, failed: str | None, on_send: OnSend) -> TokenRecord:
        with self._lock:
            if self._store is None:
                return self._refresh_locked(failed, on_send)
            with self._store.locked(self.location_id):
                return self._refresh_locked(failed, on_send)

    def _refresh_locked(self, failed: str | None, on_send: OnSend) -> TokenRecord:
        record = self._record
        stored = self._store.load(self.location_id) if self._store is not None else None
        if stored is not None and self._seed and stored.seed != self._seed:
            stored = None  # the app was installed again: the environment's first token starts a new chain
        if stored is not None:
            # under the lock the stored record is the latest (each refresher stores it before letting go):
            # another process, machine or earlier run refreshed, its refresh token is the live one. Not
            # compared by issued_at: that is its writer's clock, and two machines' clocks disagree.
            record = stored
        if record is not None and record.access_token != failed and self.fresh(record):
            self._record = record
            return record
        refresh = SecretStr(record.refresh_token) if record is not None else self._first
        now = self._clock()
        grant = exchange(self._http, self.app, refresh, location_id=self.location_id, sleep=self._sleep,
                         on_send=on_send)
        new = TokenRecord(grant.refresh_token.get_secret_value(), grant.access_token.get_secret_value(),
                          now + grant.expires_in, now, record.seed if record is not None else self._seed)
        if self._store is not None:
            self._store.save(self.location_id, new)  # durable before the new access token is used
        self._record = new
        self.refreshes += 1
        return new

    def close(self) -> None:
        self._http.close()


_SHARED: dict[tuple[str, ...], TokenProvider] = {}
_SHARED_LOCK = threading.Lock()


def shared(key: tuple[str, ...], make: Callable[[], TokenProvider]) -> TokenProvider:
    """The process's one provider for ``key`` (target, location, source), made on first use."""
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = make()
        return found


def forget_shared() -> None:
    """Drop the process's providers (tests; a new run in the same process reads the store again)."""
    with _SHARED_LOCK:
        providers = list(_SHARED.values())
        _SHARED.clear()
    for p in providers:
        close = getattr(p, "close", None)
        if close is not None:
            close()
