"""The migration, in the one place its order is written: map gate -> prepare (staged, owners,
provisioned, tenancy) -> sample -> verify the sample -> approval gate -> bulk CSV path (gate: imported)
-> full run -> verify -> report.

Each step is a function of the run's env and typed inputs returning a typed result. ``run_migration``
calls them through ``run`` (by default: directly); the Prefect flow passes a runner that makes each
step a task, and gates that pause for typed inputs. The CLI passes gates that ask on a terminal. So the
CLI, the library and the flow run the same steps in the same order, with the same parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from ..bulk.run import Importer, bulk_phase
from ..execution.driver import prepare, run_phase, verify_phase
from ..execution.progress import mark_reported
from ..execution.report import build_report, write_report
from ..execution.usage import Watch, record
from ..params import MigrateParams, RollbackParams
from ..planning.sample import choose_sample
from ..storage import open_store
from .env import RunEnv
from .gates import Gates
from .results import BulkResult, Prepared, RunReport, VerifyResult, WriteResult
from .rollback import rollback_step

__all__ = ["Runner", "bulk_step", "direct", "prepare_step", "report_step", "run_migration", "verify_step",
           "write_step"]

T = TypeVar("T")
Runner = Callable[..., Any]  # run(step, *args): the step's result


def direct(step: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return step(*args, **kwargs)


def prepare_step(env: RunEnv, params: MigrateParams) -> Prepared:
    """The gates without a person: map confirmed and unchanged, export staged and balanced, every
    location's token opens its own sub-account, owners, provisioned for the map, zones."""
    return prepare(params, settings=env.settings, client_factory=env.writes)


def write_step(env: RunEnv, prepared: Prepared, phase: Literal["sample", "full"],
               sample_size: int = 0, paused: dict[str, str] | None = None) -> WriteResult:
    """Write the sample's patients (closed over guarantors), or everything not yet written; ``paused``
    locations (the bulk phase paused them) wait for the run's resumption."""
    return run_phase(prepared, phase, sample_size=sample_size, client_factory=env.writes,
                     executor=env.executor, workers=env.workers, settings=env.settings,
                     locations=env.locations, paused=paused, progress=env.progress)


def verify_step(env: RunEnv, prepared: Prepared, result: WriteResult) -> VerifyResult:
    """Read back what ``result`` wrote (its sample, or every record) and diff every field; its progress
    goes to ``env.progress`` as a write phase's. A location whose day runs out during its reads pauses
    alone (``VerifyResult.paused``); a resumed run reads back only what was not verified."""
    return verify_phase(prepared, result, client_factory=env.reads, executor=env.executor,
                        workers=env.workers, settings=env.settings, progress=env.progress)


def bulk_step(env: RunEnv, prepared: Prepared, threshold: int,
              importer: Importer | None = None) -> BulkResult:
    """Record sets above ``threshold`` as CSV packages for HighLevel's importers; imported (the sandbox
    imports itself; ``importer`` says a person did), then reconciled by search pages."""
    watch = Watch(env.writes)  # its reconciliation pages count in the run (its rows create nothing)
    try:
        return bulk_phase(prepared, threshold=threshold, client_factory=watch, importer=importer)
    finally:
        record(prepared.run_uri, "bulk", watch.tally())


def report_step(env: RunEnv, prepared: Prepared, phases: list[WriteResult], diff: VerifyResult | None,
                where: str = "", note: str = "") -> RunReport:
    """Build and write the report (json, md, html, pending.csv, excluded.csv) under the run (or its
    ``sample/`` folder)."""
    body = build_report(prepared, phases, diff=diff, status_note=note)
    paths = write_report(prepared.run_uri + (f"/{where}" if where else ""), body, phases)
    if not where:  # dos2hl status shows this report's counts, not the last phase's progress.json
        mark_reported(prepared.run_uri, env.settings.s3)
    return RunReport(run_id=prepared.run_id, status=body["status"], phase=body["phase"], report=paths["md"],
                     paths=paths, body=body)


