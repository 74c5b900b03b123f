"""Issue 17: the read-back reports progress like a write phase. A shard's diff as progress counts
(verified, not found, mismatches per object), the tracker's arithmetic for phase ``verifying`` (to
verify, pending, ETA, by the shards when the totals are unknown), its lines, table and flow table, a
paused location's reset in progress.json, and ``dos2hl status`` saying ``verifying``. Ids and counts."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dos2hl.execution.progress import ProgressTracker, read_progress
from dos2hl.execution.verified import stamp, to_verify, verify_progress
from dos2hl.execution.waits import iso
from dos2hl.progress import LiveTable, location_line
from dos2hl.settings import Dos2hlSettings, GovernorSettings
from dos2hl.writing.ledger import IdMap


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _spec(loc: str, shard: int) -> Any:
    return SimpleNamespace(location=loc, shard=shard)


def _diff(read: dict[str, int], missing: dict[str, int] | None = None, mismatched: int = 0,
          requests: int = 0, **extra: Any) -> dict[str, Any]:
    """A shard's read-back result as ``verified.verify_unit`` answers it (no value: keys and counts)."""
    fields = {"patient": {"firstName": {"match": read.get("patient", 0) - mismatched, "mismatch": mismatched,
                                        "missing": 0},
                          "dateOfBirth": {"match": read.get("patient", 0), "mismatch": 0, "missing": 0}}}
    return {"read_back": read, "not_found": missing or {}, "fields": fields, "examples": {},
            "mismatches": mismatched, "tally": {"total": requests, "by_class": {"verify": requests}},
            **extra}


def _tracker(tmp_path: Path, clock: Any, sinks: list[Any] | None = None) -> ProgressTracker:
    gov = GovernorSettings(burst=100, window_s=10.0, daily=20_000, reserve=0.1)
    settings = Dos2hlSettings(storage=str(tmp_path / "runs"), governor=gov)
    return ProgressTracker("r-v", str(tmp_path / "runs" / "r-v"), "verifying", totals={},
                           location_ids={"L001": "loc-a", "L002": "loc-b"}, settings=settings,
                           sinks=sinks or [], clock=clock, verb="verified")


def test_a_shards_diff_as_progress_counts() -> None:
    got = verify_progress(_diff({"patient": 9, "appointment": 4}, {"patient": 1}, mismatched=2, requests=3))
    assert got == {"written": {"patient": 9, "appointment": 4}, "failed": {"patient": 1},
                   "mismatches": {"patient": 2}, "requests": 3}
    paused = verify_progress(_diff({}, paused="waiting for the daily quota reset until T", resume_at=5.0))
    assert paused["paused"].startswith("waiting for") and paused["resume_at"] == 5.0


def test_the_read_backs_progress_per_location_and_object(tmp_path: Path) -> None:
    clock = _Clock()
    t = _tracker(tmp_path, clock)
    t.begin([_spec("L001", 0), _spec("L001", 1), _spec("L002", 0), _spec("L002", 1)])
    # what the phase read back wrote: L001's to verify; L002's unknown (a sample of the full run's)
    t.set_totals({"L001": Counter({"patient": 20, "appointment": 10})})
    clock.t += 10.0
    t.on_done(_spec("L001", 0), verify_progress(_diff({"patient": 9, "appointment": 4}, {"patient": 1},
                                                      mismatched=2, requests=6)))
    t.on_done(_spec("L002", 0), verify_progress(_diff({"patient": 5}, requests=5)))
    snap = t.snapshot()
    assert snap["phase"] == "verifying" and snap["verb"] == "verified" and snap["state"] == "running"
    l1 = snap["locations"]["L001"]
    assert l1["objects"]["patient"] == {"source": 20, "written": 9, "failed": 1, "held": 0, "excluded": 0,
                                        "pending": 10, "mismatches": 2}
    assert l1["objects"]["appointment"]["pending"] == 6 and l1["totals"]["mismatches"] == 2
    assert l1["requests"]["sent"] == 6 and l1["requests"]["per_s"] == 0.6
    # 14 records in 10 s: 16 to go -> 11.4 s; 6 requests for 14 records
    assert l1["eta"]["hours"] == round(16 / 1.4 / 3600, 3)
    assert l1["eta"]["requests_needed"] == round(16 * 6 / 14)
    l2 = snap["locations"]["L002"]
    assert l2["objects"]["patient"]["source"] == 5 and l2["totals"]["pending"] == 0  # what is known so far
    # its ETA by its shards: one of two ended with 5 records, so about 5 to go
    assert l2["eta"]["requests_needed"] == 5 and l2["eta"]["hours"] == round(5 / 0.5 / 3600, 3)
    line = location_line(snap, "L001")
    assert line.startswith("progress r-v verifying L001 (loc-a) running: 13/30 verified, 1 not found, "
                           "2 mismatches, 16 pending; shards 1/2;")
    from flows.progress import counts_table

    row = next(r for r in counts_table(snap) if r["location"] == "L001" and r["object"] == "patient")
    assert {k: row[k] for k in ("to_verify", "verified", "not_found", "mismatches", "pending")} == {
        "to_verify": 20, "verified": 9, "not_found": 1, "mismatches": 2, "pending": 10}
    assert "failed" not in row and "held" not in row


