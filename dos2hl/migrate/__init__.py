"""The migration: staged shards -> HighLevel, through the governor, with a durable ledger.

``migrate(opts, approve=...)`` runs the seed's steps in order (the Prefect flow calls the same steps
one task each): prepare (map confirmed, staged, owners, provisioned) -> sample -> approval gate ->
full run -> verify -> report. Re-running with the same run id resumes: the ledger says what is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..settings import Dos2hlSettings
from .driver import MigrateOptions, PhaseResult, RunContext, new_run_id, prepare, run_phase, verify_phase
from .report import build_report, write_report

__all__ = ["bulk_step", "MigrateOptions", "PhaseResult", "RunContext", "migrate", "new_run_id", "prepare", "run_phase",
           "verify_phase"]


def migrate(opts: MigrateOptions, *, approve: Callable[[dict[str, Any]], bool] | None = None,
            settings: Dos2hlSettings | None = None, client_factory: Any = None,
            verify_factory: Any = None, imported: Callable[[list[Any], str], bool] | None = None
            ) -> dict[str, Any]:
    """The whole run; ``approve(sample_report)`` is the sample gate (None or False: stop after the sample);
    ``imported(packages, checklist)`` the bulk gate (the operator imported the CSV packages; against
    the sandbox the run imports them itself). See ``bulk_step``.

    One governor serves every step of this process: writes as class ``migration``, read-backs as
    ``verify`` (``verify_factory``; tests pass their own factories)."""
    from ..governor import open_governor
    from ..locations import load_locations
    from .driver import default_factory, shared_settings

    settings = shared_settings(settings or Dos2hlSettings(), opts.executor)
    lf = load_locations(opts.locations, target=opts.target)
    if client_factory is None:
        permits = open_governor(settings)
        client_factory = default_factory(lf, settings, permits=permits)
        verify_factory = verify_factory or default_factory(lf, settings, permits=permits, cls="verify")
    ctx = prepare(opts, settings=settings, client_factory=client_factory)
    kw: dict[str, Any] = {"executor": opts.executor, "workers": opts.workers, "settings": settings, "locations": lf}
    writes = {**kw, "client_factory": client_factory}
    reads = {**kw, "client_factory": verify_factory or client_factory}
    phases: list[PhaseResult] = []
    if opts.sample > 0:
        sample = run_phase(ctx, "sample", sample_size=opts.sample, **writes)
        phases.append(sample)
        diff = verify_phase(ctx, sample, **reads)
        rep = build_report(ctx, phases, diff=diff, status_note="sample written and verified; awaiting approval")
        paths = write_report(ctx.run_uri + "/sample", rep, phases)
        if approve is None or not approve({**rep, "paths": paths}):
            return {**rep, "report": paths["md"], "next": f"review {paths['md']}, then re-run with "
                    f"--run-id {ctx.run_id} --approve to keep the sample and run the rest, or undo the "
                    f"sample: dos2hl rollback {ctx.run_id} --locations {opts.locations}"}
    bulk = bulk_step(ctx, opts, client_factory, imported)
    if bulk.waiting:
        rep = build_report(ctx, phases or [PhaseResult("bulk", bulk.shard_rows())],
                           status_note="waiting for the CSV imports")
        paths = write_report(ctx.run_uri, rep, phases)
        return {**rep, "report": paths["md"], "bulk_waiting": bulk.waiting,
                "next": f"import the CSV packages in HighLevel's UI as {', '.join(bulk.waiting)} (in the run's "
                        f"folder) says, then re-run with --run-id {ctx.run_id} --imported"}
    if bulk.packages:
        phases.append(PhaseResult("bulk", bulk.shard_rows()))
    full = run_phase(ctx, "full", **writes)
    phases.append(full)
    check = full if opts.verify == "full" else phases[0]
    if check is full and opts.verify != "full":  # no sample phase: read back a sample of the full run
        from ..storage import open_store
        from .sample import choose_sample

        check = PhaseResult("verify", [], sample=choose_sample(open_store(ctx.staged_uri), ctx.locations,
                                                                opts.sample or 300))
    diff = verify_phase(ctx, check, **reads)
    rep = build_report(ctx, phases, diff=diff)
    paths = write_report(ctx.run_uri, rep, phases)
    return {**rep, "report": paths["md"]}


def bulk_step(ctx: RunContext, opts: MigrateOptions, client_factory: Any,
              imported: Callable[[list[Any], str], bool] | None = None) -> Any:
    """The bulk CSV path for record sets above ``opts.bulk_threshold`` (``dos2hl.bulk.run``)."""
    from ..bulk.run import bulk_phase
    from .usage import Watch, record

    watch = Watch(client_factory)  # its reconciliation pages count in the run (its rows create nothing)
    try:
        return bulk_phase(ctx, threshold=opts.bulk_threshold, client_factory=watch, importer=imported)
    finally:
        record(ctx.run_uri, "bulk", watch.tally())
