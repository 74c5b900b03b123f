"""The migration flow: the seed's steps in order, one task each, with its gates.

map confirmed (gate) -> prepare: staged, owners resolved (gate), provisioned -> sample -> verify the
sample (field diff) -> approval (gate) -> bulk CSV packages (gate: imported) -> full run -> verify -> report.

The approval gate: ``approve=True`` passes it (scripted runs); in a deployment the flow pauses and
waits for an ``Approval`` input from the Prefect UI or API (approve / reject with a reason); run
from a shell without ``approve``, it stops after the sample and says how to continue.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context
from prefect.flow_runs import pause_flow_run
from pydantic import BaseModel, Field

from dos2hl.migrate import MigrateOptions
from tasks.migrate import (
    bulk_phase,
    confirm_map,
    map_confirmed,
    prepare_run,
    report,
    rollback_run,
    verify,
    write_phase,
)


class MigrateParams(BaseModel):
    source: str = Field(description="Export folder or s3://bucket/prefix")
    mapping: str = Field(description="The confirmed mapping.yaml")
    locations: str = Field(description="locations.yaml (source location -> sub-account, token env var)")
    target: str | None = Field(None, description="HighLevel base URL (overrides locations.yaml)")
    storage: str | None = Field(None, description="Runs root (default DOS2HL_STORAGE)")
    run_id: str | None = Field(None, description="Resume or continue this run")
    sample: int = Field(300, ge=0, description="Patients in the sample phase (0: none)")
    approve: bool = Field(False, description="Pass the sample gate without waiting")
    approval_timeout_s: int = Field(7 * 86_400, description="How long a paused run waits for approval")
    executor: Literal["ray", "threads"] = "ray"
    workers: int = Field(4, ge=1)
    verify: Literal["sample", "full"] = "sample"
    export_date: dt.date | None = None
    bulk_threshold: int = Field(5000, ge=1, description="Records per object and location above which the CSV "
                                "bulk path is used")


class Approval(BaseModel):
    """The sample gate's input (shown as a form in the Prefect UI)."""

    approve: bool = Field(description="Keep the sample and run the full migration with this map?")
    rollback_sample: bool = Field(False, description="When not approving: delete what the sample wrote")
    reason: str = Field("", description="Why (kept in the report)")


def _counts_table(rep: dict) -> list[dict]:
    return [{"location": loc, "object": obj, **{k: v for k, v in row.items()}}
            for loc, data in rep["locations"].items() for obj, row in data["objects"].items()]


@flow(name="migrate", flow_run_name="migrate {params.source}", log_prints=True)
def migrate_flow(params: MigrateParams) -> dict:
    log = get_run_logger()
    opts = MigrateOptions(**params.model_dump(exclude={"approve", "approval_timeout_s"}))
    _map_gate(params, log)
    ctx = prepare_run(opts)
    opts.run_id = ctx.run_id
    phases = []
    if params.sample > 0:
        sample = write_phase(ctx, "sample", opts)
        phases.append(sample)
        diff = verify(ctx, sample, opts)
        rep = report(ctx, phases, diff, ctx.run_uri + "/sample", "sample written and verified")
        create_markdown_artifact(key="sample-report", markdown=_md(rep), description="Sample: counts and field diff")
        if not _approved(params, rep, log):
            return {**rep, "next": f"approve with run_id={ctx.run_id} approve=true"}
    bulk = bulk_phase(ctx, opts)
    while bulk["waiting"]:  # CSV packages for a person to import in HighLevel's UI
        if not _in_deployment():
            log.warning("CSV packages wait for an import: %s; re-run with run_id=%s after importing them",
                        bulk["waiting"], ctx.run_id)
            return {"run_id": ctx.run_id, "status": "incomplete", "bulk_waiting": bulk["waiting"]}
        answer = pause_flow_run(wait_for_input=CsvImported, timeout=params.approval_timeout_s)
        if not answer.imported:
            return {"run_id": ctx.run_id, "status": "incomplete", "bulk_waiting": bulk["waiting"],
                    "note": answer.note}
        bulk = bulk_phase(ctx, opts, True)
    if bulk["phase"] is not None:
        phases.append(bulk["phase"])
    full = write_phase(ctx, "full", opts)
    phases.append(full)
    diff = verify(ctx, full if params.verify == "full" else phases[0], opts)
    rep = report(ctx, phases, diff, ctx.run_uri)
    create_markdown_artifact(key="migration-report", markdown=_md(rep), description="Migration report")
    create_table_artifact(key="migration-counts", table=_counts_table(rep), description="Records per object")
    return rep


class CsvImported(BaseModel):
    """The bulk gate's input: the CSV packages (checklist in the run's bulk/ folder) are imported."""

    imported: bool = Field(description="I imported every file of the checklist in HighLevel's UI")
    note: str = Field("", description="Anything the import showed (kept in the log)")


class MapConfirmation(BaseModel):
    """The map gate's input: who reviewed mapping.yaml and confirms it (recorded in the file)."""

    confirm: bool = Field(description="I reviewed every entry of the map")
    by: str = Field(description="Your name (recorded with the map's hash)")


def _in_deployment() -> bool:
    run = get_run_context().flow_run  # type: ignore[union-attr]
    return run is not None and run.deployment_id is not None


def _map_gate(params: MigrateParams, log) -> None:  # type: ignore[no-untyped-def]
    """Confirmed and unchanged, or (in a deployment) wait for a person to confirm it in the UI."""
    from dos2hl.errors import ConfigError

    try:
        map_confirmed(params.mapping)
        return
    except ConfigError:
        if not _in_deployment():
            raise
    log.warning("the map is not confirmed: waiting for a MapConfirmation input")
    answer = pause_flow_run(wait_for_input=MapConfirmation, timeout=params.approval_timeout_s)
    if not (answer.confirm and answer.by.strip()):
        raise ConfigError(f"{params.mapping}: not confirmed (the reviewer declined)")
    confirm_map(params.mapping, answer.by.strip())


def _approved(params: MigrateParams, rep: dict, log) -> bool:  # type: ignore[no-untyped-def]
    if params.approve:
        return True
    if not _in_deployment():
        log.warning("sample done; not approved: re-run with approve=true and run_id=%s", rep["run_id"])
        return False
    answer = pause_flow_run(wait_for_input=Approval, timeout=params.approval_timeout_s)
    log.info("sample %s: %s", "approved" if answer.approve else "rejected", answer.reason or "(no reason)")
    if not answer.approve and answer.rollback_sample:
        undone = rollback_run(rep["run_id"], params.locations, params.target, params.storage, params.executor)
        log.info("sample rolled back: %s", undone["deleted"])
    return bool(answer.approve)


def _md(rep: dict) -> str:
    from pathlib import Path

    path = rep["paths"]["md"]
    return Path(path).read_text() if "://" not in path else f"Report: {path}"
