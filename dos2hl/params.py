"""The parameters of each pipeline: one model each, with one set of defaults, shared by the CLI's
options, the Prefect flows' parameters and ``prefect.yaml``'s deployments (a deployment sets what
differs, e.g. ``executor: ray``)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DeltaParams", "MigrateParams", "RollbackParams"]

Executor = Literal["threads", "ray"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _paths_as_text(cls, v: Any) -> Any:
        return os.fspath(v) if isinstance(v, os.PathLike) else v


class _Target(_Params):
    locations: str = Field(description="locations.yaml: export location -> sub-account and its credential "
                                       "(a PIT's env var or file, or an OAuth app's env vars)")
    target: str | None = Field(None, description="HighLevel base URL (overrides locations.yaml)")
    storage: str | None = Field(None, description="Runs root (default DOS2HL_STORAGE)")


class MigrateParams(_Target):
    """A migration (and ``retry``: the same run id with no export, ``sample=0``)."""

    source: str = Field(description="Export folder or s3://bucket/prefix ('' continues the run's staged "
                                    "export)")
    mapping: str = Field(description="The confirmed mapping.yaml")
    run_id: str | None = Field(None, description="Resume or continue this run")
    sample: int = Field(300, ge=0, description="Patients in the sample phase (0: none)")
    approve: bool = Field(False, description="Pass the sample gate without waiting")
    imported: bool = Field(False,
                           description="The run's CSV packages are imported in HighLevel's UI: reconcile")
    approval_timeout_s: int = Field(7 * 86_400, gt=0, description="How long a paused run waits at a gate")
    executor: Executor = Field("threads", description="'threads' in this process, or 'ray' (local Ray or "
                               "DOS2HL_GOVERNOR_ADDRESS): shards on actors sharing the governor actor")
    workers: int | None = Field(None, ge=1, description="Shard threads (default: every location at once: one "
                                "per location, 4 to 64); with Ray, worker processes (default: the machine's "
                                "CPUs), each writing enough shards at once for every location to be written")
    verify: Literal["sample", "full"] = Field("sample", description="Read back the sample, or every record")
    export_date: dt.date | None = Field(None, description="Date the export was taken (two-digit years)")
    bulk_threshold: int = Field(5000, ge=1, description="Records per object and location above which "
                                "HighLevel's CSV importers are used (no API quota)")


class DeltaParams(_Target):
    """A delta: a new export since a run (nightly syncs, the cutover)."""

    source: str = Field(description="The new export (folder or s3://bucket/prefix)")
    since_run: str = Field(description="The run (migration or delta) this one follows; 'latest': the newest "
                                       "completed run of the storage")
    mapping: str = Field(description="The confirmed mapping.yaml")
    run_id: str | None = Field(None, description="Resume this delta run")
    deleted: Literal["tag", "delete"] = Field("tag",
                                              description="Rows deleted in the source: tag the contact "
                                              "and report, or delete")
    executor: Executor = "threads"
    workers: int | None = Field(None, ge=1)
    export_date: dt.date | None = None


class RollbackParams(_Target):
    """Undo a run (migration, sample or delta) from its ledger."""

    run_id: str = Field(description="The run to undo")
    location: str | None = Field(None, description="Only this export location")
    executor: Executor = "threads"
