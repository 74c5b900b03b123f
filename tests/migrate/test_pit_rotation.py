"""Issue 17: the admin rotates a location's private integration token while a migration runs (the old one
is refused from then on, the new one is written to the token file): the run picks it up without a
restart, and no record fails or is held."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from dos2hl.highlevel import HighLevelClient
from dos2hl.highlevel.tokens import StaticToken
from tests.migrate.conftest import BASE, EXPORT_DATE, FAST, World

ROTATE_AT = 120  # requests into the run


def _rotate(w: World, files: dict[str, Path]) -> None:
    from dos2hl.sandbox import add_token
    from dos2hl.sandbox.store import Store

    store = Store(w.state)
    try:
        for loc, lid in w.loc_ids.items():
            new = add_token(w.state, lid)
            with store.tx() as db:
                db.execute("DELETE FROM tokens WHERE token=?", (w.tokens[lid],))
            files[loc].write_text(new + "\n")
    finally:
        store.close()


def test_a_pit_rotated_mid_run_is_picked_up_from_its_file(world: World) -> None:
    from dos2hl.pipeline import MigrateParams, migrate

    w = world
    files = {loc: w.root / f"pit-{loc}.txt" for loc in w.loc_ids}
    for loc, lid in w.loc_ids.items():
        files[loc].write_text(w.tokens[lid] + "\n")
    count = {"sent": 0}
    lock = threading.Lock()

    class AdminRotates(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            with lock:
                count["sent"] += 1
                if count["sent"] == ROTATE_AT:
                    _rotate(w, files)
            return w.transport.handle_request(request)  # type: ignore[no-any-return]

    def factory(loc: str) -> HighLevelClient:
        c = HighLevelClient(BASE, StaticToken(file=files[loc]), w.loc_ids[loc], transport=AdminRotates(),
                            retry=FAST, sleep=w.clock.advance)
        w.clients.append(c)
        return c

    skip = len((w.state / "journal.jsonl").read_text().splitlines())
    done = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 sample=0, export_date=EXPORT_DATE, workers=2), client_factory=factory)
    assert count["sent"] > 2 * ROTATE_AT  # the rotation came mid-run
    assert done["status"] == "completed", done.get("paused")
    assert not [r for d in done["locations"].values() for r in d["objects"].values()
                if r["failed"] or r["held"]]
    lines = [json.loads(x) for x in (w.state / "journal.jsonl").read_text().splitlines()[skip:]]
    refused = [x for x in lines if x["status"] == 401]
    assert 1 <= len(refused) <= len(w.clients)  # at most one 401 per client, each sent once more
    assert lines[-1]["status"] != 401
