"""Issue 17, the read-back: a location whose day runs out (or whose token is refused) while its records are
read back pauses alone. The other location's verification completes, the run waits for the reset
(``waiting_for_quota``) with nothing failed, and the resumed run reads back only what was not verified:
its ``verify`` requests, counted in the sandbox's journal, are the paused location's alone. The read-back
reports progress as a write phase does (phase ``verifying``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dos2hl.execution.status import run_status
from dos2hl.pipeline import migrate
from tests.fakes import Snapshots
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
    """The run's verify-class requests so far (``migrate --json``'s ``requests_by_class``)."""
    return int(out["requests_by_class"].get("verify", 0))


def test_a_day_spent_during_the_read_back_pauses_that_location_and_resume_reads_back_only_it(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """On the operator's path (``dos2hl migrate`` then ``dos2hl resume --wait-for-quota``, the world's
    clients in this process): exit 5 with L001's reset, L002 verified; the resume waits for the reset
    (prepare's first read of L001 meets the spent day), then writes nothing and reads back L001 only."""
    import dos2hl.cli.migrate as cli_migrate
    import dos2hl.pipeline as pipeline
    from dos2hl.cli import app
    from tests.migrate.conftest import EXPORT_DATE

    w = world
    lid1, lid2 = w.loc_ids["L001"], w.loc_ids["L002"]
    reads = [_ReadBack(w, _spend_l001)]
    real = pipeline.open_env
    monkeypatch.setattr(pipeline, "open_env", lambda params: real(params, client_factory=w.factory,
                                                                  verify_factory=reads[-1]))
    caplog.set_level(logging.INFO, logger="dos2hl.progress")
    common = ["--mapping", str(w.mapping), "--locations", str(w.locations), "--sample", "0",
              "--verify", "full", "--json"]
    start = w.clock.now
    res = CliRunner().invoke(app, ["migrate", str(w.export), *common, "--run-id", "r-vq",
                                   "--export-date", EXPORT_DATE.isoformat()])
    until = _next_midnight(start)
    assert res.exit_code == 5, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "waiting_for_quota" and out["resume_at"] == {"L001": until}
    assert out["paused"] == {"L001": f"waiting for the daily quota reset until {until}"}
    rep = json.loads(Path(out["report"]).with_name("report.json").read_text())
    assert rep["verify_paused"] == ["L001"]
    # every record is written, none failed or pending: only L001's verification waits
    for loc in ("L001", "L002"):
        for obj, r in rep["locations"][loc]["objects"].items():
            assert r["written"] + r["excluded"] == r["staged"] and r["failed"] == r["held"] == 0, (loc, obj)
            assert r.get("pending", 0) == 0
    run_uri = str(Path(out["report"]).parent.parent)
    assert _failed_rows(run_uri) == 0
    # L002's read-back completed: every patient of it read back, nothing of L001's counted as not found
    diff = rep["field_diff"]
    assert diff["read_back"]["patient"] == rep["locations"]["L002"]["objects"]["patient"]["written"] > 0
    assert not any(diff["not_found"].values()) and diff["mismatches"] == 0
    assert diff["paused"] == {"L001": out["paused"]["L001"]} and list(diff["resume_at"]) == ["L001"]
    assert "read-back waits for its daily quota** to reset at " + until in Path(out["report"]).read_text()
    html = Path(out["report"]).with_name("report.html").read_text()
    assert 'data-verify-paused="L001"><strong>Location L001\'s read-back paused:</strong>' in html
    first_lines = reads[0].lines()
    assert {x["location"] for x in first_lines} == {lid1, lid2}
    assert [x["status"] for x in first_lines if x["location"] == lid1] == [200, 429]  # stopped at once
    assert w.clock.now - start < 600  # nobody slept for the reset
    # the read-back's progress lines (no terminal): its end, L001 paused with its reset, L002 done
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress r-vq verifying ")]
    n1, n2 = (sum(r["written"] for r in rep["locations"][loc]["objects"].values())
              for loc in ("L001", "L002"))
    assert f"progress r-vq verifying L001 ({lid1}) paused; resumes at {until}: 0/{n1} verified, " \
        f"0 not found, 0 mismatches, {n1} pending; shards 4/4;" in " ".join(lines), lines
    assert f"progress r-vq verifying L002 ({lid2}) done: {n2}/{n2} verified, 0 not found, 0 mismatches, " \
        "0 pending;" in " ".join(lines), lines
    assert lines[-1] == "progress r-vq verifying paused: 8/8 shards"
    st = run_status(str(Path(run_uri).parent), "r-vq")  # dos2hl status RUN_ID
    assert st["state"] == "waiting_for_quota" and st["locations"]["L001"]["state"] == "waiting_for_quota"
    assert st["locations"]["L001"]["resume_at"] == until and st["locations"]["L002"]["state"] == "done"

    waited: list[float] = []

    def new_day(t: float) -> None:  # instead of sleeping until t: the sandbox's new day
        waited.append(t)
        w.clock.now = t + 1
        assert _quota(w, "DELETE").status_code == 200
        reads.append(_ReadBack(w))

    monkeypatch.setattr(cli_migrate, "_wait_until", new_day)
    w.sent.clear()
    res = CliRunner().invoke(app, ["resume", "r-vq", *common, "--wait-for-quota"])
    assert res.exit_code == 0, res.output
    assert waited == [dt.datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp()]
    done = json.loads(res.stdout.strip().splitlines()[-1])
    assert done["status"] == "completed" and "resume_at" not in done and "paused" not in done
    assert [s for s in w.sent if s[0] in ("POST", "PUT") and not s[1].endswith("/search")] == []
    resumed = reads[-1].lines()
    assert resumed and {x["location"] for x in resumed} == {lid1}  # L002's verified shards: not read again
    assert len(resumed) == _verify_requests(done) - _verify_requests(out)  # the journal's count, class verify
    full = json.loads(Path(done["report"]).with_name("report.json").read_text())["field_diff"]
    written = sum(d["objects"]["patient"]["written"] for d in done["locations"].values())
    assert full["read_back"]["patient"] == written and full["mismatches"] == 0 and not full["paused"]
    contacts, _records = held_once(w)
    assert contacts == written


def _written(w: World, run_id: str) -> tuple[Any, Any, Any]:
    """The world's full phase written (threads, nothing paused, ``--verify full``): (its prepared run,
    its ``WriteResult``, the settings), for a read-back to start from."""
    from dos2hl.execution.driver import prepare, run_phase
    from dos2hl.settings import Dos2hlSettings

    settings = Dos2hlSettings()
    ctx = prepare(_opts(w, run_id=run_id, verify="full"), settings=settings, client_factory=w.factory)
    full = run_phase(ctx, "full", client_factory=w.factory, settings=settings, workers=2)
    assert not full.paused
    return ctx, full, settings


def _l002_refused(kind: str) -> Any:
    """``_ReadBack``'s ``spend``: every request of L002 refused from now on as the sandbox's outage
    ``kind`` (``token``: a revoked token, 401; ``5xx``: HighLevel down, 503)."""
    def start(w: World) -> None:
        assert _sandbox(w, "POST", json={"location_id": w.loc_ids["L002"], "after": 0,
                                         "kind": kind}).status_code == 200
    return start


def test_a_refused_token_during_the_read_back_pauses_its_location_and_kept_shards_are_not_read_again(
        world: World) -> None:
    """The phase itself (threads): L002's token revoked as its read-back starts pauses L002 (no reset: fix
    the cause), L001 verifies; the phase again reads L002 only, and a third time nothing."""
    from dos2hl.execution.driver import verify_phase

    w = world
    ctx, full, settings = _written(w, "r-vt")
    reads, sink = _ReadBack(w, _l002_refused("token")), Snapshots()
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


def test_outages_in_a_row_during_the_read_back_pause_its_location_not_count_its_records_not_found(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """HighLevel down for L002 (503s past the client's retries) as its read-back starts: after
    ``DOS2HL_HIGHLEVEL_PAUSE_AFTER`` such reads in a row L002 pauses, as the writer's row of them pauses a
    write phase; none of its records is counted "not found"; L001 verifies; once it is up, the phase
    reads L002 back alone."""
    from dos2hl.execution.driver import verify_phase

    w = world
    monkeypatch.setenv("DOS2HL_HIGHLEVEL_PAUSE_AFTER", "2")
    ctx, full, settings = _written(w, "r-vo")
    reads = _ReadBack(w, _l002_refused("5xx"))
    first = verify_phase(ctx, full, client_factory=reads, settings=settings, workers=2)
    assert list(first.paused) == ["L002"]
    assert first.paused["L002"].startswith("2 consecutive HighLevel failures")
    assert first.resume_at == {}
    assert not any(first.not_found.values())
    assert {x["status"] for x in reads.lines() if x["location"] == w.loc_ids["L002"]} == {503}

    assert _sandbox(w, "DELETE").status_code == 200  # HighLevel is back
    again = _ReadBack(w)
    second = verify_phase(ctx, full, client_factory=again, settings=settings, workers=2)
    assert not second.paused and second.mismatches == 0 and not any(second.not_found.values())
    assert {x["location"] for x in again.lines()} == {w.loc_ids["L002"]}


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
