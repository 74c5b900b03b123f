"""A migration world: a generated two-location practice, an in-process sandbox provisioned for the
reference map, locations.yaml with token variables, a fallback owner in both sub-accounts."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.highlevel import HighLevelClient, RetryPolicy
from dos2hl.locations import LocationsFile, LocationTarget
from dos2hl.mapping.model import save_mapping
from dos2hl.mapping.propose import reference_mapping
from tests.fakes import FakeClock

BASE = "https://services.leadconnectorhq.com"
FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_cap=0.05, jitter=0.0, verify_delay=0.0)
MANAGER = "manager@practice.example"
EXPORT_DATE = dt.date(2024, 6, 28)


class Counting(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, sent: list[tuple[str, str, int]]) -> None:
        self.inner, self.sent = inner, sent

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self.inner.handle_request(request)
        response.read()
        self.sent.append((request.method, request.url.path, response.status_code))
        return response


@dataclass
class World:
    root: Path
    export: Path
    state: Path
    tokens: dict[str, str]  # sandbox location id -> token
    loc_ids: dict[str, str]  # export LOC_ID -> sandbox location id
    mapping: Path
    locations: Path
    clock: FakeClock
    app: Any = None
    transport: Any = None  # the app in this process (dos2hl.sandbox.InProcessTransport)
    sent: list[tuple[str, str, int]] = field(default_factory=list)
    clients: list[HighLevelClient] = field(default_factory=list)

    def start(self, **kw: Any) -> World:
        from dos2hl.sandbox import InProcessTransport, create_app

        # responses are checked against the contract in tests/sandbox and tests/integration; here the
        # volume matters (thousands of ledger records), so the app skips that check, and validates each
        # operation's first 25 requests and one in 25 after (the writes of one kind share their shape)
        self.app = create_app(self.state, clock=self.clock, burst=(10**6, 10.0),
                              **{"request_checks": 25, **kw})
        self.transport = InProcessTransport(self.app)
        return self

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()
        if self.app is not None:
            self.transport.close()
            self.app.state.store.close()
            self.app = None

    def factory(self, loc: str) -> HighLevelClient:
        lid = self.loc_ids[loc]
        c = HighLevelClient(BASE, SecretStr(self.tokens[lid]), lid,
                            transport=Counting(self.transport, self.sent),
                            retry=FAST, sleep=self.clock.advance)
        self.clients.append(c)
        return c

    def dump(self, loc: str) -> dict[str, Any]:
        from dos2hl.sandbox import dump

        return dump(self.state)["locations"][self.loc_ids[loc]]


CRM_TABLES = ("appt", "apptproc", "recall", "patref", "refsrc", "commlog", "document", "clinnote")


# generated worlds, built once per test session and parameter set (generating and provisioning cost ~6 s a
# world, most of it the ~600 provisioning requests), then copied. The templates are under
# $DOS2HL_TEST_WORLDS (tests/conftest.py: the session's temporary folder, which both xdist workers share;
# one builds a template while the other waits for it), or a folder of this process.
_TEMPLATE_DIR: list[Path] = []


def _template_root() -> Path:
    if not _TEMPLATE_DIR:
        import os

        shared = os.environ.get("DOS2HL_TEST_WORLDS")
        if shared:
            _TEMPLATE_DIR.append(Path(shared))
            _TEMPLATE_DIR[0].mkdir(parents=True, exist_ok=True)
        else:
            import atexit
            import shutil
            import tempfile

            _TEMPLATE_DIR.append(Path(tempfile.mkdtemp(prefix="dos2hl-worlds-")))
            atexit.register(shutil.rmtree, _TEMPLATE_DIR[0], True)
    return _TEMPLATE_DIR[0]


def _template(kw: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The template world for ``kw`` (built here unless it exists): its folder and what a World needs
    besides its files (tokens, location ids, the fake clock's time after provisioning)."""
    import fcntl
    import hashlib
    import json
    import os
    import shutil

    key = repr(sorted(kw.items()))
    base = _template_root()
    t_root = base / hashlib.sha256(key.encode()).hexdigest()[:16]
    with open(base / f"{t_root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (t_root / "world.json").exists():
            building = base / f"{t_root.name}.building-{os.getpid()}"
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir()
            with pytest.MonkeyPatch.context() as mp:  # its token variables: set for each copy
                t = _build_world(building, mp, **kw)
            t.stop()
            (building / "world.json").write_text(json.dumps(
                {"key": key, "tokens": t.tokens, "loc_ids": t.loc_ids, "clock": t.clock.now}))
            building.rename(t_root)
    meta = json.loads((t_root / "world.json").read_text())
    assert meta["key"] == key, (meta["key"], key)
    return t_root, meta


def make_world(root: Path, monkeypatch: pytest.MonkeyPatch, *, patients: int = 40, mess: str = "clean",
               allow_duplicates: bool = False, provisioned: bool = True, crm: bool = False,
               relations: dict[str, str] | None = None, manual_steps: bool = True, export: Path | None = None,
               locations: int = 2, **gen: Any) -> World:
    """A generated practice, ``locations`` provisioned sandbox locations (two), a confirmed map.
    ``crm=False`` maps only patients and the custom objects of issue 6 (the CRM objects skipped: tests
    of the write path's mechanics stay small); ``crm=True`` maps every object of the seed. ``export``: a
    hand-made export (tests/fixtures/...), copied and used instead of a generated one; its home offices
    are L001 and L002.

    A generated world is built once per test session for each set of arguments (the generator is
    deterministic, tests/test_golden_outputs.py) in a template folder, then each call gets its own copy
    of its files: the practice, the sandbox's state (provisioned, its users), locations.yaml and the map;
    the sandbox's location ids and tokens are the template's (random once, like every world's)."""
    import shutil

    kw: dict[str, Any] = dict(patients=patients, mess=mess, allow_duplicates=allow_duplicates,
                              provisioned=provisioned, crm=crm, relations=relations,
                              manual_steps=manual_steps, locations=locations, **gen)
    if export is not None:
        return _build_world(root, monkeypatch, export=export, **kw)
    t_root, t = _template(kw)
    root.mkdir(parents=True, exist_ok=True)
    for name in ("practice", "sandbox"):
        shutil.copytree(t_root / name, root / name, symlinks=True)
    for name in ("locations.yaml", "mapping.yaml"):
        shutil.copy2(t_root / name, root / name)
    for src, lid in t["loc_ids"].items():
        monkeypatch.setenv(f"DOS2HL_TEST_TOKEN_{src}", t["tokens"][lid])
    return World(root, root / "practice" / "export", root / "sandbox", dict(t["tokens"]), dict(t["loc_ids"]),
                 root / "mapping.yaml", root / "locations.yaml", FakeClock(t["clock"])).start()


def _build_world(root: Path, monkeypatch: pytest.MonkeyPatch, *, patients: int = 40, mess: str = "clean",
               allow_duplicates: bool = False, provisioned: bool = True, crm: bool = False,
               relations: dict[str, str] | None = None, manual_steps: bool = True, export: Path | None = None,
               locations: int = 2, fmap: Any = None, **gen: Any) -> World:
    """``make_world`` without the template: generated (or copied) and provisioned here (``fmap``: the
    confirmed map of a hand-made export in another vendor's shape, instead of the reference map)."""
    from dos2hl.generate import GenerateParams, generate
    from dos2hl.provision import provision
    from dos2hl.sandbox import add_user, init_locations

    if export is not None:
        import shutil

        shutil.copytree(export, root / "practice" / "export", ignore=shutil.ignore_patterns("*.md"))
    else:
        generate(root / "practice", GenerateParams(**{"seed": 3, "patients": patients,
                                                      "locations": locations,
                                                      "mess": mess, "images": "stub", "history_years": 2,
                                                      **gen}))
    state = root / "sandbox"
    tokens = init_locations(state, locations, allow_duplicates=allow_duplicates)
    loc_ids = dict(zip([f"L{i + 1:03d}" for i in range(locations)], tokens, strict=True))
    for src, lid in loc_ids.items():
        monkeypatch.setenv(f"DOS2HL_TEST_TOKEN_{src}", tokens[lid])
        add_user(state, lid, "Office", "Manager", MANAGER)
    lf = LocationsFile(target=BASE, fallback_owner=MANAGER, locations=[
        LocationTarget(source=src, location_id=lid, token_env=f"DOS2HL_TEST_TOKEN_{src}")
        for src, lid in loc_ids.items()])
    (root / "locations.yaml").write_text(
        __import__("yaml").safe_dump(lf.model_dump(mode="json", exclude={"path"}))
    )
    fmap = fmap or reference_mapping()
    if not crm:
        fmap = fmap.model_copy(update={"fields": [
            e.model_copy(update={"target": "skip",
                                 "reasons": ["not in this test"]}) if e.table in CRM_TABLES else e
            for e in fmap.fields]})
    if relations:
        fmap = fmap.model_copy(update={"relations": relations})
    path = save_mapping(fmap.confirm("Test Runner"), root / "mapping.yaml")
    w = World(root, root / "practice" / "export", state, tokens, loc_ids, path, root / "locations.yaml",
              FakeClock()).start()
    if provisioned:
        from dos2hl.demo import do_manual_steps

        plans = provision(fmap, lf, source=w.export, apply=True,
                          clients={loc: w.factory(loc) for loc in loc_ids})
        if manual_steps:  # what the practice's admin does by hand: the pipelines' stages
            do_manual_steps(state, plans, loc_ids)
    w.sent.clear()
    return w


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20)
    yield w
    w.stop()


