"""The flow's progress sink without a Prefect server (the artifacts' values against one:
test_migrate_flow.py): one progress artifact per run updated in place, a counts table per
publication, throttled updates, the phase's end always published, and a ``dos2hl.progress``
heartbeat while shards end, at most once a ``heartbeat_s``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest


def _snap(done: int, total: int = 4, state: str = "running") -> dict[str, Any]:
    counts = {"source": 10, "written": done, "failed": 0, "held": 0, "excluded": 0, "pending": 10 - done}
    return {"run_id": "r-1", "phase": "full", "state": state, "shards": {"done": done, "total": total},
            "percent": 100.0 * done / total,
            "locations": {"L001": {"location_id": "loc-a", "state": state, "objects": {"patient": counts},
                                   "requests": {"per_s": 1.0, "limit_per_s": 10.0, "today": 5,
                                                "left_today": 95},
                                   "eta": {"hours": 0.1, "quota_days": 0.01}}}}


def _recorded(monkeypatch: pytest.MonkeyPatch, fp: Any, made: list[uuid.UUID]) -> list[tuple[str, Any]]:
    """Prefect's artifact calls and the heartbeat in ``fp`` (flows.progress) replaced by a record of them,
    in order: ("create", (key, percent)), ("update", (artifact id, percent)), ("table", (key, rows)),
    ("beat", step). The creates answer the ids of ``made`` in turn."""
    calls: list[tuple[str, Any]] = []
    ids = iter(made)
    monkeypatch.setattr(fp, "create_progress_artifact",
                        lambda progress, key, description: calls.append(("create", (key, progress)))
                        or next(ids))
    monkeypatch.setattr(fp, "update_progress_artifact",
                        lambda aid, progress, description: calls.append(("update", (aid, progress))))
    monkeypatch.setattr(fp, "create_table_artifact",
                        lambda key, table, description: calls.append(("table", (key, table))))
    monkeypatch.setattr(fp, "progressed", lambda step: calls.append(("beat", step)))
    return calls


def test_the_sink_publishes_throttled_and_beats_at_most_once_a_period(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import progress as fp

    made = uuid.uuid4()
    calls = _recorded(monkeypatch, fp, [made])
    sink = fp.PrefectProgress(every_s=3600.0, heartbeat_s=3600.0)
    sink.update(_snap(1))  # the first: the artifact is made, the table written, a heartbeat sent
    sink.update(_snap(2))  # within every_s: nothing
    sink.tick(_snap(2))
    sink.close(_snap(4, state="completed"))  # the phase's end: always
    kinds = [k for k, _ in calls]
    assert kinds == ["create", "table", "beat", "update", "table"]
    assert calls[0][1] == ("migration-progress", 25.0) and calls[3][1] == (made, 100.0)
    key, table = calls[4][1]
    assert key == "migration-progress-counts"
    assert table == [{"location": "L001", "location_id": "loc-a", "state": "completed", "object": "patient",
                      "source": 10, "written": 4, "failed": 0, "held": 0, "excluded": 0, "pending": 6,
                      "requests_per_s": 1.0, "limit_per_s": 10.0, "requests_today": 5, "left_today": 95,
                      "eta_hours": 0.1, "quota_days": 0.01}]
    assert calls[2][1] == "write full"


def test_the_read_back_has_a_progress_artifact_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Phase ``verifying`` (verb ``verified``): its own progress artifact and counts table (to verify,
    verified, not found, mismatches), while the write phase's stay as they ended."""
    from flows import progress as fp

    calls = _recorded(monkeypatch, fp, [uuid.uuid4(), uuid.uuid4()])
    sink = fp.PrefectProgress(every_s=3600.0, heartbeat_s=0.0)
    sink.close(_snap(4, state="completed"))
    verify = {**_snap(1), "phase": "verifying", "verb": "verified"}
    verify["locations"]["L001"]["objects"]["patient"]["mismatches"] = 2
    sink.update(verify)  # a new key: published at once, not throttled by the write phase's last
    creates = [v for k, v in calls if k == "create"]
    assert creates == [("migration-progress", 100.0), ("verification-progress", 25.0)]
    key, table = [v for k, v in calls if k == "table"][-1]
    assert key == "verification-progress-counts"
    assert {k: table[0][k] for k in ("to_verify", "verified", "not_found", "mismatches", "pending")} == {
        "to_verify": 10, "verified": 1, "not_found": 0, "mismatches": 2, "pending": 9}
    assert [v for k, v in calls if k == "beat"] == ["write full", "verify"]
