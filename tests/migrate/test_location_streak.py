"""Issue 17: HighLevel failing in a row pauses the *location*: the outage row is counted across every shard
writer of the location in the process, not per writer (two shards alternating outages pause it at the
limit), any answer that is not an outage ends the row for all of them, and each writer takes back its
own row's failures."""

from __future__ import annotations

from typing import Any

import pytest

from dos2hl.errors import DailyLimitError, LocationPaused, QuotaExhausted, ServerError
from dos2hl.highlevel.systemic import forget_streaks, location_streak
from dos2hl.storage import open_store
from dos2hl.writing.ledger import read_ledger

DOWN = ServerError(503, method="POST", path="/contacts/")


def _writers(tmp_path: Any, run_id: str, pause_after: int = 3) -> tuple[Any, Any, Any]:
    from dos2hl.writing.ledger import IdMap, LedgerWriter
    from dos2hl.writing.writer import LocationSchema, ShardWriter

    forget_streaks(run_id)
    store = open_store(str(tmp_path / "run"))

    def one(name: str) -> Any:
        return ShardWriter(None, LocationSchema("loc-1", {}, {}, False),  # type: ignore[arg-type]
                           LedgerWriter(store, run_id, writer=name), IdMap(), run_id=run_id, location="L001",
                           pause_after=pause_after)

    return one("s000-a"), one("s001-b"), store


def test_two_shards_alternating_outages_pause_the_location_at_the_limit(tmp_path: Any) -> None:
    a, b, store = _writers(tmp_path, "r-streak")
    a._fail("patient", "a1", "1", DOWN, {})
    b._fail("patient", "b1", "2", DOWN, {})
    with pytest.raises(LocationPaused) as paused:
        a._fail("patient", "a2", "3", DOWN, {})  # the location's third in a row (a's second)
    assert paused.value.reason.startswith("3 consecutive HighLevel failures")
    assert not a.result.failed["patient"]  # a's a1 taken back: pending
    with pytest.raises(LocationPaused):  # b's next outage meets the row: b pauses at once
        b._fail("patient", "b2", "4", DOWN, {})
    assert not b.result.failed["patient"]  # b's b1 taken back too
    for w in (a, b):
        w.ledger.flush()
    rows = {(r["stable_key"], r["op"], r["outcome"]) for r in read_ledger(store).to_pylist()}
    assert {("a1", "pause", "pending"), ("b1", "pause", "pending")} <= rows
    assert not {r for r in rows if r[0] in ("a2", "b2")}


def test_an_answer_in_one_shard_ends_the_row_for_the_others(tmp_path: Any) -> None:
    a, b, _store = _writers(tmp_path, "r-broken")
    a._fail("patient", "a1", "1", DOWN, {})
    b._fail("patient", "b1", "2", DOWN, {})
    b._op("patient", "b2", "3", "hl-b2", "create", "created")  # HighLevel answered: the row is over
    a._fail("patient", "a2", "4", DOWN, {})
    b._fail("patient", "b3", "5", DOWN, {})  # a new row of two
    assert location_streak("r-broken", "L001", 3).count == 2
    with pytest.raises(LocationPaused):
        a._fail("patient", "a3", "6", DOWN, {})
    assert a.result.failed["patient"] == 1  # a1 stays a dead letter (its row ended); a2 taken back
    assert b.result.failed["patient"] == 2  # b1 (old row) and b3 (b has not met the pause yet)


def test_each_run_and_location_has_its_own_row_and_a_phase_starts_it_empty(tmp_path: Any) -> None:
    s = location_streak("r-x", "L001", 3)
    assert location_streak("r-x", "L001", 3) is s and location_streak("r-x", "L002", 3) is not s
    s.failed()
    forget_streaks("r-x")
    assert location_streak("r-x", "L001", 3).count == 0


def test_a_spent_day_pauses_the_writer_until_the_reset_without_a_dead_letter(tmp_path: Any) -> None:
    a, _b, store = _writers(tmp_path, "r-day")
    spent = DailyLimitError(429, reset_at=1_750_032_000.0, method="POST", path="/contacts/")
    with pytest.raises(QuotaExhausted) as paused:
        a._fail("patient", "a1", "1", spent, {})
    assert paused.value.location == "L001" and paused.value.resume_at == 1_750_032_000.0
    a.ledger.flush()
    assert read_ledger(store).num_rows == 0 and not a.result.failed