def run_migration(params: MigrateParams, env: RunEnv, gates: Gates, run: Runner = direct) -> RunReport:
    """The whole migration, or as far as its gates let it go (a stopped run says what comes next and
    resumes with its run id: the ledger says what is done)."""
    gates.map_confirmed(params.mapping)
    prepared: Prepared = run(prepare_step, env, params)
    run_id = prepared.run_id
    phases: list[WriteResult] = []
    if params.sample > 0:
        sample: WriteResult = run(write_step, env, prepared, "sample", params.sample)
        phases.append(sample)
        if sample.paused:  # no approval of a sample some location could not finish
            stopped: RunReport = run(report_step, env, prepared, phases, None, "sample", "paused")
            gates.published("sample-report", stopped)
            return stopped.model_copy(update={"next": _after_a_pause(stopped, params)})
        diff: VerifyResult = run(verify_step, env, prepared, sample)
        if diff.paused:  # no approval of a sample some location could not read back
            stopped = run(report_step, env, prepared, phases, diff, "sample", "paused")
            gates.published("sample-report", stopped)
            return stopped.model_copy(update={"next": _after_a_pause(stopped, params)})
        note = "sample written and verified; awaiting approval"
        rep: RunReport = run(report_step, env, prepared, phases, diff, "sample", note)
        gates.published("sample-report", rep)
        answer = gates.approve(rep)
        if not answer.approve and answer.rollback_sample:
            undo = RollbackParams(run_id=run_id, locations=params.locations, target=params.target,
                                  storage=params.storage)
            run(rollback_step, env, undo)
            return rep.model_copy(update={"next": f"the sample of run {run_id} is rolled back"})
        if not answer.approve:
            return rep.model_copy(update={"next": _after_the_sample(rep, params)})
    bulk: BulkResult = run(bulk_step, env, prepared, params.bulk_threshold, gates.importer())
    bulks = [bulk]
    while bulk.waiting:  # CSV packages for a person to import in HighLevel's UI
        if not gates.imported(bulk).imported:
            shown = phases or [WriteResult(phase="bulk", shards=bulk.shard_rows())]
            rep = run(report_step, env, prepared, shown, None, "", "waiting for the CSV imports")
            waiting = {"bulk_waiting": bulk.waiting, "next": _after_the_packages(bulk.waiting, run_id)}
            return rep.model_copy(update=waiting)
        bulk = run(bulk_step, env, prepared, params.bulk_threshold, _confirmed(bulk.waiting))
        bulks.append(bulk)
    # each call reconciles its own rounds: the report adds them up
    phases += [WriteResult(phase="bulk", shards=b.shard_rows()) for b in bulks if b.packages]
    # a location the bulk phase paused is not written by the API either: it resumes with the run
    paused = {loc: why for b in bulks for loc, why in b.paused.items()}
    full: WriteResult = run(write_step, env, prepared, "full", params.sample, paused)
    phases.append(full)
    read_back = _read_back(env, prepared, params, full, phases[0]).model_copy(
        update={"paused": full.paused, "resume_at": full.resume_at})
    diff = run(verify_step, env, prepared, read_back)
    rep = run(report_step, env, prepared, phases, diff, "", "paused" if full.paused or diff.paused else "")
    gates.published("migration-report", rep)
    if full.paused or diff.paused:
        return rep.model_copy(update={"next": _after_a_pause(rep, params)})
    return rep


def _after_a_pause(rep: RunReport, params: MigrateParams) -> str:
    paused = rep.body.get("paused") or {}
    waits = rep.body.get("resume_at") or {}
    if waits and set(waits) == set(paused):  # only spent days: nothing to fix, the reset comes by itself
        return ("waiting for the daily quota: " + "; ".join(f"{loc} resumes at {at}" for loc, at in
                                                           waits.items())
                + f". Nothing is marked failed. After {max(waits.values())}: dos2hl resume {rep.run_id} "
                f"--mapping {params.mapping} --locations {params.locations} (or add --wait-for-quota)")
    return ("paused: " + "; ".join(f"{loc}: {why}" for loc, why in paused.items())
            + f". Nothing of {'them' if len(paused) > 1 else 'it'} is marked failed. Fix the cause (a new "
            f"token in its variable, the scope, the sub-account, HighLevel's status), then resume: "
            f"dos2hl resume {rep.run_id} --mapping {params.mapping} --locations {params.locations}")


def _after_the_sample(rep: RunReport, params: MigrateParams) -> str:
    return (f"review {rep.report}, then re-run with run id {rep.run_id} and approve (--approve) to keep the "
            f"sample and run the rest, or undo the sample: dos2hl rollback {rep.run_id} "
            f"--locations {params.locations}")


def _after_the_packages(checklists: list[str], run_id: str) -> str:
    return (f"import the CSV packages in HighLevel's UI as {', '.join(checklists)} (in the run's folder) "
            f"says, then re-run with run id {run_id} and --imported (imported=true)")


def _read_back(env: RunEnv, prepared: Prepared, params: MigrateParams, full: WriteResult,
               first: WriteResult) -> WriteResult:
    """What verification reads: every record (``verify=full``), the first phase's (the sample's), or,
    when the full run is the first phase, a sample of its patients."""
    if params.verify == "full":
        return full
    if first is not full:
        return first
    staged = open_store(prepared.staged_uri, env.settings.s3)
    return WriteResult(phase="verify", shards=[],
                       sample=choose_sample(staged, prepared.locations, params.sample or 300))


def _confirmed(checklists: list[str]) -> Importer:
    """An importer that confirms these checklists only (not the next round's, written after them)."""
    keys = frozenset(checklists)
    return lambda _packages, checklist: checklist in keys

