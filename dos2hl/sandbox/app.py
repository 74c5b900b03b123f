"""The sandbox ASGI app: HighLevel API v2 paths plus admin paths under ``/_sandbox/``.

Every API request goes through the same gate, in the order the real API applies it: route
(404) -> token (401) -> body size (413; the body is read only now, from the stream, at most 30 MB
+ 1 byte) -> [with fault ``concurrency``: a handling slot, waited for in arrival order] -> rate
limit (429: counted when handled) -> faults -> scope (401) -> location (403) -> JSON (400 malformed,
422 nested deeper than 64 levels) -> contract (422) -> handler. Then the response gets the
rate-limit headers and one journal line (every answer, refusals included). An OAuth access token past
its lifetime is refused like an unknown one (401 ``Invalid JWT``); ``POST /oauth/token`` (``oauth.py``)
is outside this gate: no bearer token, no rate limit, one journal line of operation ``oauth-token``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..highlevel import contract
from . import endpoints  # noqa: F401  (registers the handlers)
from .core import HANDLERS, MAX_JSON_DEPTH, ApiError, Ctx, Settings, json_depth, read_body
from .faults import Faults, parse_faults
from .journal import Journal
from .limits import RateLimiter
from .multipart import parse_form
from .oauth import JOURNAL_OPERATION, TOKEN_PATH, OAuthServer, OAuthSettings, register
from .store import Store

__all__ = ["create_app", "SandboxReset"]


class SandboxReset(ConnectionResetError):
    """Raised after the response has started, so the server drops the connection (fault ``reset``)."""


# Scopes for operations whose spec security lists none (template prefix -> scope family).
_FALLBACK_SCOPES = (
    ("/objects/{schemaKey}/records", "objects/record"),
    ("/locations/{locationId}/customFields", "locations/customFields"),
    ("/locations/{locationId}/customValues", "locations/customValues"),
    ("/locations/{locationId}/tags", "locations/tags"),
    ("/contacts/", "contacts"),
    ("/medias/", "medias"),
)
# Operations a sub-account token may call although the spec says Agency-Access (NOTES.md §2.5:
# reports vary; a migration needs them).
_AGENCY_ALLOWED = frozenset({"objects:create-custom-object-schema"})
_TOO_DEEP = object()
_LIMIT_MESSAGES = {"burst": "Too many requests: the burst limit of this app and location is reached",
                   "daily": "Daily API request limit reached"}


def required_scope(op: contract.Operation) -> str | None:
    """The scope a token needs for ``op`` (the spec's, else the family's by method)."""
    if op.scopes:
        return op.scopes[0]
    for prefix, family in _FALLBACK_SCOPES:
        if op.template.startswith(prefix):
            return f"{family}.readonly" if op.method == "GET" else f"{family}.write"
    return None


def create_app(state_dir: Path, *, burst: tuple[int, float] = (100, 10.0), daily: int = 200_000,
               faults: str | None = None, index_lag_s: float = 0.0, clock: Callable[[], float] = time.time,
               check_responses: bool = False, request_checks: int | None = None,
               oauth: OAuthSettings | None = None) -> Starlette:
    """The sandbox over ``state_dir`` (created if needed; locations come from ``init_locations``).

    ``check_responses`` validates every API response against the contract and turns a mismatch
    into a 500 naming the problems: tests switch it on. ``request_checks``: None validates every
    request against the contract (HighLevel's 422); N validates each operation's first N requests and
    one in N after (a volume test's thousands of same-shaped writes; the contract tests check all).
    ``oauth``: the token endpoint's access-token lifetime and refresh rotation (``oauth.py``).
    """
    state_dir = Path(state_dir)
    store = Store(state_dir)
    api = _Api(store, RateLimiter(store, burst[0], burst[1], daily), Faults(parse_faults(faults)),
               Journal(state_dir), Settings(index_lag_s=index_lag_s), clock, check_responses)
    api.request_checks = request_checks
    api.oauth = tokens = OAuthServer(store, oauth or OAuthSettings())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "locations": len(store.locations())})

    from .imports import import_endpoint

    async def imports(request: Request) -> Response:
        return await import_endpoint(request, store, clock)

    async def outages(request: Request) -> Response:
        """Fault ``outage`` while the sandbox runs: POST starts one, DELETE ends one (``?location_id=``)
        or all, GET lists them."""
        from .faults import Outage

        if request.method == "POST":
            try:
                data = json.loads(await request.body())
                api.faults.set_outage(Outage(str(data["location_id"]), int(data.get("after", 0)),
                                             str(data.get("kind", "token"))))
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"statusCode": 400, "message": str(exc)}, status_code=400)
        elif request.method == "DELETE":
            return JSONResponse({"restored": api.faults.restore(request.query_params.get("location_id"))})
        return JSONResponse({"outages": [vars(o) for o in api.faults.outages.values()]})

    async def oauth_token(request: Request) -> Response:
        """HighLevel's ``POST /oauth/token`` (form-encoded): one journal line, never a secret."""
        started = time.perf_counter()
        status, answer, location = tokens.exchange(await read_body(request), clock())
        api.journal.write(time=clock(), method="POST", template=TOKEN_PATH, location=location,
                          status=status, latency_ms=(time.perf_counter() - started) * 1000, body=None,
                          operation=JOURNAL_OPERATION)
        return JSONResponse(answer, status_code=status)

    async def oauth_apps(request: Request) -> Response:
        """Install an OAuth app on a location: ``{"location_id", ["client_id"], ["scopes"]}`` ->
        ``{client_id, client_secret, refresh_token, code}``."""
        from .seed import MIGRATION_SCOPES

        try:
            data = json.loads(await request.body())
            out = register(store, str(data["location_id"]), list(data.get("scopes") or MIGRATION_SCOPES),
                           client_id=data.get("client_id"))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"statusCode": 400, "message": str(exc)}, status_code=400)
        return JSONResponse(out)

    app = Starlette(routes=[
        Route(TOKEN_PATH, oauth_token, methods=["POST"]),
        Route("/_sandbox/oauth", oauth_apps, methods=["POST"]),
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/outages", outages, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/imports", imports, methods=["POST"]),
        Route("/{path:path}", api),
    ])
    app.state.store = store
    app.state.state_dir = state_dir
    return app


