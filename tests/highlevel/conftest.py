"""A scripted fake HighLevel for client tests: httpx.MockTransport, no network, no sleeping."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.highlevel import HighLevelClient, RetryPolicy

TOKEN = "tok-SECRET-4f9a1c"
LOC = "loc123"
BASE = "https://services.leadconnectorhq.com"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def reply(status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=dict(headers or {}))


@dataclass
class FakeHighLevel:
    """Routes "METHOD /path" to queued replies (the last one repeats); records every request."""

    routes: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *replies: Reply) -> FakeHighLevel:
        self.routes.setdefault(f"{method} {path}", []).extend(replies)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get(f"{request.method} {request.url.path}")
        if not queue:
            return reply(404, {"statusCode": 404, "message": f"no route {request.method} {request.url.path}"})
        r = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(r, Exception):
            raise r
        return r(request) if callable(r) else r

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    @staticmethod
    def body(request: httpx.Request) -> Any:
        return json.loads(request.content)


@dataclass
class CountingPermits:
    acquired: list[str] = field(default_factory=list)
    reported: list[int] = field(default_factory=list)

    def acquire(self, location_id: str, n: int = 1) -> None:
        self.acquired.extend([location_id] * n)

    def report(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        self.reported.append(status)


@pytest.fixture
def fake() -> FakeHighLevel:
    return FakeHighLevel()


@pytest.fixture
def permits() -> CountingPermits:
    return CountingPermits()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeHighLevel, permits: CountingPermits, sleeps: list[float]) -> Iterator[HighLevelClient]:
    policy = RetryPolicy(max_attempts=4, backoff_base=1.0, backoff_cap=8.0, jitter=0.0, verify_delay=3.0)
    with HighLevelClient(BASE, SecretStr(TOKEN), LOC, permits=permits, transport=httpx.MockTransport(fake),
                         retry=policy, sleep=sleeps.append) as c:
        yield c
