"""The migration flow: the library's pipeline (``dos2hl.pipeline.run_migration``: map gate -> prepare
-> sample -> verify -> approval -> bulk CSV path -> full run -> verify -> report), each step a task,
each gate a Prefect pause for a typed input, each report an artifact.

The approval gate: ``approve=true`` passes it (scripted runs); in a deployment the flow pauses and
waits for an ``Approval`` input from the Prefect UI or API (approve / reject, optionally rolling the
sample back); run from a shell without ``approve``, it stops after the sample and says how to continue.

A run whose location paused (issue 17: a revoked token, a removed scope or sub-account, HighLevel down;
nothing marked failed) ends in a ``Completed`` state named ``Paused`` whose message names each paused
location and why (ids only); its result is the report, as for any run. A new flow run with the same
``run_id`` resumes it.

A run whose only paused locations wait for their spent daily quota (status ``waiting_for_quota``: HighLevel
answered 429 with ``X-RateLimit-Daily-Remaining: 0``, or the governor counted the day full) ends in a
``Completed`` state named ``AwaitingQuota``, and in a deployment it first schedules a new flow run of the
same deployment for the reset time T, with the same parameters and ``run_id`` set
(``run_deployment(..., scheduled_time=T, timeout=0, as_subflow=False)``, an idempotency key of the run id
and T so a retried ending schedules it once). Why this and not the alternatives: the run ends, so no
worker, process or Ray actor is held for hours; the new run picks up exactly where this one stopped (its
ledger says what is written, a shard started but not done looks its records up first); it needs no
person (``suspend_flow_run(timeout=...)`` does: a suspended run stays suspended until resumed by hand,
and its timeout fails it); and a flow returning an ``AwaitingRetry``/``Scheduled`` state is not a
documented way to be run again by a worker (flow retries re-run in the same process, sleeping). Outside
a deployment nothing can schedule it: the state's message says when to resume. A run whose day was spent
before it could start (prepare's first read refused) ends the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, cast

from prefect import State, flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context
from prefect.deployments import run_deployment
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Completed

from dos2hl.errors import ConfigError, DailyLimitError, QuotaExhausted
from dos2hl.execution.driver import new_run_id
from dos2hl.execution.waits import iso
from dos2hl.mapping.model import load_mapping, require_confirmed, save_mapping
from dos2hl.memory import tune_allocators
from dos2hl.params import MigrateParams
from dos2hl.pipeline import (
    Approval,
    BulkResult,
    CsvImported,
    MapConfirmation,
    RunReport,
    open_env,
    run_migration,
)
from dos2hl.provision.impact import map_summary, proposals_table
from flows.progress import flow_sinks, read_report
from tasks.migrate import as_task

__all__ = ["Approval", "CsvImported", "MapConfirmation", "MigrateParams", "final_state", "map_form",
           "migrate_flow"]

#: A continuation starts this long after the reset (the governor and HighLevel agree on the new day).
RESUME_SLACK_S = 60


@flow(name="migrate", flow_run_name="migrate {params.source}", log_prints=True)
def migrate_flow(params: MigrateParams) -> dict[str, Any]:
    tune_allocators()  # the export-sized steps run in this process (dos2hl/memory.py)
    # the run's id fixed here: a continuation after a spent day is the same run, whatever step it ran out in
    params = params.model_copy(update={"run_id": params.run_id or new_run_id()})
    try:
        with open_env(params) as env:
            env.progress = flow_sinks()  # a progress and a counts artifact, a log line per location every N s
            out = run_migration(params, env, FlowGates(params), run=as_task).to_dict()
    except (QuotaExhausted, DailyLimitError) as exc:  # prepare's reads (a phase, a read-back pause alone)
        spent = exc if isinstance(exc, QuotaExhausted) else QuotaExhausted("(a location)", exc.reset_at)
        out = {"status": "waiting_for_quota", "run_id": params.run_id,
               "paused": {spent.location: spent.reason}, "resume_at": {spent.location: iso(spent.resume_at)}}
    # a returned state is the run's final state; whoever calls the flow gets its data (the report)
    return final_state(out, params, _deployment_id())  # type: ignore[return-value]


def final_state(out: dict[str, Any], params: MigrateParams | None = None, deployment_id: Any = None,
                schedule: Callable[..., Any] | None = None) -> dict[str, Any] | State[Any]:
    """The report, or a ``Completed`` state carrying it: named ``AwaitingQuota`` when the run waits for
    daily quotas (in a deployment ``deployment_id``, after scheduling its continuation at the reset
    through ``schedule``: ``run_deployment``), ``Paused`` when a location paused."""
    if out.get("status") == "waiting_for_quota" and out.get("resume_at"):
        return _await_quota(out, params, deployment_id, schedule or run_deployment)
    if out.get("status") != "paused":
        return out
    why = "; ".join(f"{loc}: {reason}" for loc, reason in (out.get("paused") or {}).items())
    return Completed(name="Paused", data=out, message=f"paused, nothing failed ({why}); resume with "
                     f"run_id={out['run_id']} once the cause is fixed")


def _await_quota(out: dict[str, Any], params: MigrateParams | None, deployment_id: Any,
                 schedule: Callable[..., Any]) -> State[Any]:
    until = max(out["resume_at"].values())
    when = dt.datetime.fromisoformat(until.replace("Z", "+00:00")) + dt.timedelta(seconds=RESUME_SLACK_S)
    waits = "; ".join(f"{loc} until {at}" for loc, at in out["resume_at"].items())
    if deployment_id is None or params is None:
        return Completed(name="AwaitingQuota", data=out, message=f"waiting for the daily quota ({waits}), "
                         f"nothing failed; resume with run_id={out['run_id']} after {until}")
    again = params.model_copy(update={"run_id": out["run_id"]})
    run = schedule(deployment_id, parameters={"params": again.model_dump(mode="json")}, scheduled_time=when,
                   timeout=0, as_subflow=False, idempotency_key=f"{out['run_id']}-quota-{until}")
    return Completed(name="AwaitingQuota", data=out, message=f"waiting for the daily quota ({waits}), "
                     f"nothing failed; flow run {run.id} continues run_id={out['run_id']} at "
                     f"{when.isoformat()}")


def map_form(mapping: str) -> type[MapConfirmation]:
    """The map gate's form: ``MapConfirmation`` (a blank name refused by the form) with the map's summary
    as its description (low-confidence entries, PHI policy, fields to create; Markdown)."""
    form = RunInput.subclass_from_base_model_type(MapConfirmation)
    described = form.with_initial_data(description=map_summary(load_mapping(mapping), mapping))
    return cast("type[MapConfirmation]", described)  # a RunInput that is a MapConfirmation


def _deployment_id() -> Any:
    run = get_run_context().flow_run  # type: ignore[union-attr]
    return None if run is None else run.deployment_id


class FlowGates:
    """The pipeline's gates in a flow run: a parameter passes them; in a deployment the run pauses for
    the typed input; run from a shell, it stops and says how to continue."""

    def __init__(self, params: MigrateParams) -> None:
        self.params = params
        self.log = get_run_logger()

    def map_confirmed(self, mapping: str) -> None:
        try:
            require_confirmed(mapping)
            return
        except ConfigError:
            if not _in_deployment():
                raise
        self.log.warning("the map is not confirmed: waiting for a MapConfirmation input")
        create_table_artifact(key="map-proposals", table=proposals_table(load_mapping(mapping)),
                              description="The map's proposals to review (column ids, targets; no value)")
        answer = pause_flow_run(wait_for_input=map_form(mapping), timeout=self.params.approval_timeout_s)
        if not (answer.confirm and answer.by.strip()):
            raise ConfigError(f"{mapping}: not confirmed (the reviewer declined)")
        save_mapping(load_mapping(mapping).confirm(answer.by.strip()), mapping)

    def approve(self, sample: RunReport) -> Approval:
        if self.params.approve:
            return Approval(approve=True)
        if not _in_deployment():
            self.log.warning("sample done; not approved: re-run with approve=true and run_id=%s",
                             sample.run_id)
            return Approval(approve=False)
        answer = pause_flow_run(wait_for_input=Approval, timeout=self.params.approval_timeout_s)
        self.log.info("sample %s: %s", "approved" if answer.approve else "rejected",
                      answer.reason or "(no reason)")
        return answer

    def importer(self) -> Any:
        return (lambda _packages, _checklist: True) if self.params.imported else None

    def imported(self, bulk: BulkResult) -> CsvImported:
        if not _in_deployment():
            self.log.warning("CSV packages wait for an import: %s", bulk.waiting)
            return CsvImported(imported=False)
        answer = pause_flow_run(wait_for_input=CsvImported, timeout=self.params.approval_timeout_s)
        if answer.note:
            self.log.info("CSV import: %s", answer.note)
        return answer

    def published(self, key: str, report: RunReport) -> None:
        md = read_report(report.paths["md"])
        create_markdown_artifact(key=key, markdown=md,
                                 description=f"{key.replace('-', ' ')}: counts and field diff")
        if key == "migration-report":
            rows = [{"location": loc, "object": obj, **row} for loc, data in report.body["locations"].items()
                    for obj, row in data["objects"].items()]
            create_table_artifact(key="migration-counts", table=rows, description="Records per object")


def _in_deployment() -> bool:
    run = get_run_context().flow_run  # type: ignore[union-attr]
    return run is not None and run.deployment_id is not None
