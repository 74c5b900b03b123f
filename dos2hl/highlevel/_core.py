"""The request machinery under ``HighLevelClient``: permit -> send -> classify -> retry / verify.

One private method per concern (httpx style): ``_send_once`` takes a permit, sends one request,
reports the response to the permit source, writes the one log line and turns failures into dos2hl
errors; ``_run`` decides about retries and verifies ambiguous creates by lookup before any re-send.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
import pydantic
from pydantic import SecretStr

from ..errors import AuthError, HighLevelError, UnexpectedResponseError
from .errors import (
    HTTPX_ERRORS,
    error_from_response,
    json_or_none,
    server_message,
    trace_id_of,
    translate_httpx,
)
from .permits import PermitSource, UnlimitedPermits
from .retry import DEFAULT_RETRY, RetryPolicy, is_ambiguous, is_transient
from .tally import Tally, class_of, counting_as
from .tokens import FixedToken, TokenProvider

__all__ = ["Written", "Outcome", "Lookup", "API_VERSION", "CALENDARS_API_VERSION", "DEFAULT_TIMEOUT",
           "DEFAULT_LIMITS", "version_for", "secure_base_url"]

log = logging.getLogger("dos2hl.highlevel")

API_VERSION = "2021-07-28"
CALENDARS_API_VERSION = "2021-04-15"  # every operation of calendars.json
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
Outcome = Literal["created", "updated", "verified-existing"]
Lookup = Callable[[], T | None]
"""Answers "does the record this create would make already exist?" (e.g. by Source_System_ID)."""


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def secure_base_url(url: str) -> str:
    """``url`` without its trailing ``/``, if it is ``https://`` (or ``http://`` to this machine:
    127.0.0.0/8, ``::1``, ``localhost``, where the sandbox runs); else ``ConfigError``. A token and
    patient data never go over cleartext HTTP to another host."""
    import ipaddress
    from urllib.parse import urlsplit

    from ..errors import ConfigError

    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        raise ConfigError("target is not a URL (e.g. https://services.leadconnectorhq.com)") from None
    if parts.scheme == "https" and host:
        return url.strip().rstrip("/")
    if parts.scheme == "http" and host:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in _LOOPBACK_NAMES
        if loopback:
            return url.strip().rstrip("/")
        raise ConfigError(f"target http://{host} is refused: the token and patient data would cross the "
                          f"network "
                          "in cleartext; use https:// (plain http:// only for 127.0.0.1, ::1 or localhost, "
                          "e.g. the sandbox)")
    raise ConfigError(f"target must be an https:// URL (e.g. https://services.leadconnectorhq.com), "
                      f"not a {parts.scheme or 'scheme-less'} one")


def version_for(template: str) -> str:
    """The ``Version`` header HighLevel requires for a path (calendars differ)."""
    return CALENDARS_API_VERSION if template.startswith("/calendars") else API_VERSION


@dataclass(frozen=True)
class Written(Generic[T]):
    """The result of a create/upsert: the record, how it came to be, and how many sends it took."""

    value: T
    outcome: Outcome
    attempts: int


@dataclass(frozen=True)
class _Call:
    method: str
    template: str  # as the spec spells it, e.g. "/contacts/{contactId}"; logged instead of the path
    path_params: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] | None = None
    json: Any = None
    files: Any = None
    data: Mapping[str, Any] | None = None
    stable_key: str | None = None
    content: bytes | None = None  # a raw body (with its Content-Type in ``headers``)
    headers: Mapping[str, str] | None = None
    raw: bool = False  # the answer is text (``_Answer.text``), not JSON
    timeout: float | None = None  # seconds for this request, instead of the client's
    metered: bool = True  # an API request: a permit first, counted; False: outside the API's quota

    def path(self) -> str:
        return self.template.format(**{k: quote(str(v), safe="") for k, v in self.path_params.items()})


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    trace_id: str | None
    text: str | None = None  # a raw call's answer


@dataclass(frozen=True)
class _Found(Generic[T]):
    value: T


@functools.cache
def _tls() -> Any:
    """One TLS context for every client of the process (httpx's own defaults: certifi, or SSL_CERT_FILE /
    SSL_CERT_DIR). httpx builds one per client otherwise, loading the CA bundle each time: about 90 ms of
    CPU and 0.9 MB a client, measured; a run opens a client per location and shard thread."""
    return httpx.create_ssl_context()


class _Core:
    def __init__(self, base_url: str, token: SecretStr | TokenProvider, location_id: str, *,
                 permits: PermitSource | None = None, transport: httpx.BaseTransport | None = None,
                 retry: RetryPolicy = DEFAULT_RETRY, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 limits: httpx.Limits = DEFAULT_LIMITS, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        if isinstance(token, SecretStr):
            token = FixedToken(token)
        elif not isinstance(token, TokenProvider):
            raise TypeError("token must be a pydantic SecretStr or a token provider (tokens.py)")
        self.location_id = location_id
        self.retry = retry
        self._auth: TokenProvider = token  # asked per request: a renewed token is used at once
        self._permits: PermitSource = permits or UnlimitedPermits()
        self.stats: Counter[str] = Counter()  # requests sent (every attempt) and 429s, for reports
        self.tally = Tally()  # the same sends by class and minute (tally.py)
        self._scope = threading.local()  # the class a caller set for this thread's sends (counting_as)
        self._count_lock = threading.Lock()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(base_url=secure_base_url(base_url), transport=transport, timeout=timeout,
                                  limits=limits, headers={"Accept": "application/json"},
                                  verify=_tls())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(location_id={self.location_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> _Core:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- one request --------------------------------------------------------------------------------
    def _headers(self, call: _Call, token: SecretStr) -> dict[str, str]:
        return {**(call.headers or {}), "Authorization": f"Bearer {token.get_secret_value()}",
                "Version": version_for(call.template)}

    def _count_auth(self) -> None:
        """One request to the token endpoint (a refresh this client caused): class ``auth``."""
        with self._count_lock:
            self.stats["sent"] += 1
            self.tally.count("auth", time.time())

    def _send_once(self, call: _Call, attempt: int, token: SecretStr) -> _Answer:
        if call.metered:
            self._permits.acquire(self.location_id, 1)
            cls = class_of(call.method, call.template, attempt, getattr(self._scope, "cls", None))
            with self._count_lock:
                self.stats["sent"] += 1
                self.tally.count(cls, time.time())
        start = time.perf_counter()
        failed: HighLevelError | None = None
        try:
            # the headers are a temporary (no local of this frame holds the token: a traceback's
            # frames are part of what an exception keeps reachable)
            response = self._http.request(call.method, call.path(), params=call.params, json=call.json,
                                          files=call.files, data=call.data, content=call.content,
                                          headers=self._headers(call, token),
                                          timeout=call.timeout or httpx.USE_CLIENT_DEFAULT)
        except tuple(HTTPX_ERRORS) as exc:
            failed = translate_httpx(exc, method=call.method, path=call.template, stable_key=call.stable_key)
        if failed is not None:
            # raised outside the except block: "raise ... from None" would still keep the httpx
            # exception (its request, its Authorization header) as __context__
            self._log(call, attempt, start, None, None, failed)
            raise failed
        if call.metered:
            self._permits.report(self.location_id, response.status_code, response.headers)
        if response.status_code == 429:
            with self._count_lock:
                self.stats["http_429"] += 1
                self.tally.http_429 += 1
        body = json_or_none(response)
        trace_id = trace_id_of(response, body)
        if response.is_success:
            self._log(call, attempt, start, response.status_code, trace_id, None)
            return _Answer(response.status_code, body, trace_id, response.text if call.raw else None)
        err = error_from_response(response, method=call.method, path=call.template,
                                  stable_key=call.stable_key)
        if call.raw:  # a raw endpoint's own short wording of what it refused (ours: a limit, a parameter)
            err.server_message = server_message(body)
        self._log(call, attempt, start, response.status_code, trace_id, err)
        del response  # its .request holds the Authorization header, and a traceback keeps this frame's locals
        raise err

    def _log(self, call: _Call, attempt: int, start: float, status: int | None, trace_id: str | None,
             err: HighLevelError | None) -> None:
        latency_ms = round((time.perf_counter() - start) * 1000, 1)
        fields = {"location_id": self.location_id, "method": call.method, "path": call.template,
                  "status": status, "latency_ms": latency_ms, "attempt": attempt, "trace_id": trace_id,
                  "stable_key": call.stable_key, "error": type(err).__name__ if err else None}
        log.log(logging.INFO if err is None else logging.WARNING,
                "highlevel %s %s status=%s latency_ms=%s attempt=%d trace_id=%s%s", call.method,
                call.template, status if status is not None else type(err).__name__, latency_ms, attempt,
                trace_id, f" stable_key={call.stable_key}" if call.stable_key else "",
                extra={"highlevel": fields})

    # ---- retries and verification -------------------------------------------------------------------
    def _run(self, call: _Call, *, create: bool = False,
             lookup: Lookup[Any] | None = None) -> tuple[_Answer | _Found[Any], int]:
        """Send ``call`` until it succeeds or fails for good; returns (answer or found record, sends).

        A create that failed ambiguously (5xx, 422, timeout or reset after sending) is never sent again
        blindly: without ``lookup`` the error is raised; with one, the record is looked up first (after
        at least ``verify_delay``) and returned if it exists.
        """
        attempt = 0
        verify_first = False
        renewed = False  # a 401 is answered by one new token (tokens.py), once per call
        while True:
            if verify_first:
                verify_first = False
                found = self._lookup(lookup) if lookup else None
                if found is not None:
                    return _Found(found), attempt
            attempt += 1
            token = self._auth.token(self._count_auth)
            try:
                return self._send_once(call, attempt, token), attempt
            except HighLevelError as exc:
                if (not renewed and isinstance(exc, AuthError) and exc.status == 401 and exc.cause == "token"
                        and self._auth.renew(token, self._count_auth)):
                    renewed = True  # refused before anything was written: the same call, a new token
                    continue
                ambiguous = create and is_ambiguous(exc)
                again = is_transient(exc) and attempt < self.retry.max_attempts
                if ambiguous:
                    if lookup is None:
                        raise
                    if not again:  # 422, or out of attempts: one last look, then give up
                        self._sleep(self.retry.verify_delay)
                        found = self._lookup(lookup)
                        if found is not None:
                            return _Found(found), attempt
                        raise
                    verify_first = True
                elif not again:
                    raise
                delay = self.retry.delay(attempt, exc, self._rng)
                if ambiguous:
                    delay = max(delay, self.retry.verify_delay)
                self._sleep(delay)

    def _lookup(self, lookup: Lookup[Any]) -> Any:
        with counting_as(self, "lookup"):  # an ambiguous create's look for its record: class lookup
            return lookup()

    def _request(self, call: _Call) -> Any:
        """A read or an idempotent write: retried on transient failures; returns the JSON body."""
        answer, _ = self._run(call)
        assert isinstance(answer, _Answer)
        return answer.body

    def _write(self, call: _Call, parse: Callable[[Any], tuple[T, Outcome]],
               lookup: Lookup[T] | None) -> Written[T]:
        """A create (not idempotent): ambiguous failures verified by ``lookup``, never re-sent blindly."""
        result, attempts = self._run(call, create=True, lookup=lookup)
        if isinstance(result, _Found):
            return Written(result.value, "verified-existing", attempts)
        value, outcome = parse(result.body)
        return Written(value, outcome, attempts)

    @staticmethod
    def _parse(model: type[M], data: Any, call: _Call, key: str | None = None) -> M:
        """``data`` (or ``data[key]``) as ``model``; a shape error names the field, never the value."""
        try:
            if key is not None:
                if not isinstance(data, dict) or key not in data:
                    raise UnexpectedResponseError(f"HighLevel's answer has no '{key}'", method=call.method,
                                                  path=call.template, stable_key=call.stable_key)
                data = data[key]
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            where = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['type']}"
                              for e in exc.errors(include_input=False)[:5])
        # outside the except block: the ValidationError (which quotes the record) is not its __context__
        raise UnexpectedResponseError(f"HighLevel's answer is not a {model.__name__}: {where}",
                                      method=call.method, path=call.template, stable_key=call.stable_key)

    def _parse_list(self, model: type[M], data: Any, call: _Call, key: str) -> list[M]:
        items = data.get(key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise UnexpectedResponseError(f"HighLevel's answer has no '{key}' list", method=call.method,
                                          path=call.template)
        return [self._parse(model, item, call) for item in items]
