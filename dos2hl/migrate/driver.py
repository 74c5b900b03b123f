"""The migration, as steps a flow (or the CLI) calls in order: prepare -> sample -> full -> verify -> report.

``prepare`` holds the gates that need no person: the map is confirmed and unchanged, the export is
staged, every patient has an owner, every location is provisioned. The sample gate (a person
approves the field diff) sits between ``run_phase(sample)`` and ``run_phase(full)``: a flag or a
prompt on the CLI, a Prefect pause in a deployment.

Execution: each (location, shard) is one unit. ``executor="threads"`` runs them on a thread pool in
this process (tests, small runs); ``"ray"`` on Ray actors sharing the governor actor
(``dos2hl.governor.pool``). Either way every request takes a permit from the governor.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from ..highlevel.tally import Tally
from ..locations import LocationsFile, load_locations, open_client
from ..mapping.model import Mapping as FieldMap
from ..mapping.model import require_confirmed
from ..settings import Dos2hlSettings
from ..storage import open_store
from .run import (
    ShardResult,
    ShardSpec,
    household_channels,
    migrate_shard_isolated,
    verify_shard,
    write_households,
)
from .sample import choose_sample
from .write import LocationSchema

__all__ = ["MigrateOptions", "RunContext", "PhaseResult", "prepare", "run_phase", "verify_phase", "new_run_id"]

log = logging.getLogger("dos2hl.migrate")
ClientFactory = Callable[[str], Any]  # export location -> HighLevelClient


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


@dataclass
class MigrateOptions:
    source: str
    mapping: str
    locations: str
    target: str | None = None
    storage: str | None = None  # default: DOS2HL_STORAGE
    run_id: str | None = None
    sample: int = 300  # 0: no sample phase
    executor: Literal["threads", "ray"] = "threads"
    workers: int = 4
    verify: Literal["sample", "full"] = "sample"
    export_date: dt.date | None = None
    bulk_threshold: int = 5000  # records per object and location above which the CSV bulk path is taken


@dataclass
class RunContext:
    """Everything the phases share; JSON-able (it crosses Prefect task boundaries)."""

    run_id: str
    run_uri: str
    staged_uri: str
    mapping: dict[str, Any]
    mapping_path: str
    locations: list[str]  # export LOC_IDs
    schemas: dict[str, dict[str, Any]]  # LOC -> LocationSchema dict
    shards: dict[str, list[int]]  # LOC -> shard numbers holding patients
    confirmation: dict[str, Any]
    providers: dict[str, Any]
    phi_key_file: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    def specs(self, patients: dict[str, list[int]] | None = None) -> list[ShardSpec]:
        return [ShardSpec(self.run_id, self.run_uri, self.staged_uri, self.mapping, loc, shard, self.schemas[loc],
                          None if patients is None else patients.get(loc, []), self.phi_key_file,
                          self.manifest.get("source"))
                for loc in self.locations for shard in self.shards[loc]]


@dataclass
class PhaseResult:
    phase: str
    shards: list[dict[str, Any]]
    diff: dict[str, Any] = field(default_factory=dict)
    sample: dict[str, list[int]] | None = None

    def totals(self) -> dict[str, dict[str, Counter[str]]]:
        """LOC -> measure -> object -> n."""
        out: dict[str, dict[str, Counter[str]]] = {}
        for r in self.shards:
            loc = out.setdefault(r["location"], {m: Counter() for m in
                                                 ("staged", "written", "created", "failed", "held", "excluded")})
            for m in loc:
                loc[m].update(r.get(m, {}))
        return out

    def failed(self) -> int:
        return sum(sum(r.get("failed", {}).values()) + sum(r.get("held", {}).values()) for r in self.shards)


def prepare(opts: MigrateOptions, *, settings: Dos2hlSettings | None = None,
            client_factory: ClientFactory | None = None) -> RunContext:
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
    root = str(opts.storage or settings.storage).rstrip("/")
    run_uri, staged_uri = f"{root}/{run_id}", f"{root}/{run_id}/staged"
    staged = open_store(staged_uri, settings.s3)
    if not staged.exists("manifest.json"):
        if not opts.source:
            raise ConfigError(f"run {run_id} has no staged export under {staged_uri}: give the export to migrate")
        stage_export(opts.source, staged_uri, profile=opts.mapping, settings=settings, export_date=opts.export_date)
    manifest = json.loads(staged.read_bytes("manifest.json"))
    source = opts.source or manifest["source"]  # a retry continues the run on the export it staged
    shards: dict[str, set[int]] = {}
    for s in manifest["tables"].get("patient", {}).get("shards", []):
        shards.setdefault(s["location"], set()).add(int(s["shard"]))
    lf.require(shards)  # every export location must be mapped to a sub-account
    from ..workflows import write_workflow_reference

    # what the practice's admin rebuilds by hand in HighLevel (no workflow API): counts and codes only
    write_workflow_reference(staged, open_store(run_uri, settings.s3), sorted(shards), key="report/workflows.md")
    from .usage import Watch, record

    factory = Watch(client_factory or default_factory(lf, settings))  # prepare's reads count in the run
    clients = {loc: factory(loc) for loc in sorted(shards)}  # one per location for every check below
    for loc, client in clients.items():  # tenancy: each token opens its own sub-account, before any write
        _require_own_location(client, lf, loc)
    report = resolve_providers(source, lf, profile=opts.mapping, settings=settings, clients=clients,
                               export_date=opts.export_date)
    report.require_owners()  # gate: no patient lands without an owner
    schemas = {}
    crm = any(e.table in ("appt", "recall") and e.target != "skip" for e in fmap.fields)
    zones = _export_zones(staged)
    for loc in sorted(shards):
        client = clients[loc]
        owners = {r.prov_id: r.user_id for r in report.rows if r.location == loc and r.user_id}
        if report.fallback_users.get(loc):
            owners[""] = report.fallback_users[loc]
        target = lf.for_source(loc)
        schema = LocationSchema.read(client, owners=owners, calendar=target.calendar, crm=crm,
                                     time_zone=target.time_zone or zones.get(loc))
        _require_provisioned(fmap, schema, loc)
        schemas[loc] = asdict(schema)
        if not schema.allow_duplicates:  # families share channels: decide who keeps them, once
            write_households(open_store(run_uri, settings.s3), loc,
                             household_channels(staged_uri, fmap.model_dump(mode="json"), loc))
    assert fmap.confirmed is not None
    record(run_uri, "prepare", factory.tally())
    return RunContext(run_id, run_uri, staged_uri, fmap.model_dump(mode="json"), str(opts.mapping), sorted(shards),
                      schemas, {k: sorted(v) for k, v in shards.items()},
                      {"by": fmap.confirmed.by, "at": fmap.confirmed.at.isoformat(), "sha256": fmap.confirmed.sha256},
                      report.to_dict(), settings.phi_key_file, manifest)


def _require_own_location(client: Any, lf: LocationsFile, loc: str) -> None:
    from ..errors import HighLevelError

    target = lf.for_source(loc)
    try:
        got = client.get_location()
    except HighLevelError as exc:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise ConfigError(f"locations.yaml: the token in ${target.token_env} does not open location {loc}'s "
                              f"sub-account {target.location_id} (HighLevel answered {status}): give that "
                              "sub-account's own token; nothing was written") from None
        raise
    if got.id != target.location_id:
        raise ConfigError(f"locations.yaml: the token in ${target.token_env} opens {got.id}, not {loc}'s "
                          f"{target.location_id}; nothing was written")


def _export_zones(staged: Any) -> dict[str, str]:
    """LOC_ID -> the time zone the export's LOCATION table gives (appointment times are local)."""
    from .run import read_staged

    t = read_staged(staged, "location", "_all")
    return {str(r["loc_id"]).upper(): str(r["tz"]) for r in (t.to_pylist() if t is not None else []) if r.get("tz")}


