"""The steps' typed results, in one place: what ``prepare`` found (``Prepared``), a write phase
(``WriteResult``), a read-back (``VerifyResult``), the bulk path (``BulkResult``) and a written report
(``RunReport``). Ids and counts only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..bulk.run import BulkResult
from ..execution.results import Prepared, VerifyResult, WriteResult

__all__ = ["BulkResult", "Prepared", "RunReport", "VerifyResult", "WriteResult"]


class RunReport(BaseModel):
    """A report as written to the run's storage: its status, where its files are, what to do next, and
    ``body`` (``report.json``: counts per location and object, requests by class, field diff, ...)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    status: str  # completed | incomplete
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
