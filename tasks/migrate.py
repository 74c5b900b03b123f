"""Tasks of the migration: one library call each (dos2hl.migrate); the flow orders them and holds gates."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from dos2hl.locations import load_locations
from dos2hl.mapping.model import require_confirmed
from dos2hl.migrate import MigrateOptions, PhaseResult, RunContext, prepare, run_phase, verify_phase
from dos2hl.migrate.report import build_report, write_report
from dos2hl.settings import Dos2hlSettings


@task(task_run_name="map confirmed? {mapping}", cache_policy=NO_CACHE)
def map_confirmed(mapping: str) -> dict[str, Any]:
    m = require_confirmed(mapping)
    assert m.confirmed is not None
    return {"by": m.confirmed.by, "at": m.confirmed.at.isoformat(), "sha256": m.confirmed.sha256}


@task(task_run_name="confirm map {mapping} by {by}", cache_policy=NO_CACHE)
def confirm_map(mapping: str, by: str) -> dict[str, Any]:
    from dos2hl.mapping.model import load_mapping, save_mapping

    done = load_mapping(mapping).confirm(by)
    save_mapping(done, mapping)
    assert done.confirmed is not None
    return {"by": done.confirmed.by, "sha256": done.confirmed.sha256}


@task(task_run_name="prepare run", cache_policy=NO_CACHE)
def prepare_run(opts: MigrateOptions) -> RunContext:
    return prepare(opts, settings=_settings(opts), client_factory=_factory(opts))


@task(task_run_name="write {phase}", retries=1, retry_delay_seconds=[30], cache_policy=NO_CACHE)
def write_phase(ctx: RunContext, phase: str, opts: MigrateOptions) -> PhaseResult:
    return run_phase(ctx, phase, sample_size=opts.sample, executor=opts.executor,  # type: ignore[arg-type]
                     workers=opts.workers, settings=_settings(opts),
                     locations=load_locations(opts.locations, target=opts.target),
                     client_factory=_factory(opts))


@task(task_run_name="bulk CSV path", cache_policy=NO_CACHE)
def bulk_phase(ctx: RunContext, opts: MigrateOptions, imported: bool = False) -> dict[str, Any]:
    """CSV packages above the threshold, imported (sandbox) or waiting for a person, then reconciled."""
    from dos2hl.migrate import bulk_step

    done = bulk_step(ctx, opts, _factory(opts), (lambda _p, _c: True) if imported else None)
    phase = PhaseResult("bulk", done.shard_rows()) if done.packages and not done.waiting else None
    return {"waiting": done.waiting, "phase": phase}


@task(task_run_name="verify {result.phase}", cache_policy=NO_CACHE)
def verify(ctx: RunContext, result: PhaseResult, opts: MigrateOptions) -> dict[str, Any]:
    return verify_phase(ctx, result, executor=opts.executor, workers=opts.workers, settings=_settings(opts),
                        locations=load_locations(opts.locations, target=opts.target),
                        client_factory=_factory(opts, "verify"))


@task(task_run_name="report {uri}", cache_policy=NO_CACHE)
def report(ctx: RunContext, phases: list[PhaseResult], diff: dict[str, Any], uri: str,
           note: str = "") -> dict[str, Any]:
    rep = build_report(ctx, phases, diff=diff, status_note=note)
    return {**rep, "paths": write_report(uri, rep, phases)}


@task(task_run_name="roll back {run_id}", cache_policy=NO_CACHE)
def rollback_run(run_id: str, locations: str, target: str | None, storage: str | None,
                 executor: str = "threads") -> dict[str, Any]:
    from dos2hl.migrate.rollback import rollback

    root = str(storage or Dos2hlSettings().storage).rstrip("/")
    return rollback(f"{root}/{run_id}", run_id, _clients(locations, target, executor))


_GOVERNORS: dict[tuple[str, str, str], Any] = {}


def _settings(opts: MigrateOptions) -> Dos2hlSettings:
    from dos2hl.migrate.driver import shared_settings

    return shared_settings(Dos2hlSettings(), opts.executor)


def _factory(opts: MigrateOptions, cls: str = "migration") -> Any:
    return _clients(opts.locations, opts.target, opts.executor, cls)


def _clients(locations: str, target: str | None, executor: str, cls: str = "migration") -> Any:
    """Clients on the one governor of this flow process: the tasks of a run (and of the runs after it
    in the same worker process) share it, instead of each opening, restoring and fail-safe-waiting its own."""
    from dos2hl.governor import open_governor, state_uri
    from dos2hl.migrate.driver import default_factory, shared_settings

    settings = shared_settings(Dos2hlSettings(), executor)
    key = (settings.governor.address, settings.governor.name, state_uri(settings))
    if key not in _GOVERNORS:
        _GOVERNORS[key] = open_governor(settings)
    return default_factory(load_locations(locations, target=target), settings, permits=_GOVERNORS[key], cls=cls)
