"""``dos2hl status RUN_ID``: where a run stands, from its storage alone (another machine can ask).

Read only, through ``dos2hl.storage``: the staging manifest (source rows per location and object), the
ledger (what was written, failed, held, taken back as pending), the run's report when it has one, and
the governor's usage snapshot (``<storage>/state/governor.json``, or ``DOS2HL_GOVERNOR_STATE``).

A read-back in flight (progress.json's phase ``verifying``) is the state ``verifying``: its counts are
records verified (``written``), not found (``failed``) and to verify (``source``).

Counts: a phase in flight (or one that ended after the run's last report: a resumed run) shows
``progress.json``'s (``execution.progress``: written every ``DOS2HL_PROGRESS_EVERY_S`` seconds and at the
phase's end, marked ``reported`` once the report is written); else a run with a report (it finished,
completed or not, or paused) shows the report's counts; a run without either shows the ledger's
(each record's latest outcome). ``pending`` is what is
not yet written: ``source - written - failed - held - excluded`` (excluded rows are known only to a
report, so in flight pending includes them; in flight the objects listed are those the ledger has
begun, as the map is not read). The ETA (in flight only) is the rate of records written over
the ledger's last minutes, applied to pending: an estimate, labelled as such; no ETA without writes.

Nothing here holds a patient value: ids, counts, statuses and reasons (which name HTTP statuses and
routes, never values) only.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from ..errors import ConfigError
from ..settings import GovernorSettings
from ..storage import Store, open_store
from .report import OBJECT_TABLES

__all__ = ["governor_usage", "render", "run_status", "source_rows", "usage_snapshot"]

PROGRESS = "progress.json"  # execution.progress.PROGRESS_KEY (that module reads this one)
ETA_WINDOW_S = 600.0  # the ledger's recent past the write rate is measured over
WRITTEN = frozenset({"created", "verified-existing", "updated", "unchanged"})
COUNTS = ("source", "written", "failed", "held", "pending")


def _json(store: Store, key: str) -> dict[str, Any] | None:
    return json.loads(store.read_bytes(key)) if store.exists(key) else None


def source_rows(manifest: dict[str, Any] | None) -> dict[str, Counter[str]]:
    """LOC -> object -> staged rows, from the staging manifest."""
    out: dict[str, Counter[str]] = {}
    for obj, table in OBJECT_TABLES.items():
        for s in ((manifest or {}).get("tables", {}).get(table) or {}).get("shards", []):
            out.setdefault(s["location"], Counter())[obj] += int(s["rows"])
    return out


def _ledger(store: Store) -> tuple[dict[str, dict[str, Counter[str]]], dict[str, str], dict[str, str],
                                   list[float]]:
    """(LOC -> outcome -> object -> records by their latest outcome, LOC -> HighLevel location id,
    LOC -> pause reason from ``pause`` ops, times of written records). Column-wise (a DSO's ledger has
    hundreds of millions of rows): one group-by for each key's latest op, one for the counts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..writing.ledger import read_ledger

    t = read_ledger(store).select(["ts", "location", "location_id", "object", "stable_key", "op", "outcome",
                                   "error"])  # by time: a later row is a later op
    firsts = t.group_by("location", use_threads=False).aggregate([("location_id", "first")])
    ids = {r["location"]: r["location_id_first"] for r in firsts.to_pylist()}
    pause = t.filter(pc.equal(t["op"], "pause"))
    paused = {r["location"]: (r["error"] or "paused").split(":", 1)[0]
              for r in pause.select(["location", "error"]).to_pylist()}  # the last one per location
    t = t.filter(pc.invert(pc.is_in(t["op"], value_set=pa.array(["intent", "relate"]))))
    written = pc.is_in(t["outcome"], value_set=pa.array(sorted(WRITTEN)))
    t = t.append_column("n", pa.array(range(t.num_rows), pa.int64())).append_column(
        "state", pc.if_else(written, "written", t["outcome"]))
    written_ts = [float(x) for x in t["ts"].filter(pc.and_(written, pc.is_valid(t["ts"]))).to_pylist()]
    latest = t.group_by(["location", "object", "stable_key"], use_threads=False).aggregate([("n", "max")])
    last = t.take(latest["n_max"])
    counts = last.group_by(["location", "state", "object"]).aggregate([("n", "count")])
    out: dict[str, dict[str, Counter[str]]] = {}
    for r in counts.to_pylist():
        out.setdefault(r["location"], {}).setdefault(r["state"], Counter())[r["object"]] += r["n_count"]
    return out, ids, paused, written_ts


