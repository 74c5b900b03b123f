"""An in-process sandbox (one fresh location per test), a recording client, and a map built from the
object map (so these tests do not depend on the proposer)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.highlevel import HighLevelClient, RetryPolicy
from dos2hl.mapping.model import Mapping
from dos2hl.mapping.propose import reference_mapping
from tests.fakes import FakeClock

BASE = "https://services.leadconnectorhq.com"
FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_cap=0.05, jitter=0.0, verify_delay=0.0)


def build_mapping() -> Mapping:
    """Every canonical column mapped to its object-map target, as a confirmed map would be."""
    return reference_mapping()


class Recording(httpx.BaseTransport):
    """Keeps (method, path) of every request sent."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append((request.method, request.url.path))
        response = self.inner.handle_request(request)
        response.read()
        return response

    def writes(self) -> list[tuple[str, str]]:
        return [s for s in self.sent if s[0] != "GET"]

    def clear(self) -> None:
        self.sent.clear()


@dataclass
class Sandbox:
    state: Path
    tokens: dict[str, str]
    clock: FakeClock
    app: Any = None
    transport: Any = None  # the app in this process (dos2hl.sandbox.InProcessTransport)
    clients: list[HighLevelClient] = field(default_factory=list)

    def client(self, loc: int = 0) -> tuple[HighLevelClient, Recording]:
        location_id = list(self.tokens)[loc]
        transport = Recording(self.transport)
        c = HighLevelClient(BASE, SecretStr(self.tokens[location_id]), location_id, transport=transport,
                            retry=FAST, sleep=self.clock.advance)  # rate-limit waits advance the fake clock
        self.clients.append(c)
        return c, transport

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.transport.close()
        self.app.state.store.close()


@pytest.fixture()
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    from dos2hl.sandbox import InProcessTransport, create_app, init_locations

    state = tmp_path / "state"
    tokens = init_locations(state, 2)
    clock = FakeClock()
    app = create_app(state, clock=clock, check_responses=True)
    sb = Sandbox(state, tokens, clock, app, InProcessTransport(app))
    yield sb
    sb.close()


@pytest.fixture(scope="session")
def mapping() -> Mapping:
    return build_mapping()


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dos2hl.generate import GenerateParams, generate

    out = tmp_path_factory.mktemp("practice")
    generate(out, GenerateParams(seed=1, patients=40, mess="clean"))
    return out / "export"
