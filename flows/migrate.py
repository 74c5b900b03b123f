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
"""

from __future__ import annotations

from typing import Any

from prefect import State, flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context
from prefect.flow_runs import pause_flow_run
from prefect.states import Completed

from dos2hl.errors import ConfigError
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
from flows.progress import flow_sinks, read_report
from tasks.migrate import as_task

__all__ = ["Approval", "CsvImported", "MapConfirmation", "MigrateParams", "migrate_flow"]


@flow(name="migrate", flow_run_name="migrate {params.source}", log_prints=True)
def migrate_flow(params: MigrateParams) -> dict[str, Any]:
    tune_allocators()  # the export-sized steps run in this process (dos2hl/memory.py)
    env = open_env(params)
    env.progress = flow_sinks()  # a progress and a counts artifact, a log line per location every N s
    out = run_migration(params, env, FlowGates(params), run=as_task).to_dict()
    # a returned state is the run's final state; whoever calls the flow gets its data (the report)
    return final_state(out)  # type: ignore[return-value]


def final_state(out: dict[str, Any]) -> dict[str, Any] | State[Any]:
    """The report, or a ``Completed`` state named ``Paused`` carrying it when a location paused."""
    if out.get("status") != "paused":
        return out
    why = "; ".join(f"{loc}: {reason}" for loc, reason in (out.get("paused") or {}).items())
    return Completed(name="Paused", data=out, message=f"paused, nothing failed ({why}); resume with "
                     f"run_id={out['run_id']} once the cause is fixed")


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
        answer = pause_flow_run(wait_for_input=MapConfirmation, timeout=self.params.approval_timeout_s)
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