def usage_snapshot(storage: str, gov: GovernorSettings) -> dict[str, Any] | None:
    """The governor's usage snapshot (read once per call of ``run_status``), or None."""
    from ..governor.persist import load_snapshot

    try:
        return load_snapshot(gov.state or f"{storage.rstrip('/')}/state/governor.json")
    except (ValueError, OSError):
        return None


def governor_usage(snap: dict[str, Any] | None, gov: GovernorSettings, location_id: str,
              now: float) -> dict[str, Any]:
    from ..governor.core import Limits

    lim = Limits(burst=gov.burst, window_s=gov.window_s, daily=gov.daily, reserve=gov.reserve,
                 reset_offset_s=gov.reset_offset_s)
    ceiling = int(gov.daily * (1 - gov.reserve))
    key = (snap or {}).get("keys", {}).get(f"{gov.app}/{location_id}")
    if key is None:
        return {"requests_today": None, "requests_left": None, "daily": gov.daily, "ceiling": ceiling}
    used = int(key.get("days", {}).get(str(lim.day(now)), 0))
    return {"requests_today": used, "requests_left": max(0, ceiling - used), "daily": gov.daily,
            "ceiling": ceiling}


def run_status(storage: str, run_id: str, *, now: float | None = None,
               gov: GovernorSettings | None = None) -> dict[str, Any]:
    """The status of ``run_id`` in ``storage`` (a folder or s3://): one JSON-able dict. Raises
    ``ConfigError`` when the storage holds no such run."""
    now = time.time() if now is None else now
    gov = gov or GovernorSettings()
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise ConfigError(f"not a run id: {run_id!r}")
    store = open_store(f"{storage.rstrip('/')}/{run_id}")
    manifest = _json(store, "staged/manifest.json")
    if manifest is None and not store.list("ledger/"):
        raise ConfigError(f"no run {run_id!r} in {storage}")
    report = _json(store, "report/report.json")
    progress = _json(store, PROGRESS)  # the live counts of a phase in flight (execution.progress)
    live = progress is not None and progress.get("state") != "reported"
    # with a report (or live counts) they stand; the ledger (large) is read only for a run without them
    by_outcome, ids, ledger_paused, written_ts = (({}, {}, {}, []) if report is not None or live
                                                  else _ledger(store))
    source = source_rows(manifest)
    locations: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if live:
        assert progress is not None
        state = str(progress.get("state", "running"))
        if state == "running" and progress.get("phase") == "verifying":  # the read-back in flight
            state = "verifying"
        paused = {str(k): str(v) for k, v in (progress.get("paused") or {}).items()}
        waits = {str(k): str(v) for k, v in (progress.get("resume_at") or {}).items()}
        for loc, d in progress.get("locations", {}).items():
            objs = {obj: {c: int(row.get(c, 0)) for c in (*COUNTS, "excluded")}
                    | ({"mismatches": int(row["mismatches"])} if "mismatches" in row else {})
                    for obj, row in d["objects"].items()}  # (a read-back's: fields that differ)
            locations[loc] = {"location_id": d.get("location_id", ""), "objects": objs}
        counts_from = "progress"
        extra = {"phase": progress.get("phase"), "updated_at": progress.get("updated_at")}
    elif report is not None:
        state = str(report.get("status", "incomplete"))
        paused = {str(k): str(v) for k, v in (report.get("paused") or {}).items()}
        waits = {str(k): str(v) for k, v in (report.get("resume_at") or {}).items()}
        for loc, d in report.get("locations", {}).items():
            objs = {}
            for obj, row in d["objects"].items():
                n = {c: int(row.get(c, 0)) for c in ("source", "written", "failed", "held", "excluded")}
                n["pending"] = int(row.get("pending", 0))
                objs[obj] = n
            locations[loc] = {"location_id": d.get("location_id", ids.get(loc, "")), "objects": objs}
        counts_from = "report"
    else:
        paused, waits = dict(ledger_paused), {}
        state = "paused" if paused else "running"
        # objects the ledger has begun (any location): the map's others are not known without the map
        begun = {"patient"} | {o for g in by_outcome.values() for c in g.values() for o in c}
        for loc in sorted(set(source) | set(by_outcome)):
            got = by_outcome.get(loc, {})
            objs = {}
            for obj in sorted(begun):
                n = {"source": source.get(loc, Counter())[obj], "written": got.get("written", Counter())[obj],
                     "failed": got.get("failed", Counter())[obj], "held": got.get("held", Counter())[obj],
                     "excluded": 0}
                n["pending"] = max(0, n["source"] - n["written"] - n["failed"] - n["held"])
                objs[obj] = n
            locations[loc] = {"location_id": ids.get(loc, ""), "objects": objs}
        counts_from = "ledger"
    snap = usage_snapshot(storage, gov)
    for loc, d in locations.items():
        d["state"] = "paused" if loc in paused else state if state in ("running", "verifying",
                                                                          "completed") else (
            "done" if not any(o["pending"] or o["failed"] or o["held"] for o in d["objects"].values())
            else "incomplete")
        if loc in paused:
            d["paused"] = paused[loc]
        if loc in waits:  # only its spent daily quota: it resumes after the reset
            d["state"], d["resume_at"] = "waiting_for_quota", waits[loc]
        d["totals"] = {c: sum(o[c] for o in d["objects"].values()) for c in COUNTS}
        d["requests"] = governor_usage(snap, gov, d["location_id"], now) if d["location_id"] else {}
    eta: dict[str, Any] | None = None
    if live and state in ("running", "verifying"):
        assert progress is not None
        e = progress.get("eta") or {}
        hours = e.get("hours")
        eta = {"seconds": None if hours is None else round(hours * 3600, 1),
               "quota_days": e.get("quota_days"),
               "method": "each location's records per second in this phase so far, applied to its pending "
                         "(the slowest location)" if hours is not None else "no shard ended yet: no estimate"}
    elif state == "running":
        recent = [t for t in written_ts if t >= max(written_ts) - ETA_WINDOW_S] if written_ts else []
        pending = sum(d["totals"]["pending"] for d in locations.values())
        span = (max(recent) - min(recent)) if recent else 0.0
        if len(recent) > 1 and span > 0:
            rate = (len(recent) - 1) / span
            eta = {"seconds": round(pending / rate, 1), "method": "records written per second over the "
                   f"ledger's last {int(min(span, ETA_WINDOW_S))} s, applied to pending",
                   "rate_per_s": round(rate, 3)}
        else:
            eta = {"seconds": None, "method": "no writes recorded yet: no estimate"}
    return {"run_id": run_id, "state": state, "paused": paused, "counts_from": counts_from,
            "locations": locations, "eta": eta, **extra}


