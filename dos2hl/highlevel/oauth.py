"""One exchange at HighLevel's ``POST /oauth/token``: a refresh token for a new access token (and the next
refresh token, which replaces the one sent: HighLevel's rotate on every refresh).

Form-encoded per the oauth spec (``grant_type=refresh_token``, ``client_id``, ``client_secret``,
``refresh_token``, ``user_type=Location``); the answer's ``access_token``, ``expires_in`` and
``refresh_token`` are kept. A refusal (invalid or already used refresh token, wrong client) is an
``AuthError`` with cause ``token``: systemic, it pauses the location (``systemic.py``). A 5xx, a 429
or a connection that failed before sending is tried again (at most ``attempts`` in all, bounded
sleeps); a timeout after sending is not (the server may have rotated already: re-sending the old token
would only be refused). No secret is ever logged or put in an exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from ..errors import AuthError, HighLevelError, HighLevelHTTPError, ServerError, TransportError

__all__ = ["Grant", "OAuthApp", "TOKEN_PATH", "exchange"]

log = logging.getLogger("dos2hl.highlevel.oauth")
TOKEN_PATH = "/oauth/token"


@dataclass(frozen=True)
class OAuthApp:
    """A Marketplace app's credentials (from the environment variables locations.yaml names)."""

    client_id: str
    client_secret: SecretStr


@dataclass(frozen=True)
class Grant:
    access_token: SecretStr
    refresh_token: SecretStr
    expires_in: float


def _post(http: httpx.Client, app: OAuthApp,
          refresh_token: SecretStr) -> tuple[int, Any] | HighLevelError:
    """(status, JSON body) or the failure: no response, request or httpx exception leaves this frame
    (their form body holds the client secret and the refresh token; a traceback keeps frames' locals)."""
    failed: HighLevelError | None = None
    try:
        response = http.post(TOKEN_PATH, data={
            "grant_type": "refresh_token", "client_id": app.client_id,
            "client_secret": app.client_secret.get_secret_value(),
            "refresh_token": refresh_token.get_secret_value(), "user_type": "Location"})
    except httpx.ConnectError:
        failed = TransportError("connection failed", sent=False, method="POST", path=TOKEN_PATH)
    except httpx.HTTPError as exc:  # sent, no answer: the server may have rotated; never re-sent
        failed = TransportError(f"no answer ({type(exc).__name__})", sent=True, retryable=False,
                                method="POST", path=TOKEN_PATH)
    if failed is not None:
        return failed
    try:
        body = response.json() if response.status_code == 200 else None
    except ValueError:
        body = None
    status = response.status_code
    del response
    return status, body


def exchange(http: httpx.Client, app: OAuthApp, refresh_token: SecretStr, *, location_id: str,
             attempts: int = 3, sleep: Callable[[float], None] = time.sleep,
             on_send: Callable[[], None] | None = None) -> Grant:
    """Trade ``refresh_token`` for a ``Grant``; ``on_send`` is called once per HTTP request sent (the run's
    request tally counts them as class ``auth``)."""
    failed: HighLevelError | None = None
    for attempt in range(1, attempts + 1):
        if on_send is not None:
            on_send()
        started = time.perf_counter()
        answer = _post(http, app, refresh_token)
        if isinstance(answer, TransportError) and answer.sent:
            raise answer
        if isinstance(answer, HighLevelError):
            failed = answer
        else:
            status, body = answer
            log.info("highlevel POST %s status=%s latency_ms=%.1f attempt=%d location_id=%s", TOKEN_PATH,
                     status, (time.perf_counter() - started) * 1000, attempt, location_id)
            if status == 200 and isinstance(body, dict) and body.get("access_token") and body.get(
                    "refresh_token"):
                return Grant(SecretStr(str(body["access_token"])), SecretStr(str(body["refresh_token"])),
                             float(body.get("expires_in") or 86_400))
            if status in (400, 401, 403):
                # the refresh token is used, revoked or not this app's: no record will pass (pause)
                raise AuthError(401, cause="token", method="POST", path=TOKEN_PATH)
            kind = ServerError if status >= 500 else HighLevelHTTPError  # 5xx, 429, a 200 without tokens
            failed = kind(status, method="POST", path=TOKEN_PATH)
        if attempt < attempts:
            sleep(min(2.0 ** (attempt - 1), 5.0))
    assert failed is not None
    raise failed