@contextlib.contextmanager
def http_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *,
               faults: Callable[[World], str] | None = None,
               **sandbox: Any) -> Iterator[tuple[World, str]]:
    """A 20-patient world served over HTTP (limits lifted; ``faults(world)``: ``dos2hl sandbox serve
    --faults``; ``sandbox``: more of ``create_app``'s options, e.g. ``oauth``), its locations.yaml
    pointing at it: ``(world, base URL)``."""
    import yaml

    from dos2hl.phi import create_key_file
    from dos2hl.sandbox import running

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "k" / "phi.key")))
    monkeypatch.setenv("DOS2HL_GOVERNOR_BURST", "100000")
    monkeypatch.setenv("DOS2HL_GOVERNOR_WINDOW_S", "1")
    # A spent day whose reset is under max_wait_s away is waited for, by design (300 s by default): a
    # quota test run in the last minutes before UTC midnight sat there until it (a make test at 23:55
    # took 266 s in one). The waits here are under the 1 s window, so 5 s bounds only that one.
    monkeypatch.setenv("DOS2HL_GOVERNOR_MAX_WAIT_S", "5")
    w = make_world(tmp_path, monkeypatch, patients=20)
    w.stop()
    # as make_world's in-process app: each operation's first 25 requests validated against the contract
    # and one in 25 after (over HTTP the default validates every request; the contract has its own tests)
    with running(w.state, burst=(100000, 1.0), request_checks=25,
                 faults=faults(w) if faults else None, **sandbox) as base:
        lf = yaml.safe_load(w.locations.read_text())
        lf["target"] = base
        w.locations.write_text(yaml.safe_dump(lf))
        yield w, base
