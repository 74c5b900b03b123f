"""The steps' typed results, in one place: what ``prepare`` found (``Prepared``), a write phase
(``WriteResult``), a read-back (``VerifyResult``), the bulk path (``BulkResult``), a written report
(``RunReport``), a delta (``DeltaReport``) and a rollback (``RollbackResult``). Ids and counts only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..bulk.run import BulkResult
from ..execution.results import Prepared, VerifyResult, WriteResult

__all__ = ["BulkResult", "DeltaReport", "DeltaSummary", "NotUndone", "Prepared", "RollbackResult",
           "RunReport", "VerifyResult", "WriteResult"]


class RunReport(BaseModel):
    """A report as written to the run's storage: its status, where its files are, what to do next, and
    ``body`` (``report.json``: counts per location and object, requests by class, field diff, ...)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    # completed | paused (a location waits for its cause to be fixed) | waiting_for_quota (only for its
    # daily quota's reset: body["resume_at"]) | incomplete
    status: str
    phase: str  # the last phase it covers: sample, bulk, full
    report: str  # report.md
    paths: dict[str, str]  # md, html, json, pending, excluded
    next: str | None = None  # what the operator does next (a stopped run)
    bulk_waiting: list[str] = Field(default_factory=list)  # checklists still to import in HighLevel's UI
    body: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``report.json`` with where it was written and what comes next (the CLI's and flow's shape)."""
        out = {**self.body, "report": self.report, "paths": self.paths}
        if self.next:
            out["next"] = self.next
        if self.bulk_waiting:
            out["bulk_waiting"] = list(self.bulk_waiting)
        return out


class DeltaSummary(BaseModel):
    """What a delta found and did, per location and object (``report.json``'s ``delta``)."""

    model_config = ConfigDict(extra="forbid")

    since: str  # the run it follows ("latest" resolved)
    changes: dict[str, dict[str, dict[str, int]]]  # LOC -> new|changed|gone -> object -> count
    updated: dict[str, int]
    deleted_in_source: dict[str, int]
    policy: str  # tag | delete
    failed_updates: int


class DeltaReport(BaseModel):
    """A delta's written report: its own run id and status, the report's path, the delta's summary and
    ``body`` (``report.json``, as a run's)."""

    run_id: str
    status: str  # completed | incomplete
    report: str  # report.md
    delta: DeltaSummary
    body: dict[str, Any]

    @classmethod
    def of(cls, out: dict[str, Any]) -> DeltaReport:
        return cls(run_id=out["run_id"], status=out["status"], report=out["report"],
                   delta=DeltaSummary.model_validate(out["delta"]), body=out)

    def to_dict(self) -> dict[str, Any]:
        """``report.json`` with where it was written (the flow's return value)."""
        return {**self.body, "delta": self.delta.model_dump(), "report": self.report}


class NotUndone(BaseModel):
    """An operation a rollback could not undo (the error's class, never its text)."""

    model_config = ConfigDict(extra="forbid")

    location: str
    object: str
    stable_key: str
    error_class: str


class RollbackResult(BaseModel):
    """What a rollback undid: deletes and restores per object, what it could not undo, and the ledger
    files it could not read (what they recorded is not undone). A second rollback sends nothing."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    status: str  # rolled back | incomplete
    deleted: dict[str, int] = Field(default_factory=dict)
    restored: dict[str, int] = Field(default_factory=dict)
    not_undone: list[NotUndone] = Field(default_factory=list)
    unreadable_ledger_files: list[str] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.not_undone and not self.unreadable_ledger_files
