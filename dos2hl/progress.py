"""Progress for long work: a rich progress bar on a terminal, plain log lines otherwise.

``progress_reporter``: rows of a stage (generate, audit, stage). ``PlainLines`` and ``LiveTable``: the
sinks of a migration's write phases (``dos2hl.execution.progress`` hands them its snapshots): one log
line per location every N seconds without a terminal, a live table per location and object on one.
Snapshots hold ids and counts only, and so do the lines and tables made of them."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["LiveTable", "PlainLines", "location_line", "progress_reporter", "terminal_sinks"]

log = logging.getLogger("dos2hl")

ProgressFn = Callable[[str, int], None]


@contextmanager
def progress_reporter(label: str, *, every_s: float = 5.0, force_plain: bool = False) -> Iterator[ProgressFn]:
    """Yield ``report(stage, rows_done)``; draws a bar on a TTY, logs a line every ``every_s`` otherwise."""
    if sys.stderr.isatty() and not force_plain:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"),
                      TextColumn("{task.fields[stage]}"),
                      TextColumn("{task.completed:,} rows"), TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task(label, total=None, stage="")

            def report(stage: str, rows: int) -> None:
                bar.update(task, completed=rows, stage=stage)

            yield report
        return
    last = [0.0]

    def report_plain(stage: str, rows: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            log.info("%s: %s, %d rows", label, stage, rows)

    yield report_plain


def _num(v: Any, unit: str = "", digits: int = 2) -> str:
    if v is None:
        return "?"
    return f"{int(v)}{unit}" if digits == 0 else f"{round(float(v), digits)}{unit}"


def location_line(snap: dict[str, Any], loc: str) -> str:
    """One location of a progress snapshot as one line: counts, shards, requests/s against the limit,
    today's quota used and left, the ETA in hours and in days of quota (ids and counts only)."""
    d = snap["locations"][loc]
    t, q, e = d["totals"], d["requests"], d["eta"]
    if snap.get("verb") == "verified":  # the read-back: not found and fields that differ, no holds
        counts = (f"{t['written']}/{t['source']} verified, {t['failed']} not found, "
                  f"{t.get('mismatches', 0)} mismatches, ")
    else:
        counts = (f"{t['written']}/{t['source']} {snap.get('verb', 'written')}, {t['failed']} failed, "
                  f"{t['held']} held, ")
    when = f"; resumes at {d['resume_at']}" if d.get("resume_at") else ""
    return (f"progress {snap['run_id']} {snap['phase']} {loc} ({d['location_id'] or '-'}) "
            f"{d['state']}{when}: {counts}"
            f"{t['pending']} pending; shards {d['shards']['done']}/{d['shards']['total']}; "
            f"{_num(q['per_s'])}/{_num(q['limit_per_s'])} req/s; today {_num(q['today'], digits=0)} used, "
            f"{_num(q['left_today'], digits=0)} left; ETA {_num(e['hours'], ' h')}, "
            f"{_num(e['quota_days'], ' days of quota', 3)}")


class PlainLines:
    """Without a terminal: one line per location at every tick (the tracker's ``every_s``) and at the
    phase's end, on ``logger`` (default ``dos2hl.progress``; a flow passes its run logger)."""

    def __init__(self, logger: Any = None) -> None:
        self.log = logger or logging.getLogger("dos2hl.progress")

    def update(self, snap: dict[str, Any]) -> None:
        return None  # lines come at the ticks, not per shard

    def tick(self, snap: dict[str, Any]) -> None:
        for loc in snap["locations"]:
            self.log.info("%s", location_line(snap, loc))

    def close(self, snap: dict[str, Any]) -> None:
        self.tick(snap)
        self.log.info("progress %s %s %s: %d/%d shards", snap["run_id"], snap["phase"], snap["state"],
                      snap["shards"]["done"], snap["shards"]["total"])


class LiveTable:
    """On a terminal: a Rich table per location and object, redrawn as shards end."""

    COLUMNS = ("location", "object", "written", "source", "failed", "held", "pending", "req/s", "limit",
               "today", "left", "ETA h", "quota days")
    COUNTS = ("written", "source", "failed", "held", "pending")  # each object's, in the columns' order
    # the read-back's: records verified of those to verify, not found, fields that differ (or are blank)
    VERIFY = {"written": "verified", "source": "to verify", "failed": "not found", "held": "mismatches"}

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.live = Live(console=console or Console(stderr=True), refresh_per_second=2, transient=False)
        self.started = False

    def table(self, snap: dict[str, Any]) -> Any:
        from rich.table import Table

        t = Table(title=f"run {snap['run_id']} {snap['phase']}: {snap['shards']['done']}/"
                        f"{snap['shards']['total']} shards ({snap['percent']} %)")
        verify = snap.get("verb") == "verified"
        for c in self.COLUMNS:
            label = self.VERIFY.get(c, c) if verify else snap.get("verb", c) if c == "written" else c
            t.add_column(label, justify="left" if c in ("location", "object") else "right")
        keys = [("mismatches" if verify and c == "held" else c) for c in self.COUNTS]
        for loc, d in snap["locations"].items():
            q, e = d["requests"], d["eta"]
            for obj, n in d["objects"].items():
                t.add_row(loc, obj, *(str(n.get(c, 0)) for c in keys), "", "", "", "", "", "")
            tot = d["totals"]
            t.add_row(f"{loc} ({d['state']})", "total", *(str(tot.get(c, 0)) for c in keys),
                      _num(q["per_s"]), _num(q["limit_per_s"]), _num(q["today"], digits=0),
                      _num(q["left_today"], digits=0), _num(e["hours"]), _num(e["quota_days"], digits=3),
                      end_section=True)
        return t

    def update(self, snap: dict[str, Any]) -> None:
        if not self.started:
            self.live.start()
            self.started = True
        self.live.update(self.table(snap))

    def tick(self, snap: dict[str, Any]) -> None:
        self.update(snap)

    def close(self, snap: dict[str, Any]) -> None:
        self.update(snap)
        self.live.stop()
        self.started = False  # the next phase (the full run after the sample, the read-back) starts it again


def terminal_sinks(*, force_plain: bool = False) -> list[Any]:
    """The command line's progress sinks: a live table on a terminal (stderr), plain lines otherwise."""
    return [PlainLines() if force_plain or not sys.stderr.isatty() else LiveTable()]
