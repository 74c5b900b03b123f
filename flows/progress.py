"""A flow run's progress (issue 17): the write phases' snapshots (``dos2hl.execution.progress``) as a
Prefect progress artifact (shards ended, in percent) and a table artifact of the counts per location
and object (the read-back's, phase ``verifying``: ``verification-progress`` and its ``-counts`` table:
to verify, verified, not found, mismatches), both updated as shards end (at most every ``every_s``
seconds, and at each phase's end),
with a ``dos2hl.progress`` event (``tasks/heartbeat.py``) at most every ``heartbeat_s`` while shards end,
plus one line per location every ``DOS2HL_PROGRESS_EVERY_S`` seconds on the console and in the flow
run's log (``progress_logger``: ``make demo`` and a worker's output show them).

The tracker calls its sinks from the shard threads and its own ticker thread, where neither the flow
run's context (its id, which artifacts and log lines belong to) nor the Prefect settings it runs
under (the API's address) exist: every call runs in a copy of the flow's context, taken when the sinks
are made (in the flow). Ids and counts only, as the snapshots.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from dos2hl.progress import PlainLines
from dos2hl.storage import open_store
from tasks.heartbeat import progressed

__all__ = ["InFlow", "PrefectProgress", "counts_table", "flow_sinks", "read_report"]


def counts_table(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """A snapshot as table rows: one per location and object (counts), then each location's requests."""
    rows = []
    verb = snap.get("verb", "written")  # a rollback's: deleted
    for loc, d in snap["locations"].items():
        q, e = d["requests"], d["eta"]
        for obj, n in d["objects"].items():
            if verb == "verified":  # the read-back's: to verify, verified, not found, fields that differ
                counts = {"to_verify": n["source"], "verified": n["written"], "not_found": n["failed"],
                          "mismatches": n.get("mismatches", 0), "pending": n["pending"]}
            else:
                counts = {"source": n["source"], verb: n["written"],
                          **{c: n[c] for c in ("failed", "held", "excluded", "pending")}}
            rows.append({"location": loc, "location_id": d["location_id"], "state": d["state"], "object": obj,
                         **counts,
                         "requests_per_s": q["per_s"], "limit_per_s": q["limit_per_s"],
                         "requests_today": q["today"], "left_today": q["left_today"],
                         "eta_hours": e["hours"], "quota_days": e["quota_days"]})
    return rows


class PrefectProgress:
    """One progress artifact per flow run (``key``), and the table artifact ``<key>-counts``."""

    def __init__(self, key: str = "migration-progress", every_s: float = 2.0,
                 heartbeat_s: float = 60.0, verify_key: str = "verification-progress") -> None:
        self.key, self.every_s, self.heartbeat_s = key, every_s, heartbeat_s
        self.verify_key = verify_key  # the read-back's (verb ``verified``): a progress artifact of its own
        self.artifacts: dict[str, UUID] = {}  # key -> its progress artifact, updated in place
        self.last: dict[str, float] = {}
        self.beat = float("-inf")
        self._lock = threading.Lock()

    def _publish(self, snap: dict[str, Any], force: bool) -> None:
        key = self.verify_key if snap.get("verb") == "verified" else self.key
        with self._lock:
            now = time.monotonic()
            if not force and key in self.artifacts and now - self.last.get(key, 0.0) < self.every_s:
                return
            self.last[key] = now
            shards = snap["shards"]
            what = (f"run {snap['run_id']} {snap['phase']}: {shards['done']}/{shards['total']} shards, "
                    f"{snap['state']}")
            if key not in self.artifacts:
                made = create_progress_artifact(progress=snap["percent"], key=key, description=what)
                assert isinstance(made, UUID)  # (sync: this runs in no event loop)
                self.artifacts[key] = made
            else:
                update_progress_artifact(self.artifacts[key], snap["percent"], description=what)
            create_table_artifact(key=f"{key}-counts", table=counts_table(snap),
                                  description=f"{what}: records per location and object")
            if now - self.beat >= self.heartbeat_s and snap["shards"]["done"]:
                # shards ending are progress: the no-progress alert (dos2hl/alerts.py) hears of them
                # during a long write phase too, not only when a step ends (tasks/heartbeat.py)
                self.beat = now
                progressed("verify" if snap.get("verb") == "verified" else f"write {snap['phase']}")

    def update(self, snap: dict[str, Any]) -> None:
        self._publish(snap, force=False)

    def tick(self, snap: dict[str, Any]) -> None:
        self._publish(snap, force=False)

    def close(self, snap: dict[str, Any]) -> None:
        self._publish(snap, force=True)


class InFlow:
    """A sink whose every call runs in (a copy of) the context it was made in: the flow run's."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.ctx = contextvars.copy_context()

    def update(self, snap: dict[str, Any]) -> None:
        self.ctx.copy().run(self.sink.update, snap)

    def tick(self, snap: dict[str, Any]) -> None:
        self.ctx.copy().run(self.sink.tick, snap)

    def close(self, snap: dict[str, Any]) -> None:
        self.ctx.copy().run(self.sink.close, snap)


def progress_logger() -> logging.Logger:
    """``dos2hl.progress.flow``: at INFO whatever ``PREFECT_LOGGING_LEVEL`` says (``make demo`` runs at
    WARNING, and its progress lines are what it shows while it writes), to the console (the root's
    handler) and to the flow run's log in the Prefect API (its handler, added once)."""
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("dos2hl.progress.flow")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        logger.addHandler(APILogHandler())
    return logger


def flow_sinks(key: str = "migration-progress") -> list[Any]:
    """A flow run's progress sinks (call it in the flow): the artifacts and the lines."""
    return [InFlow(PrefectProgress(key)), InFlow(PlainLines(progress_logger()))]


def read_report(uri: str) -> str:
    """A report's Markdown wherever the run's storage is (a folder or ``s3://``), for its artifact."""
    folder, _, name = uri.rstrip("/").rpartition("/")
    return open_store(folder).read_bytes(name).decode()
