"""The pipeline's gates: where a person decides. The CLI asks on a terminal (or takes a flag), a
Prefect deployment pauses for one of these typed inputs (a form in the Prefect UI), a script passes
them by parameter. The pipeline calls the gate; the gate never runs a step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, Field, field_validator

from ..bulk.run import Importer
from ..mapping.model import require_confirmed
from .results import BulkResult, RunReport

__all__ = ["Approval", "CsvImported", "Gates", "MapConfirmation", "ParamGates"]


class MapConfirmation(BaseModel):
    """The map gate's input: who reviewed mapping.yaml and confirms it (recorded in the file)."""

    confirm: bool = Field(description="I reviewed every entry of the map")
    by: str = Field(min_length=1, description="Your name (recorded with the map's hash)")

    @field_validator("by")
    @classmethod
    def _named(cls, v: str) -> str:  # the form itself refuses a blank reviewer
        if not v.strip():
            raise ValueError("a name is required: it is recorded with the map's hash")
        return v.strip()


class Approval(BaseModel):
    """The sample gate's input (shown as a form in the Prefect UI)."""

    approve: bool = Field(description="Keep the sample and run the full migration with this map?")
    rollback_sample: bool = Field(False, description="When not approving: delete what the sample wrote")
    reason: str = Field("", description="Why (kept in the log)")


class CsvImported(BaseModel):
    """The bulk gate's input: the CSV packages (checklist in the run's bulk/ folder) are imported."""

    imported: bool = Field(description="I imported every file of the checklist in HighLevel's UI")
    note: str = Field("", description="Anything the import showed (kept in the log)")


class Gates(Protocol):
    def map_confirmed(self, mapping: str) -> None:
        """Return when the map is confirmed and unchanged (raise ConfigError when it is not)."""

    def approve(self, sample: RunReport) -> Approval:
        """The sample gate: keep the sample and run the rest?"""

    def importer(self) -> Importer | None:
        """Confirms CSV packages inside the bulk step, as they are written (a terminal prompt, a flag, a
        script's callable); None: nothing can, the step returns them as waiting."""

    def imported(self, bulk: BulkResult) -> CsvImported:
        """The bulk gate after the step: are the checklists ``bulk.waiting`` names imported now?"""

    def published(self, key: str, report: RunReport) -> None:
        """A report is written (the flow makes it an artifact)."""


class ParamGates:
    """Gates answered by the caller without a pause: flags (``approve``, ``imported``) or a script's
    callables (``approve(sample_report) -> bool``; ``importer(packages, checklist) -> bool``)."""

    def __init__(self, approve: bool | Callable[[dict[str, Any]], bool] = False,
                 importer: bool | Importer | None = None) -> None:
        self._approve = approve
        self._importer: Importer | None = (lambda _p, _c: True) if importer is True else (importer or None)

    def map_confirmed(self, mapping: str) -> None:
        require_confirmed(mapping)

    def approve(self, sample: RunReport) -> Approval:
        ok = self._approve(sample.to_dict()) if callable(self._approve) else self._approve
        return Approval(approve=bool(ok))

    def importer(self) -> Importer | None:
        return self._importer

    def imported(self, bulk: BulkResult) -> CsvImported:
        return CsvImported(imported=False)  # whatever could confirm did so in the step: the run waits

    def published(self, key: str, report: RunReport) -> None:
        return None
