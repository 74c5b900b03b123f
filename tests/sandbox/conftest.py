"""Fixtures: a sandbox state with two locations, the app in-process, a controllable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock

API = "2021-07-28"
CAL = "2021-04-15"



@dataclass
class Sandbox:
    state: Path
    tokens: dict[str, str]
    clock: FakeClock
    kwargs: dict[str, Any] = field(default_factory=dict)
    client: Any = None

    @property
    def locs(self) -> list[str]:
        return list(self.tokens)

    def headers(self, loc: int = 0, version: str = API) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[self.locs[loc]]}", "Version": version}

    def start(self, **kwargs: Any) -> "Sandbox":
        from starlette.testclient import TestClient

        from dos2hl.sandbox import create_app

        self.kwargs = {"clock": self.clock, "check_responses": True, **kwargs}
        self.client = TestClient(create_app(self.state, **self.kwargs))
        return self

    def restart(self) -> "Sandbox":
        self.client.app.state.store.close()
        return self.start(**{k: v for k, v in self.kwargs.items()})

    def post(self, path: str, json: Any = None, loc: int = 0, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self.headers(loc), **kw)

    def get(self, path: str, loc: int = 0, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(loc), **kw)

    def contact(self, loc: int = 0, **fields: Any) -> dict[str, Any]:
        r = self.post("/contacts/", {"locationId": self.locs[loc], **fields}, loc=loc)
        assert r.status_code == 201, r.text
        return r.json()["contact"]


@pytest.fixture()
def make_sandbox(tmp_path: Path) -> Any:
    from dos2hl.sandbox import init_locations

    def make(locations: int = 2, allow_duplicates: bool = False, **kwargs: Any) -> Sandbox:
        clock = kwargs.pop("clock", FakeClock())
        tokens = init_locations(tmp_path / "state", locations, allow_duplicates=allow_duplicates)
        return Sandbox(tmp_path / "state", tokens, clock).start(**kwargs)

    return make


@pytest.fixture()
def sb(make_sandbox: Any) -> Sandbox:
    return make_sandbox()