def _require_provisioned(fmap: FieldMap, schema: LocationSchema, loc: str) -> None:
    need = {"contact.source_system_id"} | {e.target for e in fmap.fields if e.table == "patient" and
                                           e.target.startswith("contact.") and e.type != "STANDARD"
                                           and not e.target.startswith("contact.<") and e.phi != "omit"}
    missing = sorted(need - set(schema.contact_fields))
    objects = {e.target.rsplit(".", 1)[0] for e in fmap.fields if e.target.startswith("custom_objects.")
               and fmap.relations.get(e.target.rsplit(".", 1)[0], "association") == "association"}
    missing += sorted(f"association {o} <-> contact" for o in objects if o not in schema.associations)
    used = {e.table for e in fmap.fields if e.target not in ("skip", "reference") and e.phi != "omit"}
    manual = []  # what only a person can create in HighLevel's UI (provision --plan lists it)
    for table, name in (("appt", "Appointments"), ("recall", "Recall")):
        if table in used:
            have = next((v for k, v in schema.pipelines.items() if k.lower() == name.lower()), None)
            status = fmap.entry(table, "status")
            stages = {v.lower() for v in (status.values or {}).values()} if status is not None else set()
            if have is None:
                manual.append(f"pipeline '{name}'")
            elif stages - set(have["stages"]):
                manual.append(f"stages {', '.join(sorted(stages - set(have['stages'])))} of pipeline '{name}'")
    if "appt" in used and not schema.calendar_id:
        manual.append("a calendar for appointments (or calendar: in locations.yaml names one that exists)")
    if manual:
        raise ConfigError(f"location {loc} ({schema.location_id}) lacks {'; '.join(manual)}: create them in "
                          "HighLevel's UI (the API cannot), see dos2hl provision --plan")
    if missing:
        more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ConfigError(f"location {loc} ({schema.location_id}) is not provisioned for this map: missing "
                          f"{', '.join(missing[:5])}{more}; run: dos2hl provision --mapping ... --apply")


