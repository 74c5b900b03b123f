"""Live progress of a write phase (issue 17): the tracker's arithmetic on hand-made shard results (counts,
requests per second against the limit, today's quota, ETA in hours and in days of quota), the executors'
per-unit callback, the plain lines, progress.json and ``dos2hl status`` preferring it while a phase runs."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dos2hl.execution.progress import ProgressTracker, estimate, mark_reported, read_progress, track
from dos2hl.execution.schedule import run_fair
from dos2hl.progress import PlainLines, location_line
from dos2hl.settings import Dos2hlSettings, GovernorSettings


def test_estimate_hours_and_days_of_quota_from_the_pace_so_far() -> None:
    # 200 records in 100 s for 600 requests: 2 records/s, 3 requests each; 1800 to go -> 900 s, 5400 requests
    e = estimate(pending=1800, processed=200, requests=600, elapsed_s=100.0, ceiling=10_800, left_today=5000)
    assert e["records_per_s"] == 2.0 and e["requests_per_record"] == 3.0
    assert e["requests_needed"] == 5400
    assert e["hours"] == 0.25  # 900 s
    assert e["quota_days"] == 0.5  # 5400 of a 10,800-request day
    assert e["fits_today"] is False  # 5000 left today
    assert estimate(0, 200, 600, 100.0, 10_800)["hours"] == 0.0  # nothing pending: done
    nothing = estimate(1800, 0, 0, 100.0, 10_800)  # no record yet: no estimate, not a division by zero
    assert nothing["hours"] is None and nothing["quota_days"] is None and nothing["fits_today"] is None


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _tracker(tmp_path: Path, sinks: list[Any] = (), clock: Any = None) -> ProgressTracker:  # type: ignore[assignment]
    gov = GovernorSettings(burst=100, window_s=10.0, daily=20_000, reserve=0.1)  # 10 req/s, ceiling 18,000
    settings = Dos2hlSettings(storage=str(tmp_path / "runs"), governor=gov)
    totals = {"L001": Counter({"patient": 100, "appointment": 300}), "L002": Counter({"patient": 50})}
    return ProgressTracker("r-1", str(tmp_path / "runs" / "r-1"), "full", totals=totals,
                           location_ids={"L001": "loc-a", "L002": "loc-b"}, settings=settings, sinks=sinks,
                           clock=clock or _Clock())


def _spec(loc: str, shard: int) -> Any:
    return SimpleNamespace(location=loc, shard=shard)


def test_the_tracker_adds_up_hand_made_shard_results(tmp_path: Path) -> None:
    clock = _Clock()
    t = _tracker(tmp_path, clock=clock)
    t.begin([_spec("L001", 0), _spec("L001", 1), _spec("L002", 0)])
    clock.t += 50.0
    t.on_done(_spec("L001", 0), {"written": {"patient": 40, "appointment": 100}, "failed": {"appointment": 2},
                                 "held": {"patient": 1}, "excluded": {"appointment": 7}, "requests": 300})
    t.usage = {"L001": {"requests_today": 2000, "requests_left": 16_000}}  # as the governor's snapshot says
    snap = t.snapshot()
    l1 = snap["locations"]["L001"]
    assert l1["location_id"] == "loc-a" and l1["state"] == "running"
    assert l1["objects"]["patient"] == {"source": 100, "written": 40, "failed": 0, "held": 1, "excluded": 0,
                                        "pending": 59}
    assert l1["objects"]["appointment"]["pending"] == 300 - 100 - 2 - 7
    assert l1["totals"]["pending"] == 59 + 191 and l1["shards"] == {"done": 1, "total": 2}
    q = l1["requests"]
    assert q["sent"] == 300 and q["per_s"] == 6.0 and q["limit_per_s"] == 10.0  # 300 in 50 s; 100 per 10 s
    assert q["today"] == 2000 and q["left_today"] == 16_000 and q["ceiling"] == 18_000
    # 150 records in 50 s (3/s), 2 requests each: 250 pending -> 83.3 s, 500 requests of an 18,000 day
    assert l1["eta"]["hours"] == round(250 / 3 / 3600, 3)
    assert l1["eta"]["quota_days"] == round(500 / 18_000, 3) and l1["eta"]["fits_today"] is True
    assert snap["shards"] == {"done": 1, "total": 3} and snap["percent"] == 33.3
    assert snap["eta"]["hours"] is None  # L002 has ended nothing yet: no estimate for the run
    assert "; 6.0/10.0 req/s; today 2000 used, 16000 left; ETA 0.02 h, 0.028 days of quota" in \
        location_line(snap, "L001")
    t.on_done(_spec("L002", 0), {"written": {"patient": 50}, "requests": 100})
    t.on_done(_spec("L001", 1), {"paused": "HighLevel answered 401 (token)"})
    snap = t.snapshot()
    assert snap["locations"]["L002"]["state"] == "done" and snap["locations"]["L001"]["state"] == "paused"
    assert snap["paused"] == {"L001": "HighLevel answered 401 (token)"} and snap["percent"] == 100.0


def test_plain_lines_and_progress_json(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dos2hl.progress")
    t = _tracker(tmp_path, sinks=[PlainLines()])
    t.begin([_spec("L001", 0), _spec("L002", 0)])
    t.on_done(_spec("L001", 0), {"written": {"patient": 100, "appointment": 300}, "requests": 800})
    t.tick()
    lines = [r.getMessage() for r in caplog.records if r.name == "dos2hl.progress"]
    assert len(lines) == 2  # one per location
    assert lines[0].startswith("progress r-1 full L001 (loc-a) done: 400/400 written, 0 failed, 0 held, "
                               "0 pending; shards 1/1;")
    assert "/10.0 req/s" in lines[0] and "ETA 0.0 h" in lines[0]
    assert lines[1].startswith("progress r-1 full L002 (loc-b) running: 0/50 written")
    on_disk = read_progress(str(tmp_path / "runs" / "r-1"))
    assert on_disk is not None and on_disk["state"] == "running" and on_disk["shards"]["done"] == 1
    t.finish("completed")
    assert read_progress(str(tmp_path / "runs" / "r-1"))["state"] == "completed"  # type: ignore[index]
    assert location_line(t.snapshot(), "L001") in [r.getMessage() for r in caplog.records]
    n = len(caplog.records)
    t.tick()  # a tick that comes after the phase's end: no line after the last, no "running" on disk
    assert len(caplog.records) == n
    assert read_progress(str(tmp_path / "runs" / "r-1"))["state"] == "completed"  # type: ignore[index]
    mark_reported(str(tmp_path / "runs" / "r-1"))
    assert read_progress(str(tmp_path / "runs" / "r-1"))["state"] == "reported"  # type: ignore[index]


def test_track_ticks_on_its_own_thread_and_ends_a_failed_block_as_failed(tmp_path: Path) -> None:
    ticks: list[dict[str, Any]] = []
    got = threading.Event()

    class Sink:
        def update(self, snap: dict[str, Any]) -> None: ...

        def tick(self, snap: dict[str, Any]) -> None:
            ticks.append(snap)
            got.set()

        def close(self, snap: dict[str, Any]) -> None:
            ticks.append(snap)

    ctx = SimpleNamespace(run_id="r-2", run_uri=str(tmp_path / "r-2"), locations=["L001"], tenancy={},
                          schemas={"L001": {"location_id": "loc-a"}},
                          manifest={"tables": {"patient": {"shards": [{"location": "L001", "rows": 7}]}}})
    with pytest.raises(RuntimeError), track(ctx, "full", [Sink()], settings=Dos2hlSettings(),
                                            every_s=0.05) as t:
        t.begin([_spec("L001", 0)])
        assert got.wait(20), "no tick"  # (generous: a loaded machine)
        raise RuntimeError("a shard's error")
    assert ticks[0]["locations"]["L001"]["totals"]["source"] == 7
    assert ticks[-1]["state"] == "failed"
    assert json.loads((tmp_path / "r-2" / "progress.json").read_text())["state"] == "failed"


def test_run_fair_calls_on_done_once_per_unit_skipped_ones_too() -> None:
    items = [("A", n) for n in range(4)] + [("B", n) for n in range(4)]
    seen: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def done(item: tuple[str, int], result: str) -> None:
        with lock:
            seen.append((*item, result))
        if item == ("B", 3):
            raise ValueError("a broken display")  # logged, never the run's

    out = run_fair(items, lambda it: "paused" if it == ("A", 0) else "ok", key=lambda it: it[0], workers=1,
                   stop=lambda r: r == "paused", skipped=lambda it, by: "skipped", on_done=done)
    assert sorted(seen) == sorted((*it, r) for it, r in zip(items, out, strict=True))
    assert out[:4] == ["paused", "skipped", "skipped", "skipped"] and out[4:] == ["ok"] * 4


def _run_with_report(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "r-3"
    (run / "staged").mkdir(parents=True)
    (run / "staged" / "manifest.json").write_text(json.dumps(
        {"tables": {"patient": {"shards": [{"location": "L001", "shard": 0, "rows": 10}]}}}))
    (run / "report").mkdir()
    (run / "report" / "report.json").write_text(json.dumps({"status": "paused", "paused": {"L001": "401"},
        "locations": {"L001": {"location_id": "loc-a", "objects": {"patient": {
            "source": 10, "written": 2, "failed": 0, "held": 0, "excluded": 0, "pending": 8}}}}}))
    return run


def test_status_prefers_a_running_phase_over_an_older_report(tmp_path: Path) -> None:
    """A resumed run: its old report says paused, the new attempt's progress.json says running."""
    from dos2hl.execution.status import render, run_status

    run = _run_with_report(tmp_path)
    assert run_status(str(tmp_path / "runs"), "r-3")["counts_from"] == "report"
    t = ProgressTracker("r-3", str(run), "full", totals={"L001": Counter({"patient": 10})},
                        location_ids={"L001": "loc-a"},
                        settings=Dos2hlSettings(storage=str(tmp_path / "runs")))
    t.begin([_spec("L001", 0), _spec("L001", 1)])
    t.on_done(_spec("L001", 0), {"written": {"patient": 6}, "requests": 12})
    t.tick()
    st = run_status(str(tmp_path / "runs"), "r-3")
    assert st["state"] == "running" and st["counts_from"] == "progress" and st["paused"] == {}
    assert st["phase"] == "full" and st["updated_at"]
    assert st["locations"]["L001"]["objects"]["patient"]["written"] == 6
    assert st["locations"]["L001"]["totals"]["pending"] == 4 and st["locations"]["L001"]["state"] == "running"
    assert st["eta"]["seconds"] is not None and "quota_days" in st["eta"]
    assert "counts from the progress), phase full" in render(st)
    assert f"days of quota ({st['eta']['method']})" in render(st)
    mark_reported(str(run))  # the new attempt's report is written: it stands again
    assert run_status(str(tmp_path / "runs"), "r-3")["counts_from"] == "report"


def test_the_live_table_on_a_terminal_shows_every_location_and_object(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from dos2hl.progress import LiveTable, terminal_sinks

    screen = io.StringIO()
    table = LiveTable(Console(file=screen, force_terminal=True, width=200))
    t = _tracker(tmp_path, sinks=[table])
    t.begin([_spec("L001", 0), _spec("L002", 0)])
    t.on_done(_spec("L001", 0), {"written": {"patient": 100, "appointment": 280},
                                 "failed": {"appointment": 3}, "requests": 900})
    t.finish("completed")
    shown = screen.getvalue()
    assert "run r-1 full: 1/2 shards (50.0 %)" in shown
    for cell in ("L001 (done)", "L002 (running)", "appointment", "280", "300", "quota days"):
        assert cell in shown, cell
    assert not table.live.is_started  # stopped at the phase's end
    assert [type(s).__name__ for s in terminal_sinks(force_plain=True)] == ["PlainLines"]
