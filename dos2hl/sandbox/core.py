"""What every endpoint handler shares: the request context, the error type, the registry.

Handlers are plain functions ``handler(ctx) -> (status, body)`` registered per operation key
(``<spec>:<operationId>``, unique across spec files). They raise ``ApiError`` for answers other
than success; the dispatcher (``app.py``) has already done auth, limits, scopes, tenancy and
contract validation before a handler runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..highlevel.contract import Operation
from .store import Store, new_id

__all__ = ["ApiError", "Ctx", "Settings", "HANDLERS", "handler", "iso", "new_id", "MAX_BODY_BYTES",
           "MAX_JSON_DEPTH", "read_body", "json_depth"]

#: The largest request body the sandbox reads (HighLevel's importer and gateway: 30 MB); larger -> 413.
MAX_BODY_BYTES = 30 * 1024 * 1024
#: Deeper JSON is refused with 422 (the parser and the contract validator recurse).
MAX_JSON_DEPTH = 64


class ApiError(Exception):
    """An HTTP answer other than success, shaped like HighLevel's (NestJS) error bodies."""

    def __init__(self, status: int, message: str | list[str], *, error: str | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}")
        self.status, self.message, self.error, self.meta = status, message, error, meta

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"statusCode": self.status, "message": self.message}
        if self.error:
            out["error"] = self.error
        if self.meta is not None:
            out["meta"] = self.meta
        return out


async def read_body(request: Any, cap: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, read from the stream, at most ``cap`` bytes: a ``Content-Length`` over the
    cap is refused unread; without one (chunked), reading stops at ``cap + 1`` bytes. Over -> 413."""
    too_large = ApiError(413, f"The request body is larger than {cap // 2**20} MB", error="Payload Too Large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > cap:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (iterative: no recursion limit)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            deepest = max(deepest, d)
            todo.extend((x, d + 1) for x in v)
    return deepest


@dataclass(frozen=True)
class Settings:
    """Per-app behaviour knobs (the ``serve`` options)."""

    index_lag_s: float = 0.0
    allow_duplicates: bool = False  # default for locations that do not say otherwise


@dataclass
class Ctx:
    """One authenticated, validated request."""

    store: Store
    settings: Settings
    op: Operation
    location_id: str
    now: float
    query: dict[str, list[str]]
    body: Any = None  # parsed JSON, or {"fields": {...}, "files": {...}} for multipart
    params: dict[str, str] = field(default_factory=dict)
    memo: dict[Any, Any] = field(default_factory=dict)  # what a handler keeps for the request (imports.py)

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def location(self) -> dict[str, Any]:
        loc = self.store.location(self.location_id)
        assert loc is not None
        return loc

    def iso(self) -> str:
        return iso(self.now)

    def own(self, kind: str, doc_id: str, what: str) -> dict[str, Any]:
        """The document if this location owns it: 404 when absent, 403 when another's."""
        found = self.store.get(kind, doc_id)
        if found is None:
            raise ApiError(404, f"{what} not found", error="Not Found")
        loc, doc = found
        if loc != self.location_id:
            raise ApiError(403, "The token does not have access to this location.")
        return doc

    def save(self, kind: str, doc: dict[str, Any], *, indexed: bool = False) -> None:
        self.store.put(kind, self.location_id, doc, now=self.now,
                       lag=self.settings.index_lag_s if indexed else 0.0)

    def remove(self, kind: str, doc_id: str, *, indexed: bool = False) -> None:
        self.store.delete(kind, doc_id, now=self.now, lag=self.settings.index_lag_s if indexed else 0.0)


Handler = Callable[[Ctx], tuple[int, Any]]
HANDLERS: dict[str, Handler] = {}


def handler(*keys: str) -> Callable[[Handler], Handler]:
    """Register a function for one or more operation keys."""

    def deco(fn: Handler) -> Handler:
        for key in keys:
            HANDLERS[key] = fn
        return fn

    return deco


def iso(ts: float) -> str:
    """HighLevel's timestamp format: ISO 8601 UTC with milliseconds and ``Z``."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
