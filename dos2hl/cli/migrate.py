"""``dos2hl migrate``, ``retry`` and ``rollback``: the migration pipeline (``dos2hl.pipeline``) with the
terminal's gates; ``dos2hl.cli`` registers them on its app."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import DailyLimitError, Dos2hlError, QuotaExhausted
from .common import (
    ExportDateOpt,
    JsonOpt,
    LocationsOpt,
    MappingOpt,
    StorageOpt,
    TargetOpt,
    _fail,
    params_or_exit,
)

__all__ = ["TerminalGates", "register"]


def register(app: typer.Typer) -> None:
    """Add the pipeline's commands to ``app``."""
    for command in (migrate, resume, retry, rollback):
        app.command()(command)


EXIT_PAUSED = 4  # a location paused (issue 17): nothing failed; fix the cause, then resume the run id
EXIT_QUOTA = 5  # only the daily quota's reset is awaited (issue 17): resume the run id after the time printed
MAX_QUOTA_WAITS = 30  # --wait-for-quota: resets waited for at most (days), then it exits 5 like without it
WaitOpt = Annotated[bool, typer.Option(
    "--wait-for-quota", help="When the only work left waits for a location's daily quota to reset, sleep "
    "until the reset (no worker or thread is held) and go on by itself, instead of exiting 5.")]


def migrate(
    source: Annotated[str, typer.Argument(help="Export folder or s3://bucket/prefix.")],
    mapping: MappingOpt,
    locations: LocationsOpt,
    target: TargetOpt = None,
    storage: StorageOpt = None,
    sample: Annotated[int, typer.Option("--sample", help="Patients in the sample phase (0: none).")] = 300,
    approve: Annotated[bool, typer.Option("--approve", help="Pass the sample gate without asking.")] = False,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Resume or continue this run.")] = None,
    verify: Annotated[str, typer.Option("--verify", help="Read back: 'sample' or 'full'.")] = "sample",
    executor: Annotated[str, typer.Option("--executor", help="'threads' here, or 'ray' (local or "
                                                             "DOS2HL_GOVERNOR_ADDRESS).")] = "threads",
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Shards written at once (default: every location at once).")] = None,
    bulk_threshold: Annotated[int, typer.Option("--bulk-threshold",
                                                help="Records per object and location above "
                                                "which HighLevel's CSV importers are used (no API "
                                                "quota).")] = 5000,
    imported: Annotated[bool, typer.Option("--imported", help="The CSV packages of this run are imported in "
                                           "HighLevel's UI: reconcile them and go on.")] = False,
    export_date: ExportDateOpt = None,
    wait_for_quota: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Migrate: stage -> sample, field diff -> approval -> bulk CSV -> full run -> verify -> report.

    Exit codes: 0 completed; 1 incomplete (records failed or held, or the counts do not add up); 2 bad
    input, nothing written; 3 HighLevel refused before anything was written; 4 paused: a location stopped
    for a cause that is no record's (a revoked or rotated token, a removed scope or sub-account, HighLevel
    failing N times in a row), nothing of it marked failed, the other locations done: fix the cause,
    then dos2hl resume RUN_ID (or this command again with --run-id RUN_ID); 5 waiting for the daily
    quota: a location spent its day's requests (HighLevel's X-RateLimit-Daily-Remaining: 0, or the
    governor's count), nothing failed, the others done: dos2hl resume RUN_ID after the reset time it
    prints (or --wait-for-quota: it sleeps until then and goes on). A day spent while the records are
    read back (--verify) is the same exit 5: the resumed run reads back only what was not verified.

    The report is in the run's folder: report.html (one self-contained page: tables, bars, the requests
    per minute against the budget, the field diff), report.md and report.json (the same numbers).

    Progress: a live table per location and object on a terminal, else one line per location every
    DOS2HL_PROGRESS_EVERY_S seconds (30); the same in the run's progress.json (dos2hl status RUN_ID).
    """
    from ..params import MigrateParams

    params = params_or_exit(MigrateParams, source=source, mapping=mapping, locations=locations, target=target,
                            storage=storage, run_id=run_id, sample=sample, approve=approve, imported=imported,
                            executor=executor, workers=workers, verify=verify,
                            export_date=export_date.date() if export_date else None,
                            bulk_threshold=bulk_threshold)
    _summarise(_run_migration(params, wait_for_quota), as_json)


def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue (a paused or stopped one).")],
    mapping: MappingOpt,
    locations: LocationsOpt,
    target: TargetOpt = None,
    storage: StorageOpt = None,
    sample: Annotated[int, typer.Option("--sample", help="The run's sample size (0: it had none).")] = 300,
    approve: Annotated[bool, typer.Option("--approve", help="Pass the sample gate without asking.")] = False,
    verify: Annotated[str, typer.Option("--verify", help="Read back: 'sample' or 'full'.")] = "sample",
    executor: Annotated[str, typer.Option("--executor", help="'threads' or 'ray'.")] = "threads",
    workers: Annotated[Optional[int], typer.Option("--workers", help="Shards written at once.")] = None,
    wait_for_quota: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Continue a run where it stopped (dos2hl migrate --run-id RUN_ID on the export the run staged): a
    paused location resumes once its cause is fixed (one waiting for its daily quota: after the reset),
    nothing is created twice. Exit codes as migrate's."""
    from ..params import MigrateParams

    params = params_or_exit(MigrateParams, source="", mapping=mapping, locations=locations, target=target,
                            storage=storage, run_id=run_id, sample=sample, approve=approve, executor=executor,
                            workers=workers, verify=verify)
    _summarise(_run_migration(params, wait_for_quota), as_json)


