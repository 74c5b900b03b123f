"""Exactly once across runs (issue 13.1): HighLevel, not the ledger, is the truth about what exists.

A second migration of the same export into the same sub-accounts under a new run id (the first run's
storage lost, a colleague's machine) finds everything by search pages, adopts it and creates nothing;
a record that differs from the source is updated with a before-image; rolling the second run back
deletes nothing it did not create and restores what it changed."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.migrate.conftest import EXPORT_DATE, World, make_world

# every kind of thing a run creates (searches are POSTs too, and read nothing new)
CREATES = ("/contacts/", "/records", "/opportunities/", "/calendars/events/appointments", "/notes",
           "/medias/upload-file", "/associations/relations")


def _creates(sent: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [s for s in sent if s[0] == "POST" and not s[1].endswith("/search") and s[1].endswith(CREATES)]


def _state(w: World) -> dict[str, Counter[str]]:
    out = {}
    for loc in w.loc_ids:
        d = w.dump(loc)
        out[loc] = Counter({k: len(d[k]) for k in ("contacts", "opportunities", "appointments", "notes",
                                                   "files")})
        out[loc].update({f"object:{k}": len(v) for k, v in d["objects"].items()})
    return out


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("identity")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    w = make_world(root, mp, patients=20, mess="typical", crm=True)

    def opts(**kw: Any) -> MigrateParams:
        return MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                              sample=0, executor="threads", workers=2, export_date=EXPORT_DATE, **kw)

    rep = migrate(opts(run_id="run-a"), client_factory=w.factory)
    assert rep["status"] == "completed", rep["reconciliation"]
    yield w, opts, rep, root
    w.stop()
    mp.undo()


def test_a_new_run_id_creates_nothing_and_adopts_everything(first: Any) -> None:
    from dos2hl.pipeline import migrate

    w, opts, rep_a, root = first
    before = _state(w)
    assert all(c["contacts"] and c["opportunities"] and c["notes"] for c in before.values())
    w.sent.clear()
    rep_b = migrate(opts(run_id="run-b"), client_factory=w.factory)
    assert rep_b["status"] == "completed", rep_b["reconciliation"]
    assert _creates(w.sent) == []
    assert _state(w) == before
    for loc, data in rep_b["locations"].items():
        objs = data["objects"]
        assert sum(o["created"] for o in objs.values()) == 0
        assert objs["patient"]["present"] == objs["patient"]["written"] == rep_a["locations"][loc]["objects"][
            "patient"]["written"]
        assert rep_b["already_present"][loc]["objects"]["patient"] == objs["patient"]["present"]
    # the contacts and records were found by pages, not one lookup each
    lookups = [s for s in w.sent if s[0] == "POST" and s[1].endswith("/search")]
    contacts = sum(c["contacts"] for c in before.values())
    assert len([s for s in lookups if s[1] == "/contacts/search"]) < contacts / 4


def test_after_the_storage_is_lost_a_third_run_still_creates_nothing(first: Any) -> None:
    from dos2hl.pipeline import migrate

    w, opts, _rep, root = first
    before = _state(w)
    shutil.rmtree(root / "runs")
    w.sent.clear()
    rep = migrate(opts(run_id="run-c"), client_factory=w.factory)
    assert rep["status"] == "completed", rep["reconciliation"]
    assert _creates(w.sent) == [] and _state(w) == before


def test_an_adopted_record_that_differs_is_updated_and_rollback_restores_it_deleting_nothing(
    first: Any,
) -> None:
    from dos2hl.highlevel.models import ContactUpdate
    from dos2hl.pipeline import migrate
    from dos2hl.storage import open_store
    from dos2hl.writing.ledger import read_ledger
    from dos2hl.writing.rollback import rollback

    w, opts, _rep, root = first
    loc = "L001"
    client = w.factory(loc)
    victim = next(c for c in w.dump(loc)["contacts"] if c.get("firstName"))
    client.update_contact(victim["id"], ContactUpdate(firstName="Edited-In-HighLevel"))
    before = _state(w)
    w.sent.clear()
    rep = migrate(opts(run_id="run-d"), client_factory=w.factory)
    assert rep["status"] == "completed" and _creates(w.sent) == []
    assert rep["locations"][loc]["objects"]["patient"]["updated"] == 1
    assert client.get_contact(victim["id"]).firstName == victim["firstName"]
    run = root / "runs" / "run-d"
    rows = read_ledger(open_store(str(run))).to_pylist()
    updates = [r for r in rows if r["op"] == "update" and r["outcome"] == "updated"]
    kept = [r for r in rows if r["op"] == "update" and r["outcome"] == "before-image"]
    assert len(updates) == 1 and updates[0]["detail"] == "firstName"
    assert len(kept) == 1 and kept[0]["before"].startswith("enc:v2:")  # sealed, written before the PUT
    assert kept[0]["ts"] < updates[0]["ts"]
    assert "Edited-In-HighLevel" not in (updates[0]["detail"] or "") + kept[0]["before"]
    assert not [r for r in rows if r["op"] == "create" and r["outcome"] == "created"]

    done = rollback(str(run), "run-d", w.factory)
    assert done["deleted"] == {} and done["restored"] == {"patient": 1}, done
    assert _state(w) == before  # nothing it adopted was deleted
    assert client.get_contact(victim["id"]).firstName == "Edited-In-HighLevel"


def test_a_resumed_run_keeps_its_own_unrecorded_creates_its_own(world: World, tmp_path: Path) -> None:
    """A record this run created before a crash (never recorded) is found by the inventory of the resumed
    attempt: it is the run's own (ledger op ``lookup``), so rolling the run back deletes it."""
    from dos2hl.pipeline import MigrateParams, migrate
    from dos2hl.storage import open_store
    from dos2hl.writing.ledger import read_ledger
    from dos2hl.writing.rollback import rollback

    w = world
    opts = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations), sample=0,
                          workers=1, export_date=EXPORT_DATE, run_id="crashy")
    from tests.migrate.test_resume import Crash, Killer

    def dying(loc: str):  # type: ignore[no-untyped-def]
        c = w.factory(loc)
        c._http._transport = Killer(c._http._transport, 3)  # dies after the 3rd record landed, unrecorded
        return c

    with pytest.raises(Crash):
        migrate(opts, client_factory=dying)
    made = sum(len(recs) for loc in w.loc_ids for recs in w.dump(loc)["objects"].values())
    assert made > 0
    rep = migrate(opts, client_factory=w.factory)
    assert rep["status"] == "completed"
    rows = read_ledger(open_store(str(tmp_path / "runs" / "crashy"))).to_pylist()
    assert not [r for r in rows if r["op"] == "adopt"]
    done = rollback(str(tmp_path / "runs" / "crashy"), "crashy", w.factory)
    assert done["status"] == "rolled back"
    assert sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) == 0
