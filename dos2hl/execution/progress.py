"""Live progress of a write phase (issue 17): what each location has written of what, how fast, against
which limits, and when it will end. The read-back (phase ``verifying``, verb ``verified``) and a rollback
(verb ``deleted``) report the same way.

``track(ctx, phase, sinks)`` is what ``driver.run_phase`` wraps its shards in: the executors call
``ProgressTracker.on_done(spec, result)`` as each (location, shard) ends (any thread, the Ray pool's
loop included), the tracker adds the shard's counts up per location and object, and hands a snapshot
(one JSON-able dict) to its sinks: a Rich table or plain log lines (``dos2hl.progress``), Prefect
artifacts (``flows.progress``). Every ``every_s`` seconds (``DOS2HL_PROGRESS_EVERY_S``) and at the
phase's end it writes ``progress.json`` to the run's storage, which ``dos2hl status`` reads for a run in
flight. Totals come from the staging manifest (rows per location and object), requests from the
shards' tallies, today's quota used and left from the governor's usage snapshot.

The read-back's snapshot (``driver.verify_phase``, ``verified.verify_progress``): ``written`` is the
records verified, ``failed`` those not found, ``mismatches`` the fields that differ or are blank (per
location and object; not part of ``pending``), ``source`` the records to verify (what the phase read
back wrote; unknown for a sample of the full run: then its ETA is by the location's shards).

The snapshot holds ids and counts only: export location codes, HighLevel location ids, object names,
counts, rates; never a patient value.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Any, Protocol

from ..settings import Dos2hlSettings
from ..storage import open_store
from .status import governor_usage, source_rows, usage_snapshot
from .waits import iso

__all__ = ["PROGRESS_KEY", "ProgressSink", "ProgressTracker", "estimate", "mark_reported", "read_progress",
           "track"]

log = logging.getLogger("dos2hl.progress")
PROGRESS_KEY = "progress.json"
COUNTED = ("written", "failed", "held", "excluded")
EXTRA = {"verified": ("mismatches",)}  # verb -> measures counted beside COUNTED (not part of pending)


class ProgressSink(Protocol):
    """Where snapshots go. ``update`` on every finished shard (a sink throttles itself), ``tick`` every
    ``every_s`` seconds, ``close`` once at the phase's end. Called from any thread, one call at a time."""

    def update(self, snap: dict[str, Any]) -> None: ...

    def tick(self, snap: dict[str, Any]) -> None: ...

    def close(self, snap: dict[str, Any]) -> None: ...


def estimate(pending: int, processed: int, requests: int, elapsed_s: float, ceiling: int,
             left_today: int | None = None) -> dict[str, Any]:
    """ETA of one location from what it did so far: ``processed`` records (written, failed, held or
    excluded) over ``elapsed_s`` seconds for ``requests`` requests; ``pending`` records to go.
    ``hours``: at the pace so far; ``quota_days``: the requests still needed in days of the daily
    ceiling (``ceiling``: the daily limit less the reserve); ``fits_today``: whether today's quota left
    holds them. None where there is nothing to estimate from."""
    rate = processed / elapsed_s if elapsed_s > 0 and processed else 0.0
    per_record = requests / processed if processed else None
    needed = None if per_record is None else round(pending * per_record)
    return {
        "records_per_s": round(rate, 3),
        "requests_per_record": None if per_record is None else round(per_record, 3),
        "requests_needed": needed,
        "hours": 0.0 if not pending else (round(pending / rate / 3600, 3) if rate else None),
        "quota_days": None if needed is None or ceiling <= 0 else round(needed / ceiling, 3),
        "fits_today": None if needed is None or left_today is None else needed <= left_today,
    }