def _summarise(out: dict[str, Any], as_json: bool) -> None:
    """Print a migration's outcome (one JSON object with --json) and exit with its code."""
    summary = {"run_id": out["run_id"], "status": out["status"], "locations": out["locations"],
               "requests": out.get("requests", {}).get("sent", 0),  # every request of the run, all classes
               "requests_by_class": out.get("requests", {}).get("by_class", {}),
               "http_429": out.get("requests", {}).get("http_429", 0),
               "report": out["report"]}
    if out.get("already_present"):  # a sub-account held records under our keys: adopted, never created twice
        summary["already_present"] = out["already_present"]
    if out.get("paused"):  # LOC -> why (ids, statuses, counts)
        summary["paused"] = out["paused"]
    if out.get("resume_at"):  # LOC -> when its spent daily quota resets (ISO UTC)
        summary["resume_at"] = out["resume_at"]
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        typer.echo(f"run {out['run_id']}: {out['status']} ({out['phase']})")
        for loc, there in (out.get("already_present") or {}).items():
            typer.echo(f"{loc} (sub-account {there['location_id']}) already held "
                       + ", ".join(f"{n} {obj}" for obj, n in sorted(there["objects"].items()))
                       + " under our keys: adopted, nothing created twice")
        if out.get("next"):
            typer.echo(out["next"])
        if (out.get("paths") or {}).get("html"):  # the page for people: open it in a browser, or print it
            typer.echo(f"report.html: {out['paths']['html']}")
        typer.echo(f"report: {out['report']}")
    failed = sum(o["failed"] + o["held"] for loc in out["locations"].values()
                 for o in loc["objects"].values())
    if out["status"] == "paused":
        raise typer.Exit(EXIT_PAUSED)
    if out["status"] == "waiting_for_quota":
        raise typer.Exit(EXIT_QUOTA)
    if out["status"] != "completed" or failed:
        raise typer.Exit(1)