def render(st: dict[str, Any]) -> str:
    """A plain-text table of ``run_status``'s answer."""
    lines = [f"run {st['run_id']}: {st['state']} (counts from the {st['counts_from']})"]
    if st.get("updated_at"):
        lines[0] += f", phase {st.get('phase')}, updated {st['updated_at']}"
    for loc, why in st["paused"].items():
        lines.append(f"  location {loc} paused: {why}")
    if st.get("eta"):
        e = st["eta"]
        when = "unknown" if e["seconds"] is None else f"{e['seconds']} s"
        days = "" if e.get("quota_days") is None else f", {e['quota_days']} days of quota"
        lines.append(f"  ETA: {when}{days} ({e['method']})")
    head = ["location", "object", *COUNTS]
    rows = [head]
    for loc, d in st["locations"].items():
        for obj, n in d["objects"].items():
            rows.append([loc, obj, *(str(n[c]) for c in COUNTS)])
        rows.append([loc, f"= {d['state']}", *(str(d["totals"][c]) for c in COUNTS)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        cells = zip(r, widths, strict=True)
        lines.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)))
    for loc, d in st["locations"].items():
        q = d.get("requests") or {}
        if q.get("requests_today") is not None:
            lines.append(f"  {loc} requests today {q['requests_today']}, left {q['requests_left']} "
                         f"(ceiling {q['ceiling']} of {q['daily']})")
        else:
            lines.append(f"  {loc} requests today: no governor usage recorded")
    return "\n".join(lines)