class ProgressTracker:
    """Counts of one phase per location and object, fed by ``on_done`` (thread-safe)."""

    def __init__(self, run_id: str, run_uri: str, phase: str, *, totals: dict[str, Counter[str]],
                 location_ids: dict[str, str], settings: Dos2hlSettings,
                 sinks: Sequence[ProgressSink] = (), clock: Callable[[], float] = time.monotonic,
                 verb: str = "written", state: str = "running") -> None:
        self.run_id, self.run_uri, self.phase = run_id, run_uri, phase
        self.verb = verb  # what the phase does to a record, as its displays say it (a rollback: deleted)
        self.totals = totals
        self.location_ids = location_ids
        self.settings = settings
        self.sinks = list(sinks)
        self.clock = clock
        self.started = clock()
        self.state = state  # "running"; a phase whose units come later (``begin_counts``): "waiting"
        self.units: Counter[str] = Counter()  # LOC -> shards of the phase
        self.done: Counter[str] = Counter()  # LOC -> shards ended
        self.counts: dict[str, dict[str, Counter[str]]] = {}  # LOC -> written/failed/... -> object -> n
        self.requests: Counter[str] = Counter()  # LOC -> requests of its ended shards
        self.paused: dict[str, str] = {}
        self.resume_at: dict[str, float] = {}  # LOC -> the reset its spent day waits for (epoch seconds)
        self.extra = EXTRA.get(verb, ())
        self.more: dict[str, dict[str, Counter[str]]] = {}  # LOC -> extra measure -> object -> n
        self.usage: dict[str, dict[str, Any]] = {}  # LOC -> the governor's today figures
        self.by_records = False  # percent of the records rather than of the shards (a rollback's)
        self._lock = threading.RLock()
        self._sink_lock = threading.Lock()
        self._phase_lock = threading.Lock()  # a tick and the phase's end, one after the other

    def begin(self, specs: Sequence[Any]) -> None:
        """The phase's units (``ShardSpec``): one per (location, shard)."""
        with self._lock:
            self.units = Counter(s.location for s in specs)
            for loc in self.units:
                self.counts.setdefault(loc, {c: Counter() for c in COUNTED})
        self.read_usage()

    def begin_counts(self, totals: dict[str, Counter[str]], location_ids: dict[str, str]) -> None:
        """A phase of one unit per location whose totals are known only when it starts (a rollback's
        deletions, from the ledger): ``add`` reports each record's outcome, ``finish`` ends them all."""
        with self._lock:
            self.totals = totals
            self.location_ids = {**self.location_ids, **location_ids}
            self.units = Counter({loc: 1 for loc in totals})
            self.by_records = True
            for loc in totals:
                self.counts.setdefault(loc, {c: Counter() for c in COUNTED})
            self.state = "running"
        self.read_usage()

    def set_totals(self, totals: dict[str, Counter[str]]) -> None:
        """The records the phase handles per location and object, when they are not the staged rows (a
        read-back's: what its phase wrote); a location left out has its totals unknown."""
        with self._lock:
            self.totals = totals

    def on_done(self, spec: Any, result: Any) -> None:
        """A shard ended (its ``ShardResult`` or its dict): add it up, then tell the sinks."""
        r = asdict(result) if is_dataclass(result) and not isinstance(result, type) else result
        self.add(spec.location, r if isinstance(r, dict) else {}, unit_done=True)

    def add(self, loc: str, r: dict[str, Any], *, unit_done: bool = False) -> None:
        """Counts of ``loc`` (``written``/``failed``/... -> object -> n, ``requests``, ``paused``) added
        up, then told to the sinks; ``unit_done``: one of the location's units ended with them."""
        with self._lock:
            self.done[loc] += int(unit_done)
            got = self.counts.setdefault(loc, {c: Counter() for c in COUNTED})
            for c in COUNTED:
                got[c].update({k: int(v) for k, v in (r.get(c) or {}).items()})
            more = self.more.setdefault(loc, {c: Counter() for c in self.extra})
            for c in self.extra:
                more[c].update({k: int(v) for k, v in (r.get(c) or {}).items()})
            self.requests[loc] += int(r.get("requests") or 0)
            if r.get("paused"):
                self.paused[loc] = str(r["paused"])
                if r.get("resume_at") is not None:
                    self.resume_at[loc] = max(self.resume_at.get(loc, 0.0), float(r["resume_at"]))
            snap = self.snapshot()
        self._tell("update", snap)

    def read_usage(self) -> None:
        """Today's requests used and left per location, from the governor's usage snapshot."""
        g = self.settings.governor
        try:
            snap = usage_snapshot(self.settings.runs_root(), g)
        except Exception:  # noqa: BLE001 - the figures are optional; the run goes on
            snap = None
        now = time.time()
        usage = {loc: governor_usage(snap, g, lid, now) for loc, lid in self.location_ids.items() if lid}
        with self._lock:
            self.usage = usage

    def snapshot(self) -> dict[str, Any]:
        """The phase as one JSON-able dict (ids and counts only)."""
        g = self.settings.governor
        ceiling = int(g.daily * (1 - g.reserve))
        with self._lock:
            elapsed = max(self.clock() - self.started, 1e-9)
            locations: dict[str, Any] = {}
            for loc in sorted(set(self.units) | set(self.counts)):
                got = self.counts.get(loc, {c: Counter() for c in COUNTED})
                more = self.more.get(loc, {})
                known = loc in self.totals or not self.extra  # a read-back's totals may be unknown
                objs = {}
                for obj in sorted(set(self.totals.get(loc, {})) | {o for c in got.values() for o in c}):
                    n = {"source": int(self.totals.get(loc, Counter())[obj]),
                         **{c: int(got[c][obj]) for c in COUNTED}}
                    if not known:  # what is known to be there: what its ended shards read
                        n["source"] = sum(n[c] for c in COUNTED)
                    n["pending"] = max(0, n["source"] - sum(n[c] for c in COUNTED))
                    n.update({c: int(more.get(c, Counter())[obj]) for c in self.extra})
                    objs[obj] = n
                tot = {c: sum(o[c] for o in objs.values())
                       for c in ("source", *COUNTED, "pending", *self.extra)}
                use = self.usage.get(loc, {})
                processed = sum(tot[c] for c in COUNTED)
                todo = tot["pending"]
                if not known and self.units[loc] > self.done[loc]:  # by its shards: as many a shard to go
                    todo = round(processed * (self.units[loc] - self.done[loc]) / max(1, self.done[loc]))
                    if not self.done[loc]:
                        processed = 0
                eta = estimate(todo, processed, self.requests[loc], elapsed, ceiling,
                               use.get("requests_left"))
                state = ("paused" if loc in self.paused else "done" if self.done[loc] >= self.units[loc]
                         else "running")
                locations[loc] = {
                    "location_id": self.location_ids.get(loc, ""), "state": state,
                    "shards": {"done": self.done[loc], "total": self.units[loc]},
                    "objects": objs, "totals": tot,
                    "requests": {"sent": self.requests[loc],
                                 "per_s": round(self.requests[loc] / elapsed, 3),
                                 "limit_per_s": round(g.burst / g.window_s, 3),
                                 "today": use.get("requests_today"), "left_today": use.get("requests_left"),
                                 "ceiling": ceiling},
                    "eta": eta}
                if loc in self.paused:
                    locations[loc]["paused"] = self.paused[loc]
                if loc in self.resume_at:
                    locations[loc]["resume_at"] = iso(self.resume_at[loc])
            done, units = sum(self.done.values()), sum(self.units.values())
            if self.by_records:
                ended = sum(d["totals"][c] for d in locations.values() for c in COUNTED)
                of = sum(d["totals"]["source"] for d in locations.values())
                percent = round(100.0 * ended / of, 1) if of else 100.0
            else:
                percent = round(100.0 * done / units, 1) if units else 100.0
            running = [d["eta"] for d in locations.values() if d["state"] == "running"]
            hours = [e["hours"] for e in running]
            days = [e["quota_days"] for e in running]
            now = dt.datetime.now(dt.timezone.utc)
            return {
                "run_id": self.run_id, "phase": self.phase, "verb": self.verb, "state": self.state,
                "updated_at": now.isoformat(timespec="seconds"), "elapsed_s": round(elapsed, 1),
                "shards": {"done": done, "total": units},
                "percent": percent,
                "paused": dict(self.paused), "locations": locations,
                "resume_at": {loc: iso(at) for loc, at in sorted(self.resume_at.items())},
                # locations run at once, each on its own quota: the run ends with its slowest location
                "eta": {"hours": None if None in hours else max(hours, default=0.0),
                        "quota_days": None if None in days else max(days, default=0.0)},
            }

    def tick(self) -> None:
        """Every ``every_s``: the usage re-read, ``progress.json`` written, the sinks' ``tick`` (none once
        the phase has ended: its last lines stay last)."""
        with self._phase_lock:  # never a running snapshot written after the phase's end
            if self.state != "running":
                return
            self.read_usage()
            snap = self.snapshot()
            self.write(snap)
            self._tell("tick", snap)

    def finish(self, state: str) -> dict[str, Any]:
        """The phase ended (``completed``, ``paused`` or ``failed``): written and told once more."""
        with self._phase_lock:
            with self._lock:
                self.state = state
            self.read_usage()
            snap = self.snapshot()
            self.write(snap)
            self._tell("close", snap)
        return snap

    def write(self, snap: dict[str, Any]) -> None:
        try:
            open_store(self.run_uri, self.settings.s3).write_bytes(PROGRESS_KEY, json.dumps(snap).encode())
        except Exception as exc:  # noqa: BLE001 - progress never stops a run
            log.warning("progress.json not written: %s", type(exc).__name__)

    def _tell(self, what: str, snap: dict[str, Any]) -> None:
        with self._sink_lock:
            for sink in self.sinks:
                try:
                    getattr(sink, what)(snap)
                except Exception as exc:  # noqa: BLE001 - a display never stops a run
                    log.warning("progress display %s failed: %s", type(sink).__name__, type(exc).__name__)


