"""A multi-location practice is written every location at once (issue 16): against the sandbox, each
location's writes span the same stretch of the run instead of following one another, and the result
is exact per location."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.migrate.conftest import EXPORT_DATE, make_world


class Stamped(httpx.BaseTransport):
    """Records (location id, monotonic time) of every write the sandbox answered."""

    def __init__(self, inner: httpx.BaseTransport, lid: str, seen: list[tuple[str, float]],
                 lock: threading.Lock) -> None:
        self.inner, self.lid, self.seen, self.lock = inner, lid, seen, lock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and "/search" not in request.url.path:
            with self.lock:
                self.seen.append((self.lid, time.monotonic()))
        return response


def clients_through(w: Any, transport: Callable[[str], httpx.BaseTransport]) -> Callable[[str], Any]:
    """A client factory for the world's locations whose requests go through ``transport(location id)``."""
    from pydantic import SecretStr

    from dos2hl.highlevel import HighLevelClient
    from tests.migrate.conftest import BASE, FAST

    def factory(loc: str) -> Any:
        lid = w.loc_ids[loc]
        c = HighLevelClient(BASE, SecretStr(w.tokens[lid]), lid, transport=transport(lid), retry=FAST,
                            sleep=w.clock.advance)
        w.clients.append(c)
        return c

    return factory


def test_six_offices_are_written_at_once_and_each_is_exact(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:

    from dos2hl.params import MigrateParams
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import migrate

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_SHARDS", "2")  # twelve units: six offices of two shards each
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20, locations=6)
    seen: list[tuple[str, float]] = []
    lock = threading.Lock()
    factory = clients_through(w, lambda lid: Stamped(w.transport, lid, seen, lock))
    try:
        rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                    sample=0, export_date=EXPORT_DATE), client_factory=factory)
        assert rep["status"] == "completed" and rep["field_diff"]["mismatches"] == 0
        spans = {}
        for lid, t in seen:
            a, b = spans.get(lid, (t, t))
            spans[lid] = (min(a, t), max(b, t))
        assert len(spans) == 6
        # every office's writes had begun before any office's ended: they overlap, not follow
        assert max(a for a, _ in spans.values()) < min(b for _, b in spans.values())
        for loc, data in rep["locations"].items():  # nothing crossed sub-accounts: each holds its own
            assert len(w.dump(loc)["contacts"]) == data["objects"]["patient"]["written"] > 0
    finally:
        w.stop()


class Gate(httpx.BaseTransport):
    """Holds each location's first sub-account read (tenancy) and first custom-field list (the schema) at a
    barrier of all the locations: a prepare that checks one location after another never gets past it."""

    def __init__(self, inner: httpx.BaseTransport, lid: str, barriers: dict[str, threading.Barrier],
                 met: set[tuple[str, str]]) -> None:
        self.inner, self.lid, self.barriers, self.met = inner, lid, barriers, met

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        kind = ("tenancy" if path.rstrip("/") == f"/locations/{self.lid}" else
                "schema" if path.endswith("/customFields") else None)
        if kind and (self.lid, kind) not in self.met:
            self.met.add((self.lid, kind))
            self.barriers[kind].wait()
        return self.inner.handle_request(request)


def test_prepare_checks_every_location_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    from dos2hl.execution import prepare
    from dos2hl.params import MigrateParams
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20, locations=3)
    barriers = {k: threading.Barrier(3, timeout=20) for k in ("tenancy", "schema")}
    met: set[tuple[str, str]] = set()
    factory = clients_through(w, lambda lid: Gate(w.transport, lid, barriers, met))
    try:
        got = prepare(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                    export_date=EXPORT_DATE), client_factory=factory)
    finally:
        w.stop()
    assert {(lid, k) for lid in w.loc_ids.values() for k in ("tenancy", "schema")} == met
    assert sorted(got.schemas) == sorted(w.loc_ids)  # every location's schema, in the export's order
    assert [t["location_id"] for t in got.tenancy.values()] == [w.loc_ids[loc] for loc in sorted(w.loc_ids)]
