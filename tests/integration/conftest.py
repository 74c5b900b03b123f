"""The production client against the sandbox: in-process (InProcessTransport) or uvicorn on loopback.

``env`` is a sandbox state with two locations and an app built with ``check_responses=True``
(a response that violates the contract becomes a 500). Every request a client sends through
``env.client(...)`` goes through ``RecordingTransport``, which validates it against the contract
(``validate_httpx_request``) and keeps it for assertions. Sleeps of the client advance the
sandbox's fake clock instead of waiting, so rate-limit and retry tests take no wall time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.highlevel import HighLevelClient, RetryPolicy
from dos2hl.highlevel.contract import find_operation, validate_httpx_request, validate_response
from tests.fakes import FakeClock

BASE = "https://services.leadconnectorhq.com"
# Retries without waiting: the waits are recorded (and advance the fake clock), never slept.
FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_cap=0.05, jitter=0.0, verify_delay=0.0)





@dataclass
class RecordingPermits:
    """A PermitSource that records every acquire and every report (status + rate-limit headers)."""

    acquired: list[str] = field(default_factory=list)
    reports: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def acquire(self, location_id: str, n: int = 1) -> None:
        self.acquired.extend([location_id] * n)

    def report(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        self.reports.append((status, {k.lower(): v for k, v in headers.items()
                                      if k.lower().startswith(("x-ratelimit", "retry-after"))}))


@dataclass
class Sent:
    method: str
    path: str
    operation: str | None
    status: int | None  # None: no complete response (timeout, reset)


class RecordingTransport(httpx.BaseTransport):
    """Validates each request (and each 2xx answer) against the contract; records what was sent."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.sent: list[Sent] = []
        self.problems: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # multipart bodies are streams until read
        problems = validate_httpx_request(request)
        self.problems += [f"{request.method} {request.url.path}: {p}" for p in problems]
        op = find_operation(request.method, request.url.path)
        entry = Sent(request.method, request.url.path, op.key if op else None, None)
        self.sent.append(entry)
        response = self.inner.handle_request(request)
        try:
            response.read()
        except httpx.HTTPError:
            response.close()
            raise  # headers came, the body did not (a dropped connection): status stays None
        entry.status = response.status_code
        if op is not None and response.is_success:
            self.problems += [f"{request.method} {request.url.path} -> {response.status_code}: {p}"
                              for p in validate_response(op, response.status_code, response.content,
                                                         content_type=response.headers.get("content-type",
                                                                                           "application/json"),
                                                         headers=dict(response.headers))]
        return response

    def close(self) -> None:
        self.inner.close()

    def operations(self) -> set[str]:
        return {s.operation for s in self.sent if s.operation}


@dataclass
class Env:
    """A sandbox state (two locations) served in-process, plus factories for clients on it."""

    state: Path
    tokens: dict[str, str]
    clock: FakeClock
    kwargs: dict[str, Any] = field(default_factory=dict)
    app: Any = None
    transport: Any = None  # the app in this process (dos2hl.sandbox.InProcessTransport)
    sleeps: list[float] = field(default_factory=list)
    clients: list[HighLevelClient] = field(default_factory=list)

    @property
    def locs(self) -> list[str]:
        return list(self.tokens)

    def start(self, **kwargs: Any) -> Env:
        from dos2hl.sandbox import InProcessTransport, create_app

        self.kwargs = {"clock": self.clock, "check_responses": True, **kwargs}
        self.app = create_app(self.state, **self.kwargs)
        self.transport = InProcessTransport(self.app)
        return self

    def restart(self, **kwargs: Any) -> Env:
        """Drop the app (closing its database) and build a new one on the same state folder."""
        for c in self.clients:
            c.close()
        self.clients.clear()
        self.transport.close()
        self.app.state.store.close()
        return self.start(**{**self.kwargs, **kwargs})

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def client(self, loc: int = 0, *, token: str | None = None, location_id: str | None = None,
               retry: RetryPolicy = FAST, **kw: Any) -> tuple[HighLevelClient, RecordingTransport]:
        location_id = location_id or self.locs[loc]
        transport = RecordingTransport(self.transport)
        c = HighLevelClient(BASE, SecretStr(self.tokens[self.locs[loc]] if token is None else token),
                            location_id, transport=transport, retry=retry,
                            sleep=kw.pop("sleep", self.sleep), **kw)
        self.clients.append(c)
        return c, transport

    def dump(self, loc: int = 0) -> dict[str, Any]:
        from dos2hl.sandbox import dump

        return dump(self.state)["locations"][self.locs[loc]]

    def close(self) -> None:
        for c in self.clients:
            c.close()
        if self.app is not None:
            self.transport.close()
            self.app.state.store.close()


@pytest.fixture()
def make_env(tmp_path: Path) -> Iterator[Any]:
    from dos2hl.sandbox import init_locations

    made: list[Env] = []

    def make(locations: int = 2, allow_duplicates: bool = False, **kwargs: Any) -> Env:
        state = tmp_path / f"state{len(made)}"
        tokens = init_locations(state, locations, allow_duplicates=allow_duplicates)
        env = Env(state, tokens, kwargs.pop("clock", FakeClock())).start(**kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture()
def env(make_env: Any) -> Env:
    return make_env()


@contextlib.contextmanager
def live_sandbox(state: Path, **kwargs: Any) -> Iterator[str]:
    """The sandbox under uvicorn on 127.0.0.1 (a free port), responses checked; yields its base URL."""
    from dos2hl.sandbox import running

    with running(state, check_responses=True, **kwargs) as base:
        yield base
