"""The one boundary where httpx exceptions and non-2xx responses become dos2hl errors.

``translate_httpx`` maps every httpx exception to the most specific dos2hl error (a test checks that
none is unmapped); ``error_from_response`` classifies a non-2xx response. Neither ever copies a
request or a response body into the error: only status, path template, traceId and stable key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from ..errors import (
    AlreadyExistsError,
    AuthError,
    BadRequestError,
    DailyLimitError,
    DuplicateContactError,
    HighLevelError,
    HighLevelHTTPError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnprocessableError,
)
from .retry import parse_retry_after

__all__ = ["HTTPX_ERRORS", "ALREADY_EXISTS_FRAGMENTS", "AUTH_CAUSES", "translate_httpx",
           "error_from_response", "says_already_exists", "auth_cause", "trace_id_of", "json_or_none",
           "server_message", "daily_reset_at"]

# httpx class -> (dos2hl class, sent: may the request have reached HighLevel?, retryable)
HTTPX_ERRORS: dict[type[Exception], tuple[type[TransportError], bool, bool]] = {
    httpx.ConnectTimeout: (RequestTimeoutError, False, True),
    httpx.PoolTimeout: (RequestTimeoutError, False, True),
    httpx.ReadTimeout: (RequestTimeoutError, True, True),
    httpx.WriteTimeout: (RequestTimeoutError, True, True),
    httpx.TimeoutException: (RequestTimeoutError, True, True),
    httpx.ConnectError: (TransportError, False, True),
    httpx.ReadError: (TransportError, True, True),
    httpx.WriteError: (TransportError, True, True),
    httpx.CloseError: (TransportError, True, True),
    httpx.NetworkError: (TransportError, True, True),
    httpx.ProxyError: (TransportError, False, True),
    httpx.RemoteProtocolError: (TransportError, True, True),
    httpx.LocalProtocolError: (TransportError, False, False),
    httpx.ProtocolError: (TransportError, True, False),
    httpx.UnsupportedProtocol: (TransportError, False, False),
    httpx.DecodingError: (TransportError, True, False),
    httpx.TooManyRedirects: (TransportError, True, False),
    httpx.TransportError: (TransportError, True, True),
    httpx.RequestError: (TransportError, True, False),
    httpx.HTTPStatusError: (TransportError, True, False),
    httpx.HTTPError: (TransportError, True, False),
    httpx.StreamError: (TransportError, True, False),  # misuse of a streamed body: not retried
    httpx.StreamConsumed: (TransportError, True, False),
    httpx.StreamClosed: (TransportError, True, False),
    httpx.ResponseNotRead: (TransportError, True, False),
    httpx.RequestNotRead: (TransportError, False, False),
    httpx.InvalidURL: (TransportError, False, False),
    httpx.CookieConflict: (TransportError, False, False),
}


def translate_httpx(exc: Exception, *, method: str, path: str, stable_key: str | None) -> HighLevelError:
    """The dos2hl error for an httpx exception (most specific class in its MRO wins)."""
    for cls in type(exc).__mro__:
        if cls in HTTPX_ERRORS:
            target, sent, retryable = HTTPX_ERRORS[cls]
            # the class name only: httpx/httpcore messages can quote URLs; bodies never reach them
            return target(f"no answer from HighLevel: {type(exc).__name__}", sent=sent, retryable=retryable,
                          method=method, path=path, stable_key=stable_key, ambiguous=sent)
    raise TypeError(f"not an httpx exception: {type(exc).__name__}")


def json_or_none(response: httpx.Response) -> Any:
    """The decoded JSON body, or None when there is none or it is not JSON."""
    try:
        return json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return None


def trace_id_of(response: httpx.Response, body: Any = None) -> str | None:
    """HighLevel's traceId: from a header when present, else the body's ``traceId`` key."""
    for name in ("x-trace-id", "traceid", "trace-id", "x-request-id"):
        if response.headers.get(name):
            return response.headers[name][:100]
    trace = body.get("traceId") if isinstance(body, dict) else None
    if isinstance(trace, str):
        return trace[:100]
    return None


# "property x should not exist", "email must be an email", "pageLimit should not be empty"
_FIELD = re.compile(r"^(?:property\s+)?([A-Za-z_][\w.\[\]]*)\s+(?:must|should)\b")


def _field_names(message: Any) -> tuple[str, ...]:
    """Property names out of NestJS messages ("property x should not exist", "email must be ...")."""
    items = message if isinstance(message, list) else [message]
    names: list[str] = []
    for m in items:
        match = _FIELD.match(m) if isinstance(m, str) else None
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return tuple(names)


# What HighLevel's 400s say when the thing is already there (docs/highlevel-errors.md, with sources):
# "Could not create relation: duplicate relation of object Ids for given association <id>" (a relation;
# highlevel-api-docs#73), "... already exists" (keys of associations, objects, fields, values, tags).
ALREADY_EXISTS_FRAGMENTS = ("already exist", "duplicate relation")


def says_already_exists(body: Any) -> bool:
    """Whether an error body's ``message`` (a string, or NestJS's list) says the thing already exists;
    case-insensitive, on fragments that survive rewording around them. Never copies the message."""
    message = body.get("message") if isinstance(body, dict) else None
    items = message if isinstance(message, list) else [message]
    return any(isinstance(m, str) and any(f in m.lower() for f in ALREADY_EXISTS_FRAGMENTS) for m in items)


# What a 401/403 is about, from HighLevel's message (docs/highlevel-errors.md, "Tokens, scopes, locations"):
# (fragment, cause), first match wins; case-insensitive. Which causes pause a location: highlevel/systemic.py.
AUTH_CAUSES: tuple[tuple[str, str], ...] = (
    ("invalid jwt", "token"),  # highlevel-api-docs#213: unreadable, expired or revoked token
    ("access token is invalid", "token"),  # the spec's DTO example
    ("not authorized for this scope", "scope"),  # #319: the token lacks the route's scope
    ("does not have access to this location", "location"),  # #213, n8n#11353
    ("location is not accessible from this token", "location"),  # n8n#37571
    ("user does not exist", "user"),  # #205: GET /users/{userId} of a user that is not there
    ("iam error", "path"),  # #306: a path in the wrong letter case
    ("do not have access to this feature", "feature"),  # ghl-marketplace-app-template#13
)


def auth_cause(body: Any) -> str:
    """What a 401/403 body's ``message`` says the refusal is about (``AUTH_CAUSES``), else ``unknown``.
    Returns a code; never copies the message."""
    message = body.get("message") if isinstance(body, dict) else None
    items = message if isinstance(message, list) else [message]
    for item in items:
        if isinstance(item, str):
            low = item.lower()
            for fragment, cause in AUTH_CAUSES:
                if fragment in low:
                    return cause
    return "unknown"


def error_from_response(response: httpx.Response, *, method: str, path: str,
                        stable_key: str | None) -> HighLevelHTTPError:
    """Classify a non-2xx response."""
    body = json_or_none(response)
    status = response.status_code
    kw: dict[str, Any] = dict(method=method, path=path, trace_id=trace_id_of(response, body),
                              stable_key=stable_key)
    meta = body.get("meta") if isinstance(body, dict) else None
    if status == 400 and isinstance(meta, dict) and isinstance(meta.get("contactId"), str):
        matching = meta.get("matchingField")
        return DuplicateContactError(status, existing_id=meta["contactId"],
                                     matching_field=matching if isinstance(matching, str) else None, **kw)
    if status == 429:
        if response.headers.get("x-ratelimit-daily-remaining", "").strip() == "0":  # the day is spent
            return DailyLimitError(status, reset_at=daily_reset_at(response.headers), **kw)
        return RateLimitedError(status, retry_after=parse_retry_after(response.headers), **kw)
    if status == 422:
        message = body.get("message") if isinstance(body, dict) else None
        return UnprocessableError(status, fields=_field_names(message), ambiguous=True, **kw)
    if status >= 500:
        return ServerError(status, ambiguous=True, **kw)
    if status == 400 and says_already_exists(body):
        return AlreadyExistsError(status, **kw)
    if status in (401, 403):
        return AuthError(status, cause=auth_cause(body), **kw)
    cls: type[HighLevelHTTPError] = {400: BadRequestError, 404: NotFoundError}.get(status, HighLevelHTTPError)
    return cls(status, **kw)


def daily_reset_at(headers: Any, now: float | None = None) -> float:
    """When a spent daily quota comes back (epoch seconds): ``Retry-After`` when HighLevel sends one
    longer than a minute (undocumented, read defensively), else the next UTC midnight of the answer's
    ``Date`` (the server's clock; ours without one). HighLevel sends no reset header (NOTES.md section 4);
    the governor's ``reset_offset_s`` moves its own day."""
    import datetime as dt
    import email.utils
    import time

    if now is None:
        try:
            now = email.utils.parsedate_to_datetime(headers.get("date", "")).timestamp()
        except (TypeError, ValueError):
            now = time.time()
    wait = parse_retry_after(headers, now) if headers.get("retry-after") else None
    if wait is not None and wait > 60:
        return now + wait
    today = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.timezone.utc).timestamp()


def server_message(body: Any) -> str:
    """The ``message`` of an error body, at most 300 characters (a list joined): for endpoints whose
    wording names a limit or a parameter, never a record (the sandbox's importer)."""
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return message[:300] if isinstance(message, str) else ""

