"""What a report says of its paused locations (issue 17): the run's status, when each spent daily
quota resets, and the report's lines about them. ids, statuses, counts and times only."""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["iso", "pause_lines", "run_status"]


def iso(at: float) -> str:
    """Epoch seconds as ISO UTC to the second (``2026-12-06T00:00:00Z``)."""
    return dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_status(complete: bool, paused: dict[str, str], resume_at: dict[str, str]) -> str:
    """``completed``; ``waiting_for_quota`` when every paused location only waits for its daily reset;
    ``paused`` when one waits for a fix; else ``incomplete``."""
    if complete:
        return "completed"
    if not paused:
        return "incomplete"
    return "waiting_for_quota" if set(resume_at) == set(paused) else "paused"


def pause_lines(rep: dict[str, Any]) -> list[str]:
    """The report's paragraphs about its paused locations (markdown)."""
    lines: list[str] = []
    waits = rep.get("resume_at") or {}
    for loc, why in (rep.get("paused") or {}).items():
        waiting = sum(r.get("pending", 0) for r in rep["locations"].get(loc, {}).get("objects", {}).values())
        if loc in (rep.get("verify_paused") or ()):
            what = (f"waits for its daily quota** to reset at {waits[loc]}" if loc in waits
                    else f"paused**: {why}; fix the cause")
            lines += ["", f"**Location {loc}'s read-back {what}. Its records are written ({waiting} rows "
                      "pending); what was verified is kept, the rest is read back when the run resumes: "
                      f"`dos2hl resume {rep['run_id']}`."]
            continue
        if loc in waits:
            lines += ["", f"**Location {loc} waits for its daily quota** to reset at {waits[loc]}. {waiting} "
                      f"rows are pending (not failed); after that: `dos2hl resume {rep['run_id']}` (or "
                      "`--wait-for-quota`; a deployment reschedules itself)."]
            continue
        lines += ["", f"**Location {loc} paused**: {why}. {waiting} rows are pending (not failed); fix the "
                  f"cause, then resume: `dos2hl resume {rep['run_id']}` (the same run id continues where it "
                  "stopped)."]
    return lines
