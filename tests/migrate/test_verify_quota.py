"""Issue 17, the read-back: a location whose day runs out (or whose token is refused) while its records are
read back pauses alone. The other location's verification completes, the run waits for the reset
(``waiting_for_quota``) with nothing failed, and the resumed run reads back only what was not verified:
its ``verify`` requests, counted in the sandbox's journal, are the paused location's alone. The read-back
reports progress as a write phase does (phase ``verifying``)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dos2hl.execution.status import run_status
from dos2hl.pipeline import migrate
from tests.migrate.conftest import World, make_world
from tests.migrate.test_pause import _failed_rows, _opts, _sandbox, held_once
from tests.migrate.test_quota_wait import _next_midnight, _quota


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The migration world at 20 patients (the template tests/pipeline's share): a read-back is a few
    pages a location either way."""
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20)
    yield w
    w.stop()


class _Snapshots:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def update(self, snap: dict[str, Any]) -> None:
        self.seen.append(("update", snap))

    def tick(self, snap: dict[str, Any]) -> None:
        self.seen.append(("tick", snap))

    def close(self, snap: dict[str, Any]) -> None:
        self.seen.append(("close", snap))


class _ReadBack:
    """The read-back's client factory: at its first call (the read-back starts) it notes where the journal
    is, and optionally lets ``spend(world)`` run out a location's day or revoke its token."""

    def __init__(self, w: World, spend: Any = None) -> None:
        self.w, self.spend, self.mark = w, spend, -1
        self._lock = threading.Lock()

    def __call__(self, loc: str) -> Any:
        with self._lock:  # the other location's reads start after this one's
            if self.mark < 0:
                self.mark = len(_journal(self.w))
                if self.spend is not None:
                    self.spend(self.w)
        return self.w.factory(loc)

    def lines(self) -> list[dict[str, Any]]:
        return _journal(self.w)[self.mark:]


def _journal(w: World) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (w.state / "journal.jsonl").read_text().splitlines()]


def _spend_l001(w: World) -> None:
    """L001's day allows one more request: its read-back's second read meets the spent day."""
    lid = w.loc_ids["L001"]
    used = _quota(w, "GET").json()["used_today"].get(lid, 0)
    assert _quota(w, "POST", json={"location_id": lid, "daily": used + 1}).status_code == 200


def _verify_requests(out: dict[str, Any]) -> int:
    return int(out["requests"]["by_class"].get("verify", 0))


def test_a_day_spent_during_the_read_back_pauses_that_location_and_resume_reads_back_only_it(
        world: World) -> None:
    w = world
    lid1, lid2 = w.loc_ids["L001"], w.loc_ids["L002"]
    reads, sink = _ReadBack(w, _spend_l001), _Snapshots()
    start = w.clock.now
    out = migrate(_opts(w, run_id="r-vq", verify="full"), client_factory=w.factory, verify_factory=reads,
                  progress=[sink])
    until = _next_midnight(start)
    assert out["status"] == "waiting_for_quota", (out["paused"], out["reconciliation"])
    assert out["resume_at"] == {"L001": until} and out["verify_paused"] == ["L001"]
    assert out["paused"]["L001"] == f"waiting for the daily quota reset until {until}"
    assert "dos2hl resume r-vq" in out["next"]
    # every record is written, none failed or pending: only L001's verification waits
    for loc in ("L001", "L002"):
        for obj, r in out["locations"][loc]["objects"].items():
            assert r["written"] + r["excluded"] == r["staged"] and r["failed"] == r["held"] == 0, (loc, obj)
            assert r.get("pending", 0) == 0
    run_uri = out["paths"]["json"].rsplit("/report/", 1)[0]
    assert _failed_rows(run_uri) == 0
    # L002's read-back completed: every patient of it read back, nothing of L001's counted as not found
    diff = out["field_diff"]
    assert diff["read_back"]["patient"] == out["locations"]["L002"]["objects"]["patient"]["written"] > 0
    assert not any(diff["not_found"].values()) and diff["mismatches"] == 0
    assert diff["paused"] == {"L001": out["paused"]["L001"]} and list(diff["resume_at"]) == ["L001"]
    assert "read-back waits for its daily quota** to reset at " + until in Path(out["report"]).read_text()
    first_lines = reads.lines()
    assert {x["location"] for x in first_lines} == {lid1, lid2}
    assert [x["status"] for x in first_lines if x["location"] == lid1] == [200, 429]  # stopped at once
    assert w.clock.now - start < 600  # nobody slept for the reset

    # the read-back's progress: as its shards end, then its end (L001 paused with its reset)
    verifying = [(k, s) for k, s in sink.seen if s["phase"] == "verifying"]
    assert verifying and all(s["verb"] == "verified" for _, s in verifying)
    kind, last = verifying[-1]
    assert kind == "close" and last["state"] == "paused"
    assert last["locations"]["L001"]["state"] == "paused" and last["resume_at"] == {"L001": until}
    l2 = last["locations"]["L002"]
    assert l2["state"] == "done" and l2["totals"]["pending"] == 0
    assert l2["totals"]["written"] == l2["totals"]["source"] == sum(diff["read_back"].values())
    st = run_status(run_uri.rsplit("/", 1)[0], "r-vq")  # dos2hl status RUN_ID
    assert st["state"] == "waiting_for_quota" and st["locations"]["L001"]["state"] == "waiting_for_quota"
    assert st["locations"]["L001"]["resume_at"] == until and st["locations"]["L002"]["state"] == "done"

    # the new day: the resumed run writes nothing and reads back L001 only
    w.clock.now = dt.datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp() + 1
    assert _quota(w, "DELETE").status_code == 200
    w.sent.clear()
    again = _ReadBack(w)
    done = migrate(_opts(w, run_id="r-vq", verify="full"), client_factory=w.factory, verify_factory=again)
    assert done["status"] == "completed", done["reconciliation"]
    assert not done["paused"] and not done["resume_at"] and not done["verify_paused"]
    assert [s for s in w.sent if s[0] in ("POST", "PUT") and not s[1].endswith("/search")] == []
    resumed = again.lines()
    assert resumed and {x["location"] for x in resumed} == {lid1}  # L002's verified shards: not read again
    assert len(resumed) == _verify_requests(done) - _verify_requests(out)  # the journal's count, class verify
    full = done["field_diff"]
    patients = sum(d["objects"]["patient"]["written"] for d in done["locations"].values())
    assert full["read_back"]["patient"] == patients and full["mismatches"] == 0 and not full["paused"]
    contacts, _records = held_once(w)
    assert contacts == patients


