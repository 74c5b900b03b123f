"""The migration, as steps a flow (or the CLI) calls in order: prepare -> sample -> full -> verify -> report.

``prepare`` holds the gates that need no person: the map is confirmed and unchanged, the export is
staged, every patient has an owner, every location is provisioned. The sample gate (a person
approves the field diff) sits between ``run_phase(sample)`` and ``run_phase(full)``: a flag or a
prompt on the CLI, a Prefect pause in a deployment.

Execution: each (location, shard) is one unit. ``executor="threads"`` runs them on a thread pool in
this process (tests, small runs); ``"ray"`` on Ray actors sharing the governor actor
(``dos2hl.execution.pool``). Either way every request takes a permit from the governor.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from typing import Any, Literal

from ..errors import ConfigError, DailyLimitError, HighLevelError, LocationPaused, QuotaExhausted
from ..highlevel.protocols import Client, ClientFactory
from ..highlevel.systemic import forget_streaks, is_systemic, pause_reason, quota_pause
from ..highlevel.tally import Tally
from ..locations import LocationsFile, load_locations, open_client
from ..mapping.model import require_confirmed
from ..params import MigrateParams
from ..planning.plan import ShardSpec
from ..planning.sample import choose_sample
from ..planning.zones import blank_zone_warnings, export_offices, export_zones, office_zones, valid_zone
from ..settings import Dos2hlSettings
from ..storage import open_store
from ..writing.households import household_channels, write_households
from ..writing.writer import LocationSchema
from .provisioned import require_provisioned
from .results import Prepared, VerifyResult, WriteResult, merge_diffs
from .schedule import default_workers, per_location, run_fair
from .shard import ShardResult, is_paused, migrate_shard_isolated, not_started, paused_by

__all__ = ["Prepared", "VerifyResult", "WriteResult", "prepare", "run_phase", "verify_phase", "new_run_id"]

log = logging.getLogger("dos2hl.migrate")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def prepare(opts: MigrateParams, *, settings: Dos2hlSettings | None = None,
            client_factory: ClientFactory | None = None) -> Prepared:
    """The gates without a person, staging, providers and the locations' schema."""
    from ..api import stage_export
    from ..providers import resolve_providers

    settings = settings or Dos2hlSettings()
    fmap = require_confirmed(opts.mapping)  # gate: confirmed and unchanged
    if any(e.phi == "encrypt" for e in fmap.fields if e.target not in ("skip", "reference")):
        from ..phi import load_sealer

        load_sealer(settings.phi_key_file)  # before any write: the key exists and is readable
    lf = load_locations(opts.locations, target=opts.target)
    run_id = opts.run_id or new_run_id()
    run_uri = settings.run_uri(run_id, opts.storage)
    staged_uri = f"{run_uri}/staged"
    staged = open_store(staged_uri, settings.s3)
    if not staged.exists("manifest.json"):
        if not opts.source:
            raise ConfigError(f"run {run_id} has no staged export under {staged_uri}: give the export to "
                              f"migrate")
        stage_export(opts.source, staged_uri, profile=opts.mapping, settings=settings,
                     export_date=opts.export_date)
    manifest = json.loads(staged.read_bytes("manifest.json"))
    from ..staging import require_balanced

    require_balanced(manifest, staged_uri)  # gate: nothing of the export left unread or unaccounted
    source = opts.source or manifest["source"]  # a retry continues the run on the export it staged
    shards: dict[str, set[int]] = {}
    for s in manifest["tables"].get("patient", {}).get("shards", []):
        shards.setdefault(s["location"], set()).add(int(s["shard"]))
    lf.require(shards)  # every export location must be mapped to a sub-account
    from ..workflows import write_workflow_reference

    # what the practice's admin rebuilds by hand in HighLevel (no workflow API): counts and codes only
    write_workflow_reference(staged, open_store(run_uri, settings.s3), sorted(shards),
                             key="report/workflows.md")
    from .usage import Watch, record

    factory = Watch(client_factory or default_factory(lf, settings))  # prepare's reads count in the run
    clients = {loc: factory(loc) for loc in sorted(shards)}  # one per location for every check below
    offices = export_offices(staged)
    # every location's checks at once (each is paced only by its own sub-account's budget): one after
    # another, a group's prepare took a round trip per read per location
    threads = default_workers(len(shards))

    def own(loc: str) -> dict[str, str]:  # tenancy: each token opens its own sub-account, before any write
        account = _require_own_location(clients[loc], lf, loc,
                                        lambda: bool(open_store(run_uri, settings.s3).list("ledger/")))
        log.info("export location %s (%s) goes to sub-account %s (%s)", loc, offices.get(loc) or "unnamed",
                 account.id, account.name or "unnamed")
        return {"office": offices.get(loc, ""), "location_id": account.id, "sub_account": account.name or ""}

    tenancy = per_location(sorted(clients), own, workers=threads)
    report = resolve_providers(source, lf, profile=opts.mapping, settings=settings, clients=clients,
                               export_date=opts.export_date)
    report.require_owners()  # gate: no patient lands without an owner
    crm = any(e.table in ("appt", "recall") and e.target != "skip" for e in fmap.fields)
    from ..provision import desired_schema

    desired = desired_schema(fmap, source)  # what the map sends, as provision derives it (same export)
    timed = any(e.table in ("appt", "commlog", "document") and e.target != "skip" for e in fmap.fields)
    raw_zones = export_zones(staged)  # every office's LOCATION.TZ (appointment times are local)
    overrides = lf.zone_overrides()

    def read_schema(loc: str) -> dict[str, Any]:
        owners = {r.prov_id: r.user_id for r in report.rows if r.location == loc and r.user_id}
        if report.fallback_users.get(loc):
            owners[""] = report.fallback_users[loc]
        target = lf.for_source(loc)
        schema = LocationSchema.read(clients[loc], owners=owners, calendar=target.calendar, crm=crm,
                                     time_zone=target.time_zone or valid_zone(raw_zones.get(loc)),
                                     opportunity=bool(desired.opportunity_fields),
                                     objects=sorted(desired.objects))
        if timed and not valid_zone(schema.time_zone):  # never a silent UTC: local times would all move
            raise ConfigError(f"location {loc} ({schema.location_id}) has no usable time zone (LOCATION.TZ, "
                              "locations.yaml and the sub-account's timezone are all blank or unknown): set "
                              f"time_zone for {loc} in locations.yaml; nothing was written")
        require_provisioned(fmap, schema, loc, desired)
        if not schema.allow_duplicates:  # families share channels: decide who keeps them, once
            write_households(open_store(run_uri, settings.s3), loc,
                             household_channels(staged_uri, fmap.model_dump(mode="json"), loc))
        return asdict(schema)

    schemas = per_location(sorted(shards), read_schema, workers=threads)  # the first location's error wins
    zones = office_zones(raw_zones, overrides, {loc: s["time_zone"] for loc, s in schemas.items()})
    for line in blank_zone_warnings(raw_zones, overrides, schemas):
        log.warning("%s", line)
    assert fmap.confirmed is not None
    record(run_uri, "prepare", factory.tally())
    return Prepared(run_id=run_id, run_uri=run_uri, staged_uri=staged_uri,
                    mapping=fmap.model_dump(mode="json"),
                    mapping_path=str(opts.mapping), locations=sorted(shards), schemas=schemas,
                    shards={k: sorted(v) for k, v in shards.items()},
                    confirmation={"by": fmap.confirmed.by, "at": fmap.confirmed.at.isoformat(),
                                  "sha256": fmap.confirmed.sha256},
                    providers=report.to_dict(), phi_key_file=settings.phi_key_file, manifest=manifest,
                    zones=zones,
                    tenancy=tenancy, pause_after=settings.highlevel.pause_after)