def retry(
    run_id: Annotated[str, typer.Argument(help="The run whose failed and held records to replay.")],
    mapping: Annotated[Path, typer.Option("--mapping", help="The confirmed mapping.yaml of the run.")],
    locations: LocationsOpt,
    target: TargetOpt = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay a run's dead letters (report/pending.csv): each is looked up first, then written."""
    from ..params import MigrateParams

    out = _run_migration(params_or_exit(MigrateParams, source="", mapping=mapping, locations=locations,
                                        target=target, storage=storage, run_id=run_id, sample=0))
    pend = out.get("pending", {}).get("count", 0)
    if as_json:
        typer.echo(json.dumps({"run_id": run_id, "status": out["status"], "pending": pend,
                               "report": out["report"]}))
    else:
        typer.echo(f"run {run_id}: {out['status']}; {pend} records still pending; report: {out['report']}")
        if out.get("next"):
            typer.echo(out["next"])
    if out["status"] == "paused":
        raise typer.Exit(EXIT_PAUSED)
    if out["status"] == "waiting_for_quota":
        raise typer.Exit(EXIT_QUOTA)
    if out["status"] != "completed":
        raise typer.Exit(1)


def rollback(
    run_id: Annotated[str, typer.Argument(help="The run (or rejected sample) to undo.")],
    locations: LocationsOpt,
    target: TargetOpt = None,
    storage: StorageOpt = None,
    location: Annotated[Optional[str], typer.Option("--location", help="Only this export location.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete what a run wrote, records before contacts, from its ledger; a second rollback sends nothing."""
    from ..params import RollbackParams
    from ..pipeline import open_env, rollback_step
    from ..progress import terminal_sinks

    params = params_or_exit(RollbackParams, run_id=run_id, locations=locations, target=target,
                            storage=storage, location=location)
    try:
        with open_env(params) as env:
            env.progress = terminal_sinks()  # deletions as they go: a live table, else a line every N s
            out = rollback_step(env, params)
    except Dos2hlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(out.model_dump(mode="json")))
    else:
        typer.echo(f"run {run_id}: {out.status}; deleted {out.deleted}")
        for f in out.not_undone:
            typer.echo(f"  not undone: {f.location}/{f.object} {f.stable_key} ({f.error_class})", err=True)
        for key in out.unreadable_ledger_files:
            typer.echo(f"  unreadable ledger file (skipped; what it recorded is not undone): {key}", err=True)
    if not out.complete:
        raise typer.Exit(1)


def _run_migration(params: Any, wait_for_quota: bool = False) -> dict[str, Any]:
    """The pipeline with the terminal's gates; a library error is the command's error exit. With
    ``wait_for_quota``, a run that only waits for daily quotas sleeps until the last reset (the run has
    returned: no worker, thread or Ray actor is held) and resumes its run id (MAX_QUOTA_WAITS times)."""
    from ..execution.driver import new_run_id
    from ..execution.waits import iso
    from ..pipeline import open_env, run_migration
    from ..progress import terminal_sinks

    # the run's id fixed here: a continuation after a wait is the same run, whatever step the day ran out in
    params = params.model_copy(update={"run_id": params.run_id or new_run_id()})
    for _ in range(MAX_QUOTA_WAITS):
        try:
            with open_env(params) as env:
                env.progress = terminal_sinks()  # a live table on a terminal, else a line a location each N s
                out = run_migration(params, env, TerminalGates(params)).to_dict()
        # a day spent at prepare's first reads (before any phase): the write phases and the read-back pause
        # only their location and return waiting_for_quota themselves
        except (QuotaExhausted, DailyLimitError) as exc:
            spent = exc if isinstance(exc, QuotaExhausted) else QuotaExhausted("(a location)", exc.reset_at)
            if not wait_for_quota:
                _fail(spent)
            out = {"run_id": params.run_id, "status": "waiting_for_quota",
                   "resume_at": {spent.location: iso(spent.resume_at)}}
        except Dos2hlError as exc:
            _fail(exc)
            raise  # (unreachable: _fail exits)
        if not (wait_for_quota and out["status"] == "waiting_for_quota" and out.get("resume_at")):
            return out
        until = max(out["resume_at"].values())
        typer.echo(f"run {out['run_id']}: waiting for the daily quota until {until}; it goes on by itself "
                   "then", err=True)
        _wait_until(_epoch(until))
    _fail(QuotaExhausted("(every location)", _epoch(until)))
    raise AssertionError("unreachable: _fail exits")


def _epoch(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _wait_until(t: float) -> None:
    """Sleep until ``t`` (and a few seconds: the reset has surely come) in this process only."""
    import time

    time.sleep(max(0.0, t - time.time()) + 5.0)


class TerminalGates:
    """The pipeline's gates on the command line: passed by their flag, else asked on a terminal, else
    (scripts) not passed: the run stops and says how to continue."""

    def __init__(self, params: Any) -> None:
        self.params = params

    @staticmethod
    def _ask(granted: bool, info: str, question: str) -> bool:
        if granted or not sys.stdin.isatty():
            return granted
        typer.echo(info)
        return typer.confirm(question, default=False)

    def map_confirmed(self, mapping: str) -> None:
        from ..mapping.model import require_confirmed

        require_confirmed(mapping)

    def approve(self, sample: Any) -> Any:
        from ..pipeline import Approval

        return Approval(approve=self._ask(self.params.approve, f"sample report: {sample.report}",
                                          "Approve the sample and run the full migration?"))

    def importer(self) -> Any:
        return lambda _packages, checklist: self._ask(
            self.params.imported, f"import the CSV packages in HighLevel's UI as {checklist} (in the run's "
            "folder) says", "Are they imported?")

    def imported(self, bulk: Any) -> Any:
        from ..pipeline import CsvImported

        return CsvImported(imported=False)  # asked in the step, per checklist: the run waits

    def published(self, key: str, report: Any) -> None:
        return None