@contextmanager
def track(ctx: Any, phase: str, sinks: Sequence[ProgressSink] = (), *,
          settings: Dos2hlSettings | None = None, every_s: float | None = None,
          verb: str = "written") -> Iterator[ProgressTracker]:
    """A tracker for ``ctx`` (``Prepared``)'s ``phase`` (``verb``: what it does to a record), ticking
    every ``every_s`` seconds (default ``DOS2HL_PROGRESS_EVERY_S``) on a thread of its own until the
    block ends; an exception out of the block ends it as ``failed``. The block calls ``finish`` itself
    to say how the phase ended."""
    settings = settings or Dos2hlSettings()
    every = every_s or settings.progress_every_s
    tenancy = getattr(ctx, "tenancy", {}) or {}
    ids = {loc: str((tenancy.get(loc) or {}).get("location_id") or
                    (ctx.schemas.get(loc) or {}).get("location_id") or "") for loc in ctx.locations}
    tracker = ProgressTracker(ctx.run_id, ctx.run_uri, phase, totals=source_rows(ctx.manifest),
                              location_ids=ids, settings=settings, sinks=sinks, verb=verb)
    with ticking(tracker, every):
        yield tracker


@contextmanager
def ticking(tracker: ProgressTracker, every: float) -> Iterator[ProgressTracker]:
    """``tracker.tick()`` every ``every`` seconds on a thread of its own until the block ends; an exception
    out of the block ends the phase as ``failed``."""
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(every):
            tracker.tick()

    thread = threading.Thread(target=ticker, name="dos2hl-progress", daemon=True)
    thread.start()
    try:
        yield tracker
    except BaseException:
        stop.set()
        tracker.finish("failed")
        raise
    finally:
        stop.set()
        thread.join(timeout=max(every, 5.0) + 5.0)


def read_progress(run_uri: str, s3: Any = None) -> dict[str, Any] | None:
    """A run's ``progress.json``, or None."""
    store = open_store(run_uri, s3)
    return json.loads(store.read_bytes(PROGRESS_KEY)) if store.exists(PROGRESS_KEY) else None


def mark_reported(run_uri: str, s3: Any = None) -> None:
    """The run's report is written: ``progress.json`` (if any) says so, and ``dos2hl status`` shows the
    report's counts again (until a resumed run's next phase writes progress anew)."""
    snap = read_progress(run_uri, s3)
    if snap is not None:
        snap["state"] = "reported"
        open_store(run_uri, s3).write_bytes(PROGRESS_KEY, json.dumps(snap).encode())