def test_a_location_whose_day_runs_out_shows_its_reset(tmp_path: Path) -> None:
    from rich.console import Console

    screen = io.StringIO()
    t = _tracker(tmp_path, _Clock(), sinks=[LiveTable(Console(file=screen, force_terminal=True, width=220))])
    t.begin([_spec("L001", 0), _spec("L002", 0)])
    t.set_totals({"L001": Counter({"patient": 4}), "L002": Counter({"patient": 3})})
    reset = 1_750_032_000.0
    t.on_done(_spec("L001", 0), verify_progress(_diff({}, paused=f"waiting for the daily quota reset until "
                                                      f"{iso(reset)}", resume_at=reset, requests=1)))
    t.on_done(_spec("L002", 0), verify_progress(_diff({"patient": 3}, requests=1)))
    snap = t.finish("paused")
    assert snap["locations"]["L001"]["state"] == "paused" and snap["resume_at"] == {"L001": iso(reset)}
    assert snap["locations"]["L001"]["resume_at"] == iso(reset)
    assert snap["locations"]["L002"]["state"] == "done"
    assert f"paused; resumes at {iso(reset)}: 0/4 verified" in location_line(snap, "L001")
    on_disk = read_progress(str(tmp_path / "runs" / "r-v"))
    assert on_disk is not None and on_disk["phase"] == "verifying"
    assert on_disk["resume_at"] == snap["resume_at"]
    shown = screen.getvalue()
    for header in ("verified", "to verify", "not found", "mismatches"):
        assert header in shown, header
    assert "L001 (paused)" in shown and "L002 (done)" in shown


def test_status_says_verifying_while_the_read_back_runs(tmp_path: Path) -> None:
    from dos2hl.execution.status import render, run_status

    run = tmp_path / "runs" / "r-v"
    (run / "staged").mkdir(parents=True)
    (run / "staged" / "manifest.json").write_text(json.dumps(
        {"tables": {"patient": {"shards": [{"location": "L001", "shard": 0, "rows": 10}]}}}))
    clock = _Clock()
    t = _tracker(tmp_path, clock)
    t.begin([_spec("L001", 0), _spec("L001", 1)])
    t.set_totals({"L001": Counter({"patient": 10})})
    clock.t += 5.0
    t.on_done(_spec("L001", 0), verify_progress(_diff({"patient": 4}, mismatched=1, requests=2)))
    t.tick()
    st = run_status(str(tmp_path / "runs"), "r-v")
    assert st["state"] == "verifying" and st["phase"] == "verifying" and st["counts_from"] == "progress"
    l1 = st["locations"]["L001"]
    assert l1["state"] == "verifying" and l1["objects"]["patient"]["written"] == 4
    assert l1["objects"]["patient"]["mismatches"] == 1 and l1["totals"]["pending"] == 6
    assert st["eta"] is not None and st["eta"]["seconds"] is not None
    assert render(st).startswith("run r-v: verifying (counts from the progress), phase verifying")
    t.finish("completed")
    assert run_status(str(tmp_path / "runs"), "r-v")["state"] == "completed"


def test_a_shards_stamp_changes_with_what_it_wrote_and_its_sample() -> None:
    ids = IdMap([{"stable_key": "L001:patient:1", "op": "create", "outcome": "created", "hl_id": "c1"}])
    first = stamp(ids, None)
    assert stamp(ids, None) == first and stamp(ids, [1]) != first
    ids.apply({"stable_key": "L001:patient:2", "op": "create", "outcome": "created", "hl_id": "c2"})
    assert stamp(ids, None) != first


def test_to_verify_is_what_the_phase_read_back_wrote() -> None:
    from dos2hl.execution.results import WriteResult

    wr = WriteResult(phase="full", shards=[
        {"location": "L001", "shard": 0, "written": {"patient": 3, "appointment": 2}},
        {"location": "L001", "shard": 1, "written": {"patient": 1}},
        {"location": "L002", "shard": 0, "written": {"patient": 5}}])
    assert to_verify(wr, ["L001"]) == {"L001": Counter({"patient": 4, "appointment": 2})}
    assert to_verify(WriteResult(phase="verify", shards=[]), ["L001"]) == {}


def test_the_live_table_shows_each_phase_after_the_first(tmp_path: Path) -> None:
    """One terminal sink for the run: the full run's table, then the read-back's, each drawn live (a
    stopped display is started again by the next phase)."""
    from rich.console import Console

    screen = io.StringIO()
    table = LiveTable(Console(file=screen, force_terminal=True, width=220))
    write = ProgressTracker("r-w", str(tmp_path / "r-w"), "full", totals={"L001": Counter({"patient": 2})},
                            location_ids={"L001": "loc-a"}, settings=Dos2hlSettings(), sinks=[table])
    write.begin([_spec("L001", 0)])
    write.on_done(_spec("L001", 0), {"written": {"patient": 2}, "requests": 2})
    write.finish("completed")
    seen = len(screen.getvalue())
    t = _tracker(tmp_path, _Clock(), sinks=[table])
    t.begin([_spec("L001", 0)])
    t.set_totals({"L001": Counter({"patient": 2})})
    t.on_done(_spec("L001", 0), verify_progress(_diff({"patient": 2}, requests=1)))
    assert table.live.is_started  # drawn as the read-back's shards end
    t.finish("completed")
    assert "run r-v verifying: 1/1 shards" in screen.getvalue()[seen:] and not table.live.is_started