def _require_own_location(client: Client, lf: LocationsFile, loc: str,
                          has_written: Callable[[], bool] = lambda: False) -> Any:
    """The sub-account ``loc``'s token opens; ConfigError when it is another one or refused, unless the run
    has already written (``has_written``): then a systemic refusal keeps the location paused."""
    target = lf.for_source(loc)
    try:
        got = client.get_location()
    except (HighLevelError, QuotaExhausted) as exc:
        status = getattr(exc, "status", None)
        if isinstance(exc, (DailyLimitError, QuotaExhausted)):  # the day spent before the run starts: exit 5
            raise quota_pause(exc, loc) from None
        if is_systemic(exc) and has_written():
            # a run that has written: its location is still paused (exit 4), not a mixed-up file (exit 2)
            raise LocationPaused(loc, f"{pause_reason(exc)}; still refused, nothing was written: fix the "
                                 f"cause ({target.credential}, the scope, the sub-account), then resume"
                                 ) from None
        if status in (401, 403):
            cause = getattr(exc, "cause", "unknown")  # token, scope, location... (highlevel.systemic)
            raise ConfigError(f"locations.yaml: the token in {target.credential} does not open location "
                              f"{loc}'s "
                              f"sub-account {target.location_id} (HighLevel answered {status}: {cause}): "
                              "give that sub-account's own token (revoked or rotated: its new one); nothing "
                              "was written") from None
        raise
    if got.id != target.location_id:
        raise ConfigError(f"locations.yaml: the token in {target.credential} opens {got.id}, not {loc}'s "
                          f"{target.location_id}; nothing was written")
    return got


