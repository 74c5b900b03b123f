"""Issue 17: a systemic failure (a token revoked mid-run, HighLevel failing in a row) pauses its location:
nothing is marked failed, the other location completes, and resuming the same run id once the cause is
fixed completes it with every record exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pyarrow.compute as pc
import pytest

from dos2hl.pipeline import MigrateParams, migrate
from dos2hl.storage import open_store
from dos2hl.writing.ledger import read_ledger
from tests.migrate.conftest import BASE, EXPORT_DATE, World


def _opts(w: World, **kw: Any) -> MigrateParams:
    base = {"source": str(w.export), "mapping": str(w.mapping), "locations": str(w.locations),
            "export_date": EXPORT_DATE, "sample": 0, "workers": 2}
    return MigrateParams(**{**base, **kw})


def _sandbox(w: World, method: str, **kw: Any) -> httpx.Response:
    """The sandbox's outage control (a client would close the shared in-process transport)."""
    response = w.transport.handle_request(httpx.Client(base_url=BASE).build_request(
        method, "/_sandbox/outages", **kw))
    response.read()
    return response


def held_once(w: World) -> tuple[int, int]:
    """(contacts, records) the sandbox holds; each of our keys at most once."""
    contacts = records = 0
    for loc in w.loc_ids:
        d = w.dump(loc)
        sids = [next((f.get("value") for f in c.get("customFields", [])
                      if f.get("value") and str(f.get("value")).startswith(f"{loc}:")), c["id"])
                for c in d["contacts"]]
        assert len(d["contacts"]) == len(set(sids)), f"duplicate contacts in {loc}"
        contacts += len(d["contacts"])
        for key, recs in d["objects"].items():
            keys = [r["properties"]["source_id"] for r in recs]
            assert len(keys) == len(set(keys)), f"duplicate records in {key}"
            records += len(recs)
    return contacts, records


def _failed_rows(run_uri: str) -> int:
    t = read_ledger(open_store(run_uri))
    return int(pc.sum(pc.equal(t.column("outcome"), "failed")).as_py() or 0) if t.num_rows else 0


def _written(out: dict[str, Any], loc: str) -> Counter[str]:
    return Counter({obj: row["written"] for obj, row in out["locations"][loc]["objects"].items()})


def _reconciles(out: dict[str, Any]) -> None:
    for loc, data in out["locations"].items():
        for obj, r in data["objects"].items():
            assert r["staged"] == (r["written"] + r["failed"] + r["held"] + r["excluded"]
                                   + r.get("pending", 0)), (loc, obj, r)


@pytest.mark.parametrize("kind", ["token", "scope", "location"])
def test_a_token_revoked_mid_run_pauses_its_location_and_resume_completes_it(world: World, kind: str) -> None:
    w = world
    lid = w.loc_ids["L001"]
    assert _sandbox(w, "POST", json={"location_id": lid, "after": 5, "kind": kind}).status_code == 200
    out = migrate(_opts(w, run_id="r-pause"), client_factory=w.factory)
    assert out["status"] == "paused"
    assert list(out["paused"]) == ["L001"]
    status = 403 if kind == "location" else 401
    assert out["paused"]["L001"].startswith(f"HighLevel answered {status} ({kind}) on ")
    assert "next" in out and "dos2hl resume r-pause" in out["next"]
    _reconciles(out)
    l1 = out["locations"]["L001"]["objects"]
    assert sum(r["failed"] + r["held"] for r in l1.values()) == 0  # nothing dead-lettered
    assert l1["patient"]["written"] == 5 and l1["patient"]["pending"] > 0
    l2 = out["locations"]["L002"]["objects"]
    assert all(r["written"] + r["excluded"] == r["staged"] for r in l2.values())  # the other one completed
    run_uri = out["paths"]["json"].rsplit("/report/", 1)[0]
    assert _failed_rows(run_uri) == 0
    assert out["pending"]["count"] == 0  # report/pending.csv: no dead letters
    if kind != "token":  # the way back is the same for every kind: the token's case goes all the way
        return
    assert _sandbox(w, "DELETE").json() == {"restored": [lid]}
    again = migrate(_opts(w, run_id="r-pause"), client_factory=w.factory)
    assert again["status"] == "completed", again["reconciliation"]
    assert not again["paused"]
    contacts, records = held_once(w)
    written = _written(again, "L001") + _written(again, "L002")
    assert contacts == written["patient"]
    assert records == sum(n for obj, n in written.items() if obj != "patient")