def test_a_refused_token_during_the_read_back_pauses_its_location_and_kept_shards_are_not_read_again(
        world: World) -> None:
    """The phase itself (threads): L002's token revoked as its read-back starts pauses L002 (no reset: fix
    the cause), L001 verifies; the phase again reads L002 only, and a third time nothing."""
    from dos2hl.execution.driver import prepare, run_phase, verify_phase
    from dos2hl.settings import Dos2hlSettings

    w = world
    settings = Dos2hlSettings()
    ctx = prepare(_opts(w, run_id="r-vt", verify="full"), settings=settings, client_factory=w.factory)
    full = run_phase(ctx, "full", client_factory=w.factory, settings=settings, workers=2)
    assert not full.paused

    def revoke(w: World) -> None:
        assert _sandbox(w, "POST", json={"location_id": w.loc_ids["L002"], "after": 0,
                                         "kind": "token"}).status_code == 200

    reads, sink = _ReadBack(w, revoke), _Snapshots()
    first = verify_phase(ctx, full, client_factory=reads, settings=settings, workers=2, progress=[sink])
    assert list(first.paused) == ["L002"]
    assert first.paused["L002"].startswith("HighLevel answered 401 (token)")
    assert first.resume_at == {}  # a refusal waits for a fix, not for a reset
    assert first.read_back["patient"] == sum(r.get("written", {}).get("patient", 0) for r in full.shards
                                             if r["location"] == "L001")
    assert not any(first.not_found.values())  # the refused reads are no record's "not found"
    l2_reads = [x for x in reads.lines() if x["location"] == w.loc_ids["L002"]]
    assert l2_reads and {x["status"] for x in l2_reads} == {401} and len(l2_reads) <= 2  # (a PIT re-read)
    assert sink.seen[-1][0] == "close" and sink.seen[-1][1]["locations"]["L002"]["state"] == "paused"

    assert _sandbox(w, "DELETE").status_code == 200  # the cause fixed
    again = _ReadBack(w)
    second = verify_phase(ctx, full, client_factory=again, settings=settings, workers=2)
    assert not second.paused and second.mismatches == 0 and not any(second.not_found.values())
    assert {x["location"] for x in again.lines()} == {w.loc_ids["L002"]}
    assert second.tally["total"] == len(again.lines())  # only what it read now is counted
    assert second.read_back["patient"] == sum(r.get("written", {}).get("patient", 0) for r in full.shards)
    third = _ReadBack(w)
    assert verify_phase(ctx, full, client_factory=third, settings=settings).read_back == second.read_back
    assert third.lines() == []  # everything verified is kept: nothing read again


def test_a_day_spent_while_the_sample_is_read_back_stops_before_the_approval(world: World) -> None:
    """No approval is asked for a sample some location could not read back: the run waits for the reset
    and says how to resume (the sample's report shows the wait)."""
    w = world
    asked: list[Any] = []
    out = migrate(_opts(w, run_id="r-vs", sample=3), approve=lambda rep: bool(asked.append(rep)) or True,
                  client_factory=w.factory, verify_factory=_ReadBack(w, _spend_l001))
    assert asked == [] and out["phase"] == "sample"
    assert out["status"] == "waiting_for_quota" and out["verify_paused"] == ["L001"]
    assert list(out["resume_at"]) == ["L001"] and "L001 resumes at" in out["next"]
    assert "dos2hl resume r-vs" in out["next"] and "/sample/" in out["report"]