def shared_settings(settings: Dos2hlSettings, executor: str) -> Dos2hlSettings:
    """The settings every step of a run uses, so that all of them share one governor: with Ray workers
    that is the named actor (on the local Ray when no address is set), not a governor of this process
    beside it (two buckets for one location would each allow the whole limit)."""
    if executor == "ray" and not settings.governor.address:
        return settings.model_copy(
            update={"governor": settings.governor.model_copy(update={"address": "local"})}
        )
    return settings


def default_factory(lf: LocationsFile, settings: Dos2hlSettings, *, permits: Any = None,
                    cls: str = "migration") -> ClientFactory:
    """Clients of the locations file whose permits come from the governor the settings name, as
    priority class ``cls`` (``verify`` reads use the reserve kept for them)."""
    from ..governor import open_governor

    permits = (permits or open_governor(settings)).for_class(cls)
    return lambda loc: open_client(lf, loc, permits=permits, settings=settings)


def run_phase(ctx: Prepared, phase: Literal["sample", "full"], *, sample_size: int = 300,
              client_factory: ClientFactory | None = None, executor: str = "threads",
              workers: int | None = None, settings: Dos2hlSettings | None = None,
              locations: LocationsFile | None = None, paused: dict[str, str] | None = None,
              progress: Sequence[Any] = ()) -> WriteResult:
    """Write the sample's patients, or everything (what the sample wrote is found in the ledger).
    ``paused``: locations an earlier step of this attempt paused (the bulk phase): left alone. Each
    shard's counts go to the ``progress`` sinks and the run's progress.json as it ends (``progress``)."""
    from .progress import track

    patients = None
    if phase == "sample":
        patients = choose_sample(open_store(ctx.staged_uri), ctx.locations, sample_size)
    workers = workers or default_workers(len(ctx.locations), executor)
    paused = dict(paused or {})
    forget_streaks(ctx.run_id)  # each location's outage row starts empty (a resumed run's is over)
    with track(ctx, phase, progress, settings=settings) as tracker:
        tracker.begin(ctx.specs(patients))
        found = discover(ctx,
                         client_factory or default_factory(_locations(locations, ctx),
                                                           settings or Dos2hlSettings()), workers=workers,
                         pause=True, locations=[loc for loc in ctx.locations if loc not in paused])
        before = {loc: str(d["paused"]) for loc, d in found.items() if d.get("paused")}  # at discovery
        before.update(paused)
        specs = [spec for spec in ctx.specs(patients) if spec.location not in before]
        # a location that pauses (issue 17) gets none of its shards handed out after that; the others go on
        results = execute(specs, migrate_shard_isolated, client_factory=client_factory, executor=executor,
                          workers=workers,
                          settings=settings, locations=locations, stop=is_paused,
                          skipped=lambda spec, by: not_started(spec, _reason(by), _resume_at(by)),
                          on_done=tracker.on_done)
        for spec in ctx.specs(patients):
            if spec.location in before:
                results.append(not_started(spec, before[spec.location],
                                           found.get(spec.location, {}).get("resume_at")))
                tracker.on_done(spec, results[-1])
        rows = [asdict(r) if isinstance(r, ShardResult) else r for r in results]
        tracker.finish("paused" if WriteResult.paused_of(rows) else "completed")
    from .usage import record

    created: Counter[str] = Counter()
    for r in rows:
        created.update(r.get("created") or {})
    record(ctx.run_uri, phase, Tally.sum(r.get("tally") for r in rows),
           created)  # every shard's, any executor
    paused, resume_at = WriteResult.paused_of(rows), WriteResult.resume_at_of(rows)
    for loc, why in paused.items():
        then = "resume the run after that" if loc in resume_at else "fix the cause, then resume the run"
        log.warning("location %s paused: %s; nothing of it is marked failed: %s (dos2hl resume %s)", loc, why,
                    then, ctx.run_id)
    return WriteResult(phase=phase, shards=rows, sample=patients, discovery=found, paused=paused,
                       resume_at=resume_at)


def _reason(result: Any) -> str:
    return str(result.get("paused") if isinstance(result, dict) else result.paused)