def shared_settings(settings: Dos2hlSettings, executor: str) -> Dos2hlSettings:
    """The settings every step of a run uses, so that all of them share one governor: with Ray workers
    that is the named actor (on the local Ray when no address is set), not a governor of this process
    beside it (two buckets for one location would each allow the whole limit)."""
    if executor == "ray" and not settings.governor.address:
        return settings.model_copy(update={"governor": settings.governor.model_copy(update={"address": "local"})})
    return settings


def default_factory(lf: LocationsFile, settings: Dos2hlSettings, *, permits: Any = None,
                    cls: str = "migration") -> ClientFactory:
    """Clients of the locations file whose permits come from the governor the settings name, as
    priority class ``cls`` (``verify`` reads use the reserve kept for them)."""
    from ..governor import open_governor

    permits = (permits or open_governor(settings)).for_class(cls)
    return lambda loc: open_client(lf, loc, permits=permits, settings=settings)


def run_phase(ctx: RunContext, phase: Literal["sample", "full"], *, sample_size: int = 300,
              client_factory: ClientFactory | None = None, executor: str = "threads", workers: int = 4,
              settings: Dos2hlSettings | None = None, locations: LocationsFile | None = None) -> PhaseResult:
    """Write the sample's patients, or everything (what the sample wrote is found in the ledger)."""
    patients = None
    if phase == "sample":
        patients = choose_sample(open_store(ctx.staged_uri), ctx.locations, sample_size)
    specs = ctx.specs(patients)
    results = execute(specs, migrate_shard_isolated, client_factory=client_factory, executor=executor, workers=workers,
                      settings=settings, locations=locations)
    rows = [asdict(r) if isinstance(r, ShardResult) else r for r in results]
    from .usage import record

    created: Counter[str] = Counter()
    for r in rows:
        created.update(r.get("created") or {})
    record(ctx.run_uri, phase, Tally.sum(r.get("tally") for r in rows), created)  # every shard's, any executor
    return PhaseResult(phase, rows, sample=patients)


def verify_phase(ctx: RunContext, result: PhaseResult, *, client_factory: ClientFactory | None = None,
                 executor: str = "threads", workers: int = 4, settings: Dos2hlSettings | None = None,
                 locations: LocationsFile | None = None) -> dict[str, Any]:
    """Read back the phase's records (the sample's, or all of them for --verify full) and merge the diffs.
    The reads take permits as class ``verify`` (half the daily reserve is theirs) and count as such.
    Each location is read in this process by search pages (500 contacts or records, 100 opportunities,
    a calendar range per year of events) wherever that costs fewer requests than one GET per record,
    then every shard is diffed against them; notes cost one list per contact (no notes search exists).
    Without a client factory (Ray actors open their own clients) every record costs one GET."""
    from .usage import record

    if client_factory is not None:
        from .run import read_back_location

        diffs = []
        for loc in ctx.locations:
            specs = [s for s in ctx.specs(result.sample) if s.location == loc]
            if not specs:
                continue
            client = client_factory(loc)
            sampled = None if result.sample is None else len(result.sample.get(loc, []))
            reader = read_back_location(client, ctx.run_uri, loc, sampled)
            diffs += [verify_shard(spec, client, reader) for spec in specs]
    else:
        diffs = execute(ctx.specs(result.sample), verify_shard, client_factory=client_factory, executor=executor,
                        workers=workers, settings=settings, locations=locations, cls="verify")
    out = merge_diffs(diffs)
    record(ctx.run_uri, f"verify-{result.phase}", out["tally"])
    return out


def merge_diffs(diffs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"read_back": Counter(), "not_found": Counter(), "fields": {}, "examples": {},
                           "mismatches": 0, "tally": Tally.sum(d.get("tally") for d in diffs).to_dict()}
    for d in diffs:
        out["read_back"].update(d["read_back"])
        out["not_found"].update(d["not_found"])
        out["mismatches"] += d["mismatches"]
        for obj, fields in d["fields"].items():
            for name, c in fields.items():
                acc = out["fields"].setdefault(obj, {}).setdefault(name, Counter())
                acc.update(c)
        for k, keys in d["examples"].items():
            out["examples"].setdefault(k, [])
            out["examples"][k] = (out["examples"][k] + keys)[:5]
    out["read_back"], out["not_found"] = dict(out["read_back"]), dict(out["not_found"])
    out["fields"] = {o: {f: dict(c) for f, c in fs.items()} for o, fs in out["fields"].items()}
    return out


def execute(specs: list[ShardSpec], fn: Callable[[ShardSpec, Any], Any], *, client_factory: ClientFactory | None,
            executor: str, workers: int, settings: Dos2hlSettings | None = None,
            locations: LocationsFile | None = None, cls: str = "migration") -> list[Any]:
    """Run ``fn(spec, client)`` for every spec: threads here, or Ray actors (``dos2hl.governor.pool``)."""
    if executor == "ray":
        from ..governor.pool import run_on_ray

        if locations is None:
            raise ConfigError("the Ray executor needs the locations file (clients are opened on the workers)")
        return run_on_ray(specs, fn, locations, settings or Dos2hlSettings(), workers=workers, cls=cls)
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

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dos2hl-shard") as pool:
        return list(pool.map(one, specs))
