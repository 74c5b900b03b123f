"""HighLevel's OAuth token endpoint (``POST /oauth/token``) for Marketplace-app tokens, in the sandbox.

What it emulates (docs/oauth/Authorization.md, the oauth spec's ``GetAccessCodeSuccessfulResponseDto``):

- an app (``client_id``, ``client_secret``) installed on a location; ``register`` makes one and hands
  out its first refresh token and a one-time authorization code (``POST /_sandbox/oauth``);
- ``grant_type=refresh_token`` / ``authorization_code`` (form-encoded, ``user_type=Location``) answer a
  new access token with ``expires_in`` (``access_ttl_s``, HighLevel's is a day: configurable so tests
  see expiry in seconds) and a new refresh token: with ``rotate`` (HighLevel's behaviour) the used one
  is refused from then on, so a forked refresh token shows as the outage it is;
- an expired access token answers ``401 {"statusCode":401,"message":"Invalid JWT"}`` on any API call
  (the same text HighLevel gives for expired, revoked and unknown tokens: docs/highlevel-errors.md).

Refusals use RFC 6749 §5.2's shape (``error``, ``error_description``): HighLevel's exact text is not in
its spec. Secrets never reach the journal: one line per exchange, operation ``oauth-token``.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .store import Store

__all__ = ["OAuthSettings", "OAuthServer", "TOKEN_PATH", "JOURNAL_OPERATION", "register"]

TOKEN_PATH = "/oauth/token"
JOURNAL_OPERATION = "oauth-token"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS oauth_apps (client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_grants (value TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL,
                                         location_id TEXT NOT NULL, scopes TEXT NOT NULL,
                                         used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS token_expiry (token TEXT PRIMARY KEY, expires_at REAL NOT NULL);
"""


@dataclass(frozen=True)
class OAuthSettings:
    """``access_ttl_s``: an access token's lifetime (``expires_in``); ``rotate``: a refresh token works
    once (HighLevel), else it stays valid."""

    access_ttl_s: float = 86_400.0
    rotate: bool = True


def _tables(store: Store) -> None:
    with store.tx() as db:
        for stmt in filter(str.strip, _SCHEMA.split(";")):
            db.execute(stmt)


def register(store: Store, location_id: str, scopes: list[str], *, client_id: str | None = None,
             client_secret: str | None = None) -> dict[str, str]:
    """Install an app on ``location_id`` (what the location's admin does on the app's consent page):
    returns its ``client_id``, ``client_secret``, a first ``refresh_token`` and an authorization ``code``."""
    if store.location(location_id) is None:
        raise ValueError(f"unknown location {location_id!r}")
    _tables(store)
    client_id = client_id or f"app-{secrets.token_hex(8)}"
    refresh, code = "rt-" + secrets.token_urlsafe(24), "code-" + secrets.token_urlsafe(12)
    with store.tx() as db:
        row = db.execute("SELECT client_secret FROM oauth_apps WHERE client_id=?", (client_id,)).fetchone()
        secret = row[0] if row else (client_secret or "cs-" + secrets.token_urlsafe(24))
        db.execute("INSERT OR REPLACE INTO oauth_apps VALUES (?, ?)", (client_id, secret))
        for grant, kind in ((refresh, "refresh"), (code, "code")):
            db.execute("INSERT INTO oauth_grants VALUES (?, ?, ?, ?, ?, 0)",
                       (grant, kind, client_id, location_id, json.dumps(scopes)))
    return {"client_id": client_id, "client_secret": secret, "refresh_token": refresh, "code": code}


class _Refused(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status, self.error, self.description = status, error, description


class OAuthServer:
    """The token endpoint's logic over the sandbox store, and the access tokens' expiry."""

    def __init__(self, store: Store, settings: OAuthSettings) -> None:
        self.store, self.settings = store, settings
        _tables(store)
        self._lock = threading.Lock()
        with store.tx() as db:
            self._expiry = dict(db.execute("SELECT token, expires_at FROM token_expiry").fetchall())

    def expired(self, token: str, now: float) -> bool:
        """Whether ``token`` is an OAuth access token past its lifetime (PITs never expire)."""
        at = self._expiry.get(token)
        return at is not None and now >= at

    def exchange(self, body: bytes, now: float) -> tuple[int, dict[str, Any], str | None]:
        """(status, answer, location id) for one ``POST /oauth/token`` body."""
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        try:
            return 200, *self._grant(form, now)
        except _Refused as exc:
            return exc.status, {"error": exc.error, "error_description": exc.description}, None

    def _grant(self, form: dict[str, str], now: float) -> tuple[dict[str, Any], str]:
        grant_type = form.get("grant_type")
        if grant_type not in ("refresh_token", "authorization_code"):
            raise _Refused(400, "unsupported_grant_type", "grant_type must be refresh_token or "
                                                          "authorization_code")
        if form.get("user_type", "Location") != "Location":
            raise _Refused(400, "invalid_request", "the sandbox issues Location tokens only")
        presented = form.get("refresh_token" if grant_type == "refresh_token" else "code", "")
        with self._lock, self.store.tx() as db:
            app = db.execute("SELECT client_secret FROM oauth_apps WHERE client_id=?",
                             (form.get("client_id", ""),)).fetchone()
            if app is None or not secrets.compare_digest(app[0], form.get("client_secret", "")):
                raise _Refused(401, "invalid_client", "Invalid client credentials")
            row = db.execute("SELECT kind, client_id, location_id, scopes, used FROM oauth_grants "
                             "WHERE value=?", (presented,)).fetchone()
            kind = "refresh" if grant_type == "refresh_token" else "code"
            if row is None or row[0] != kind or row[1] != form["client_id"] or row[4]:
                raise _Refused(400, "invalid_grant", f"Invalid grant: {grant_type.replace('_', ' ')} "
                                                     "is invalid, used or revoked")
            _, client_id, location_id, scopes_json, _ = row
            scopes: list[str] = json.loads(scopes_json)
            if self.settings.rotate or kind == "code":
                db.execute("UPDATE oauth_grants SET used=1 WHERE value=?", (presented,))
                refresh = "rt-" + secrets.token_urlsafe(24)
                db.execute("INSERT INTO oauth_grants VALUES (?, 'refresh', ?, ?, ?, 0)",
                           (refresh, client_id, location_id, scopes_json))
            else:
                refresh = presented
            access = "at-" + secrets.token_urlsafe(32)
            self.store.add_token(access, location_id, client_id, scopes)
            expires_at = now + self.settings.access_ttl_s
            db.execute("INSERT INTO token_expiry VALUES (?, ?)", (access, expires_at))
            self._expiry[access] = expires_at
            company = (self.store.location(location_id) or {}).get("companyId")
        return {"access_token": access, "token_type": "Bearer",
                "expires_in": int(self.settings.access_ttl_s), "refresh_token": refresh,
                "scope": " ".join(scopes), "userType": "Location", "locationId": location_id,
                "companyId": company, "userId": client_id, "isBulkInstallation": False}, location_id