def _resume_at(result: Any) -> float | None:
    at = result.get("resume_at") if isinstance(result, dict) else getattr(result, "resume_at", None)
    return None if at is None else float(at)


def _locations(locations: LocationsFile | None, ctx: Prepared) -> LocationsFile:
    if locations is None:
        raise ConfigError("a phase needs the locations file or a client factory")
    return locations


def discover(ctx: Prepared, client_factory: ClientFactory, *, record_step: bool = True,
             locations: list[str] | None = None, workers: int | None = None,
             pause: bool = False) -> dict[str, dict[str, Any]]:
    """HighLevel is the truth about what exists: read each location by search pages for what it holds
    under our keys (``existing.py``) before anything is created; the inventory goes to the run's storage,
    where every shard writer finds it. Returns LOC -> {"requests": pages read, "found": kind -> n}.
    ``locations``: only these (default: every location of the run), all read at once. ``pause``: a
    location whose reads are refused for a systemic cause (issue 17) answers {"paused": reason} instead
    of stopping every location."""
    from ..highlevel.tally import counting_as, snapshot
    from ..planning.transform import RECORD_TABLES
    from ..writing.existing import save_inventory, take_inventory
    from .usage import record

    fields = ctx.mapping["fields"]
    sent = {e["table"] for e in fields if e["target"] not in ("skip", "reference") and e.get("phi") != "omit"}
    object_keys = sorted({e["target"].rsplit(".", 1)[0] for e in fields
                          if e["target"] not in ("skip", "reference")
                          and e.get("phi") != "omit"} & set(RECORD_TABLES))
    opener = None
    if ctx.phi_key_file and any(e.get("phi") == "encrypt" for e in fields):
        from ..phi import load_sealer

        opener = load_sealer(ctx.phi_key_file).open
    run = open_store(ctx.run_uri)

    def one(loc: str) -> dict[str, Any]:
        schema = LocationSchema(**ctx.schemas[loc])
        pipelines = [p["id"] for name, p in schema.pipelines.items()
                     if (name.lower() == "appointments" and "appt" in sent) or (name.lower() == "recall"
                                                                                and "recall" in sent)]
        client = client_factory(loc)
        before = snapshot(client)
        try:
            with counting_as(client, "discovery"):
                inv = take_inventory(client, location=loc, contact_fields_ids=schema.contact_fields,
                                     opportunity_fields_ids=schema.opportunity_fields,
                                     object_keys=object_keys,
                                     pipeline_ids=pipelines, media=bool(sent & {"document", "clinnote"}),
                                     open_sealed=opener)
        except (HighLevelError, QuotaExhausted) as exc:
            why = paused_by(exc, loc) if pause else None
            if why is None:
                raise
            record(ctx.run_uri, "discovery", snapshot(client) - before)
            log.warning("location %s paused at discovery: %s", loc, why[0])
            out = {"requests": (snapshot(client) - before).total, "found": {}, "paused": why[0]}
            return out if why[1] is None else {**out, "resume_at": why[1]}
        if record_step:  # (the bulk step counts its clients' requests itself)
            record(ctx.run_uri, "discovery", snapshot(client) - before)
        save_inventory(run, inv)
        found = {"contact": len(inv.contacts), "record": len(inv.records),
                 "opportunity": len(inv.opportunities),
                 "file": len(inv.media)}
        if len(inv):
            log.info("location %s (sub-account %s) already holds %s under our keys: they are adopted, none "
                     "is created again", loc, schema.location_id,
                     ", ".join(f"{n} {k}s" for k, n in found.items() if n))
        return {"requests": inv.requests, "found": found}

    todo = ctx.locations if locations is None else [x for x in ctx.locations if x in locations]
    out = per_location(todo, one, workers=workers or default_workers(len(todo)))
    return out


