"""The delta as a run: stage the new export, find what changed since a completed run (``dos2hl.writing.delta``
says how), create through the run's normal phase, apply updates and deletions, report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..errors import ConfigError
from ..highlevel.protocols import ClientFactory
from ..locations import LocationsFile, load_locations
from ..params import DeltaParams, MigrateParams
from ..planning.plan import ShardSpec, plan_shard
from ..storage import Store, open_store
from ..writing.delta import Changes, apply_changes, carry_ids, delta_changes, digests, payloads_by_key
from ..writing.ledger import IdMap, LedgerWriter, read_ledger

__all__ = ["latest_run", "run_delta"]


def latest_run(storage: str | None = None, settings: Any = None) -> str:
    """The newest run of the storage whose report says completed (what a nightly delta follows)."""
    from ..settings import Dos2hlSettings

    settings = settings or Dos2hlSettings()
    root = open_store(settings.runs_root(storage), settings.s3)
    done = []
    for key in root.list("",
                         skip_dirs=("ledger", "staged", "bulk", "households", "sample", "delta", "state")):
        if key.endswith("/report/report.json") and key.count("/") == 2:
            rep = json.loads(root.read_bytes(key))
            if rep.get("status") == "completed" and rep.get("phase") == "full":
                done.append(key.split("/", 1)[0])
    if not done:
        raise ConfigError(f"no completed run under {storage or settings.storage}: migrate first")
    return sorted(done)[-1]  # run ids start with their UTC time


def _failed_keys(store: Store) -> set[str]:
    key = "delta/state.json"
    return set(json.loads(store.read_bytes(key)).get("failed", [])) if store.exists(key) else set()


def run_delta(opts: DeltaParams, *, client_factory: ClientFactory | None = None,
              settings: Any = None, locations: LocationsFile | None = None,
              progress: Sequence[Any] = ()) -> dict[str, Any]:
    """Stage the new export, find what changed since ``since_run``, create, update (with before-images),
    tag or delete what is gone, verify nothing is left behind, report. ``since_run="latest"``: the
    newest completed run of the storage."""
    from ..settings import Dos2hlSettings
    from .driver import default_factory, prepare, run_phase
    from .report import build_report, write_report

    settings = settings or Dos2hlSettings()
    if opts.since_run == "latest":
        opts = opts.model_copy(update={"since_run": latest_run(opts.storage, settings)})
    prev_uri = settings.run_uri(opts.since_run, opts.storage)
    prev = open_store(prev_uri, settings.s3)
    if not prev.exists("staged/manifest.json"):
        raise ConfigError(f"run {opts.since_run} has no staged snapshot under {prev_uri}: name a run of this "
                          "storage (dos2hl migrate or an earlier delta)")
    lf = locations or load_locations(opts.locations, target=opts.target)
    factory = client_factory or default_factory(lf, settings)
    mopts = MigrateParams(source=opts.source, mapping=opts.mapping, locations=opts.locations,
                          target=opts.target,
                          storage=opts.storage, run_id=opts.run_id, sample=0, executor=opts.executor,
                          workers=opts.workers, export_date=opts.export_date)
    ctx = prepare(mopts, settings=settings, client_factory=factory)
    run = open_store(ctx.run_uri, settings.s3)
    run.write_bytes("delta.json", json.dumps({"since": opts.since_run, "deleted": opts.deleted}).encode())
    retry = _failed_keys(prev) | {k for k, _v in IdMap.from_table(read_ledger(prev)).failed().items()}
    changes: dict[str, Changes] = {}
    plans: dict[str, dict[str, Any]] = {}
    prev_source = json.loads(prev.read_bytes("staged/manifest.json")).get("source")
    for loc in ctx.locations:
        if not any(k.startswith(f"ledger/{loc}/carried/") for k in run.list(f"ledger/{loc}/")):
            carry_ids(prev, run, ctx.run_id, loc, ctx.schemas[loc]["location_id"])
        old, new = {}, {}
        by_spec = []
        for spec in ctx.specs():
            if spec.location != loc:
                continue
            before = ShardSpec(**{**asdict(spec), "staged_uri": f"{prev_uri}/staged", "source": prev_source})
            new_d, _plain = digests(spec)
            new.update(new_d)
            old.update(digests(before)[0])
            by_spec.append((spec, set(new_d)))
        changes[loc] = delta_changes(old, new, retry)
        for spec, keys in by_spec:  # the payloads to update with, sealed as the writer sends them
            if keys & set(changes[loc].changed):
                plans.setdefault(loc, {}).update(payloads_by_key(plan_shard(spec)[0]))
    sealer = None
    if any(c.changed for c in changes.values()):  # before anything is written: before-images are sealed
        from ..phi import load_sealer

        if not settings.phi_key_file:
            raise ConfigError("a delta that updates records keeps their before-images sealed: set "
                              "DOS2HL_PHI_KEY_FILE (create one with: dos2hl phi new-key --out PATH)")
        sealer = load_sealer(settings.phi_key_file)
    full = run_phase(ctx, "full", client_factory=factory, executor=opts.executor, workers=opts.workers,
                     settings=settings,
                     locations=lf, progress=progress)  # creates what is new (the carried ID map skips
    # the rest)
    from .usage import Watch, record

    updated: Counter[str] = Counter()
    gone_done: Counter[str] = Counter()
    failed: list[str] = []
    waiting: list[str] = []  # a paused location's changes (issue 17): not applied, changed again next time
    watch = Watch(factory)  # the updates and deletes count in the run's requests
    for loc in ctx.locations:
        if loc in full.paused:
            waiting += [*changes[loc].changed, *changes[loc].gone]
            continue
        client = watch(loc)
        ids = IdMap.from_table(read_ledger(run, location=loc))
        ledger = LedgerWriter(run, ctx.run_id, writer=f"delta-{loc}")
        u, g, f = apply_changes(
            client, ctx, loc, changes[loc], plans.get(loc, {}), ids, ledger, opts.deleted, sealer
        )
        ledger.close()
        updated.update(u)
        gone_done.update(g)
        failed += f
    record(ctx.run_uri, "delta", watch.tally())
    pend = [k for k, _v in IdMap.from_table(read_ledger(run)).failed().items()]
    run.write_bytes("delta/state.json", json.dumps({"since": opts.since_run,
                                                    "failed": sorted(set(pend) | set(failed) | set(waiting))
                                                    }).encode())
    rep = build_report(ctx, [full], status_note=f"delta since {opts.since_run}")
    rep["delta"] = {"since": opts.since_run, "changes": {loc: c.counts() for loc, c in changes.items()},
                    "updated": dict(updated), "deleted_in_source": dict(gone_done), "policy": opts.deleted,
                    "failed_updates": len(failed)}
    if failed and rep["status"] == "completed":
        rep["status"] = "incomplete"
    paths = write_report(ctx.run_uri, rep, [full])
    from .progress import mark_reported

    mark_reported(ctx.run_uri, settings.s3)
    return {**rep, "report": paths["md"]}