def test_a_row_of_5xx_pauses_its_location_without_failing_and_resumes(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    monkeypatch.setenv("DOS2HL_HIGHLEVEL_PAUSE_AFTER", "3")
    lid = w.loc_ids["L002"]
    _sandbox(w, "POST", json={"location_id": lid, "after": 4, "kind": "5xx"})
    out = migrate(_opts(w, run_id="r-5xx"), client_factory=w.factory)
    assert out["status"] == "paused" and list(out["paused"]) == ["L002"]
    assert out["paused"]["L002"].startswith("3 consecutive HighLevel failures (5xx or no answer) after "
                                            "retries; last: ServerError 503 on ")
    _reconciles(out)
    assert sum(r["failed"] + r["held"] for r in out["locations"]["L002"]["objects"].values()) == 0
    run_uri = out["paths"]["json"].rsplit("/report/", 1)[0]
    t = read_ledger(open_store(run_uri), location="L002").to_pylist()
    # the two outages before the third were written failed when they came, then taken back
    assert Counter(r["outcome"] for r in t if r["op"] in ("create", "pause") and not r["hl_id"]) == \
        {"failed": 2, "pending": 2}
    assert out["pending"]["count"] == 0
    _sandbox(w, "DELETE")
    again = migrate(_opts(w, run_id="r-5xx"), client_factory=w.factory)
    assert again["status"] == "completed", again["reconciliation"]
    held_once(w)


# ---- the writer alone: its one failure path decides between a dead letter and a pause ---------------------
def _writer(tmp_path: Any, pause_after: int = 3) -> Any:
    from dos2hl.writing.ledger import IdMap, LedgerWriter
    from dos2hl.writing.writer import LocationSchema, ShardWriter

    store = open_store(str(tmp_path / "run"))
    ledger = LedgerWriter(store, "r-unit", writer="s000-unit")
    return ShardWriter(None, LocationSchema("loc-1", {}, {}, False), ledger, IdMap(),  # type: ignore[arg-type]
                       run_id="r-unit", location="L001", pause_after=pause_after), store


def test_the_writer_pauses_on_a_revoked_token_and_writes_no_failed_op(tmp_path: Any) -> None:
    from dos2hl.errors import AuthError, LocationPaused

    w, store = _writer(tmp_path)
    revoked = AuthError(401, cause="token", method="POST", path="/contacts/", stable_key="k1")
    with pytest.raises(LocationPaused) as paused:
        w._fail("patient", "k1", "1", revoked, {})
    assert paused.value.location == "L001"
    assert paused.value.reason == "HighLevel answered 401 (token) on POST /contacts/"
    w.ledger.flush()
    t = read_ledger(store)
    assert t.num_rows == 0 and not w.result.failed and not w.ids.failed()
    # a 401 that is one record's (#205: a user that does not exist) stays a dead letter
    w._fail("patient", "k2", "2", AuthError(401, cause="user", method="GET", path="/users/{userId}"), {})
    w.ledger.flush()
    assert read_ledger(store).column("outcome").to_pylist() == ["failed"] and w.result.failed["patient"] == 1


def test_a_row_of_outages_pauses_and_takes_its_failures_back_while_a_broken_row_does_not(
        tmp_path: Any) -> None:
    from dos2hl.errors import LocationPaused, ServerError, UnprocessableError
    from dos2hl.execution.report import pending

    w, store = _writer(tmp_path, pause_after=3)
    down = ServerError(503, method="POST", path="/contacts/")
    w._fail("patient", "a", "1", down, {})
    invalid = UnprocessableError(422, method="POST", path="/contacts/")
    w._fail("patient", "b", "2", invalid, {})  # one record's answer: ends the row
    w._fail("patient", "c", "3", down, {})
    w._op("patient", "d", "4", "hl-d", "create", "created")  # a success ends it too
    w._fail("patient", "e", "5", down, {})
    w._fail("patient", "f", "6", down, {})
    assert w.result.failed["patient"] == 5
    with pytest.raises(LocationPaused) as paused:
        w._fail("patient", "g", "7", down, {})  # the third in a row
    assert paused.value.reason.startswith("3 consecutive HighLevel failures")
    w.ledger.flush()
    assert w.result.failed["patient"] == 3  # a, b, c: the row's e and f are pending, g never written
    assert sorted(w.ids.failed()) == ["a", "b", "c"]
    assert sorted(r["stable_key"] for r in pending(str(tmp_path / "run"))) == ["a", "b", "c"]
    rows = [(r["stable_key"], r["op"], r["outcome"]) for r in read_ledger(store).to_pylist()]
    assert ("e", "pause", "pending") in rows and ("f", "pause", "pending") in rows
    assert not [r for r in rows if r[0] == "g"]


def test_a_token_revoked_while_the_sample_waits_for_approval_pauses_at_discovery(world: World) -> None:
    """Revoked between the phases (a deployment waits hours for an approval): the full phase's first reads
    are refused, the location pauses there, the other one completes; restored, the run resumes."""
    w = world
    lid = w.loc_ids["L002"]

    def approve(sample: dict[str, Any]) -> bool:
        assert sample["status"] == "incomplete" and not sample["paused"]
        _sandbox(w, "POST", json={"location_id": lid, "after": 0, "kind": "token"})  # revoked now
        return True

    out = migrate(_opts(w, run_id="r-gap", sample=3), client_factory=w.factory, approve=approve)
    assert out["status"] == "paused" and list(out["paused"]) == ["L002"], out["reconciliation"]
    assert out["paused"]["L002"].startswith("HighLevel answered 401 (token) on ")
    _reconciles(out)
    assert sum(r["failed"] + r["held"] for d in out["locations"].values() for r in d["objects"].values()) == 0
    l1 = out["locations"]["L001"]["objects"]
    assert all(r["written"] + r["excluded"] == r["staged"] for r in l1.values())
    _sandbox(w, "DELETE")
    again = migrate(_opts(w, run_id="r-gap", sample=3, approve=True), client_factory=w.factory)
    assert again["status"] == "completed", again["reconciliation"]
    held_once(w)