def verify_phase(ctx: Prepared, result: WriteResult, *, client_factory: ClientFactory,
                 executor: str = "threads", workers: int | None = None,
                 settings: Dos2hlSettings | None = None, progress: Sequence[Any] = ()) -> VerifyResult:
    """Read back the phase's records (the sample's, or all of them for --verify full) and merge the diffs.
    The reads take permits as class ``verify`` (half the daily reserve is theirs) and count as such.
    Each location is read in this process by search pages (500 contacts or records, 100 opportunities,
    a calendar range per year of events) wherever that costs fewer requests than one GET per record,
    then every shard is diffed against them; notes cost one list per contact (no notes search exists).
    With the Ray executor too: the pages are read once per location, here, not once per actor.

    Issue 17: progress as a write phase's (phase ``verifying``, verb ``verified``: the ``progress``
    sinks and progress.json); each shard's diff is kept in the run's storage (``verified``), so a
    resumed run reads back only what was not verified; a location whose day runs out (or whose token is
    refused) during its reads pauses alone (``VerifyResult.paused``/``resume_at``), the others finish."""
    from .progress import track
    from .usage import record
    from .verified import not_verified, to_verify, verify_progress, verify_unit

    workers = workers or default_workers(len(ctx.locations), executor)
    # a paused location is read back once it is resumed (its token may be revoked, HighLevel down)
    todo = [loc for loc in ctx.locations if loc not in result.paused]
    specs = [s for s in ctx.specs(result.sample) if s.location in todo]
    unit = partial(verify_unit, keep=result.phase)
    with track(ctx, "verifying", progress, settings=settings, verb="verified") as tracker:
        tracker.begin(specs)
        tracker.set_totals(to_verify(result, todo))
        for loc, why in result.paused.items():  # shown as they are: paused by the phase read back
            tracker.add(loc, {"paused": why, "resume_at": result.resume_at.get(loc)})

        def done(spec: ShardSpec, r: Any) -> None:
            tracker.add(spec.location, verify_progress(r), unit_done=True)

        from .shard import read_back_location

        def one(loc: str) -> list[dict[str, Any]]:
            mine = [s for s in specs if s.location == loc]
            if not mine:
                return []
            client = client_factory(loc)
            sampled = None if result.sample is None else len(result.sample.get(loc, []))
            reader = read_back_location(client, ctx.run_uri, loc, sampled)
            out: list[dict[str, Any]] = []
            for spec in mine:  # once the location paused, its other shards wait for the resumption
                stopped = next((r for r in out if r.get("paused")), None)
                r = (not_verified(spec, str(stopped["paused"]), stopped.get("resume_at")) if stopped
                     else unit(spec, client, reader))
                done(spec, r)
                out.append(r)
            return out

        by_loc = per_location(todo, one, workers=workers)
        diffs = [d for loc in todo for d in by_loc[loc]]
        paused, resume_at = WriteResult.paused_of(diffs), WriteResult.resume_at_of(diffs)
        tracker.finish("paused" if paused or result.paused else "completed")
    out = merge_diffs(diffs)
    record(ctx.run_uri, f"verify-{result.phase}", out["tally"])
    for loc, why in paused.items():
        log.warning("location %s: read-back paused: %s; what it verified is kept, the rest is read back "
                    "when the run resumes (dos2hl resume %s)", loc, why, ctx.run_id)
    return VerifyResult(**out, paused=paused, resume_at=resume_at)


def execute(specs: list[ShardSpec], fn: Callable[[ShardSpec, Any], Any], *,
            client_factory: ClientFactory | None,
            executor: str, workers: int, settings: Dos2hlSettings | None = None,
            locations: LocationsFile | None = None, cls: str = "migration",
            stop: Callable[[Any], bool] | None = None,
            skipped: Callable[[ShardSpec, Any], Any] | None = None,
            on_done: Callable[[ShardSpec, Any], None] | None = None) -> list[Any]:
    """Run ``fn(spec, client)`` for every spec: threads here, or Ray actors (``dos2hl.execution.pool``);
    either way the locations' shards are handed out fairly (``schedule.FairQueue``): every location at
    once, each paced by its own sub-account's budget. ``stop``/``skipped``: ``schedule.run_fair``'s (a
    paused location's shards not yet handed out are not); ``on_done(spec, result)`` as each ends."""
    if executor == "ray":
        from .pool import run_on_ray

        if locations is None:
            raise ConfigError("the Ray executor needs the locations file (clients are opened on the workers)")
        return run_on_ray(specs, fn, locations, settings or Dos2hlSettings(), workers=workers, cls=cls,
                          stop=stop, skipped=skipped, on_done=on_done)
    if client_factory is None:
        raise ConfigError("the thread executor needs a client factory")
    import threading

    local = threading.local()

    def one(spec: ShardSpec) -> Any:
        clients = getattr(local, "clients", None)
        if clients is None:
            clients = local.clients = {}
        if spec.location not in clients:
            clients[spec.location] = client_factory(spec.location)
        return fn(spec, clients[spec.location])

    return run_fair(specs, one, key=lambda spec: spec.location, workers=workers, stop=stop, skipped=skipped,
                    on_done=on_done)