class _Api:
    def __init__(self, store: Store, limiter: RateLimiter, faults: Faults, journal: Journal,
                 settings: Settings, clock: Callable[[], float], check_responses: bool) -> None:
        self.store, self.limiter, self.faults, self.journal = store, limiter, faults, journal
        self.settings, self.clock, self.check_responses = settings, clock, check_responses
        self.request_checks: int | None = None
        self.oauth: OAuthServer | None = None
        self._seen: dict[str, int] = {}
        self._slots: asyncio.Semaphore | None = None  # fault ``concurrency``: made in the server's loop

    def _slot(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.faults.config.concurrency)
        return self._slots

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        started = time.perf_counter()
        body = b""  # read after the token is checked, and never more than MAX_BODY_BYTES + 1
        method, path = request.method, request.url.path
        op = contract.find_operation(method, path)
        template = op.template if op else "(unmatched)"
        location: str | None = None
        fault: str | None = None
        headers: dict[str, str] = {}
        counted: float | None = None
        queued_ms = 0.0
        held = False
        try:
            if op is None:
                raise ApiError(404, f"Cannot {method} {path}", error="Not Found")
            auth = request.headers.get("authorization", "")
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            found = self.store.token(bearer) if bearer is not None else None
            if found is None or (self.oauth is not None and self.oauth.expired(str(bearer), self.clock())):
                raise ApiError(401, "Invalid JWT")  # HighLevel's body: no "error" (docs/highlevel-errors.md)
            location, app_id, scopes = found
            refused = self.faults.outage(location, op.key)  # fault ``outage``: a revoked token, 5xx
            if refused is not None:
                fault = "outage"
                raise ApiError(refused[0], refused[1], error=refused[2])
            body = await read_body(request)  # 413 over the cap
            if self.faults.config.concurrency:  # wait for a handling slot; counted when it comes
                waited = time.perf_counter()
                await self._slot().acquire()
                held = True
                queued_ms = (time.perf_counter() - waited) * 1000
            now = counted = self.clock()
            verdict = self.limiter.admit(f"{app_id}:{location}", now)
            headers = verdict.headers
            if not verdict.allowed:
                # Which limit was hit goes in the body (meta.limit); no Retry-After header, which
                # HighLevel does not document: a client waits on the X-RateLimit-* headers.
                raise ApiError(429, _LIMIT_MESSAGES[verdict.reason], error="Too Many Requests",
                               meta={"limit": verdict.reason})
            plan = self.faults.plan(op.key) if self.faults.active else None
            if plan is not None:
                if plan.latency_s:
                    await asyncio.sleep(plan.latency_s)
                fault = plan.kind
                if fault == "storm429":
                    raise ApiError(429, _LIMIT_MESSAGES["burst"], error="Too Many Requests",
                                   meta={"limit": "burst"})
                if fault == "5xx":
                    raise ApiError(plan.status, {500: "Internal Server Error", 502: "Bad Gateway",
                                                 503: "Service Unavailable"}[plan.status])
            status, payload = self._handle(op, request, body, location, scopes, now)
            if fault == "created422" and 200 <= status < 300:
                status, payload = 422, contract.unprocessable(["Unprocessable Entity"])
        except ApiError as exc:
            status, payload = exc.status, exc.body()
        finally:
            if held:
                self._slot().release()
        if not headers:
            headers = self.limiter.peek(None, self.clock())
        data = json.dumps(payload, separators=(",", ":")).encode()
        if self.check_responses and op is not None and status < 500 and status != 429:
            problems = contract.validate_response(op, status, data)
            if problems:
                status, data = 500, json.dumps({"statusCode": 500, "message": problems,
                                                "error": "Sandbox response violates the contract"}).encode()
        if fault == "timeout":
            await asyncio.sleep(self.faults.config.timeout_after)
        self.journal.write(time=self.clock(), method=method, template=template,
                           location=location, status=status,
                           latency_ms=(time.perf_counter() - started) * 1000,
                           body=body or None, operation=op.key if op else None, fault=fault,
                           counted=counted, queued_ms=queued_ms)
        raw_headers = [(b"content-type", b"application/json; charset=utf-8"),
                       (b"content-length", str(len(data)).encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        if fault == "reset":
            raise SandboxReset("sandbox fault: connection reset")
        await send({"type": "http.response.body", "body": data})

    def _checks(self, key: str) -> bool:
        """Whether this request is validated against the contract (``request_checks``)."""
        if self.request_checks is None:
            return True
        seen = self._seen[key] = self._seen.get(key, 0) + 1
        return seen <= self.request_checks or seen % self.request_checks == 0

    def _handle(self, op: contract.Operation, request: Request, body: bytes, location: str,
                scopes: list[str], now: float) -> tuple[int, Any]:
        if op.schemes and all(s.startswith("Agency") for s in op.schemes) and op.key not in _AGENCY_ALLOWED:
            raise ApiError(401, "This route is not accessible with a sub-account token.",
                           error="Unauthorized")
        need = required_scope(op)
        if need is not None and need not in scopes:
            raise ApiError(401, "The token is not authorized for this scope.", error="Unauthorized")
        query: dict[str, list[str]] = {}
        for k, v in request.query_params.multi_items():
            query.setdefault(k, []).append(v)
        content_type = request.headers.get("content-type", "application/json")
        parsed: Any = None
        if body and content_type.startswith("multipart/form-data"):
            parsed = parse_form(body, content_type)
        elif body:
            try:
                parsed = json.loads(body)
            except ValueError:
                raise ApiError(400, "Unexpected token in JSON", error="Bad Request") from None
            except RecursionError:
                parsed = _TOO_DEEP
            if parsed is _TOO_DEEP or json_depth(parsed) > MAX_JSON_DEPTH:
                raise ApiError(422, [f"the body nests deeper than {MAX_JSON_DEPTH} levels"],
                               error="Unprocessable Entity")
        named = {op.path_params.get("locationId"), *(query.get("locationId") or []),
                 *(query.get("location_id") or [])}
        if query.get("altType") == ["location"]:
            named.update(query.get("altId") or [])
        if isinstance(parsed, dict):
            named.add(parsed.get("locationId") if isinstance(parsed.get("locationId"), str) else None)
        named.discard(None)
        if named - {location}:
            raise ApiError(403, "The token does not have access to this location.")
        problems = contract.validate_request(op, headers=dict(request.headers),
                                             query=request.query_params.multi_items(),
                                             body=body or None,
                                             content_type=content_type) if self._checks(op.key) else []
        if problems:
            raise ApiError(422, problems, error="Unprocessable Entity")
        fn = HANDLERS.get(op.key)
        if fn is None:
            raise ApiError(501, f"{op.operation_id} is not emulated by the sandbox", error="Not Implemented")
        ctx = Ctx(self.store, self.settings, op, location, now, query, parsed, dict(op.path_params))
        return fn(ctx)
