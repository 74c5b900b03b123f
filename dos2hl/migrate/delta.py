"""Delta pickup: a new export against the last staged snapshot, written through the ID map.

A delta is a run of its own (its own id, ledger and report) that names the run it follows
(``delta.json``: ``since``). Its export is staged like any run's; changes are found by comparing
*payloads*, not raw rows: both snapshots go through the same ``plan_shard`` (fields the map marks
``encrypt`` compared before sealing), and a digest per stable key says new, changed or gone. So a
change in a column the map does not send changes nothing, and a change the map does send is found
whatever the export's timestamps say.

* New keys: the run's normal writer creates them (the predecessor's ID map is carried into this
  run's ledger as ``carry`` rows, so everything written before is skipped).
* Changed keys already in HighLevel: updated in place (contact, custom-object record, opportunity),
  each update with its **before-image** in the ledger (``before``: sealed with the PHI key, written and
  fsynced before the update is sent), so a rollback restores it, even after a crash mid-update.
  Notes, events and files are written once: a change to them is reported, not applied.
* Gone keys (deleted in the source): the contact is tagged ``dos2hl: deleted in source`` and the
  rest reported; ``deleted="delete"`` deletes them instead (an explicit policy).
* Watermark: keys that failed (in this delta or earlier) are kept in ``delta/state.json`` and tried
  again by the next delta, even when the source row did not change: it never moves past a failure.

A second delta on the same export finds no change and writes nothing.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError, HighLevelError, NotFoundError
from ..locations import LocationsFile, load_locations
from ..params import DeltaParams, MigrateParams
from ..storage import Store, open_store
from .ledger import IdMap, LedgerWriter, Op, payload_hash, read_ledger
from .planning import ShardSpec, plan_shard
from .removal import DELETED_TAG, delete_object
from .transform import OBJECT_NAMES
from .updates import before_keeper, update_in_place

__all__ = ["carry_ids", "delta_changes", "digests", "latest_run", "run_delta"]

log = logging.getLogger("dos2hl.delta")
UPDATABLE = {"patient", "appointment", "recall", *OBJECT_NAMES.values()}


@dataclass
class Changes:
    """Per location: stable key -> (object, digest) of both sides, and the keys in each class."""

    new: dict[str, str] = field(default_factory=dict)  # key -> object
    changed: dict[str, str] = field(default_factory=dict)
    gone: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: dict(Counter(getattr(self, name).values())) for name in ("new", "changed", "gone")}


def digests(spec: ShardSpec) -> tuple[dict[str, tuple[str, str]], Any]:
    """stable key -> (object, digest of what would be sent), from the shard's plain payloads."""
    plan, _ = plan_shard(spec, plain=True)
    out: dict[str, tuple[str, str]] = {}
    for c in plan.contacts:
        out[c.stable_key] = ("patient", payload_hash(c.body))
    for r in plan.records:
        out[r.stable_key] = (OBJECT_NAMES[r.object_key], payload_hash(r.properties))
    for o in plan.crm.opportunities:
        out[o.stable_key] = (o.object, payload_hash([o.name, o.stage, o.status, o.monetary, o.custom,
                                                    o.owner_provider]))
        if o.event is not None:
            out[o.event.stable_key] = ("appointment_event", payload_hash(asdict(o.event)))
    for n in plan.crm.notes:
        out[n.stable_key] = (n.object, payload_hash(n.body))
    for f in plan.crm.files:
        out[f.stable_key] = (f.object, payload_hash([f.name, f.size, f.title, f.description]))
    return out, plan


def delta_changes(old: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]],
                  retry: set[str]) -> Changes:
    ch = Changes()
    for k, (obj, d) in new.items():
        if k not in old:
            ch.new[k] = obj
        elif old[k][1] != d or k in retry:
            ch.changed[k] = obj
    for k, (obj, _d) in old.items():
        if k not in new:
            ch.gone[k] = obj
    return ch


def carry_ids(prev: Store, run: Store, run_id: str, location: str, location_id: str) -> IdMap:
    """The predecessor's ID map, written into this run's ledger as ``carry`` rows (never rolled back by
    this run: it did not write them); returns it."""
    prior = read_ledger(prev, location=location, writer=None)
    ids = IdMap.from_table(prior)
    ledger = LedgerWriter(run, run_id, writer=f"carry-{location}")
    for key, hl_id in ids.items():
        ledger.add(Op(run_id, location, location_id, "carried", key, "", hl_id, "carry", "verified-existing",
                      detail=ids.detail(key)))
    for key, parent in ids.relations():  # relations too: a delta never re-sends one
        ledger.add(Op(run_id, location, location_id, "carried", key, "", None, "relate", "verified-existing",
                      parent=parent))
    ledger.close()
    return ids


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


def run_delta(opts: DeltaParams, *, client_factory: Callable[[str], Any] | None = None,
              settings: Any = None, locations: LocationsFile | None = None) -> dict[str, Any]:
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
                plans.setdefault(loc, {}).update(_payloads(plan_shard(spec)[0]))
    sealer = None
    if any(c.changed for c in changes.values()):  # before anything is written: before-images are sealed
        from ..phi import load_sealer

        if not settings.phi_key_file:
            raise ConfigError("a delta that updates records keeps their before-images sealed: set "
                              "DOS2HL_PHI_KEY_FILE (create one with: dos2hl phi new-key --out PATH)")
        sealer = load_sealer(settings.phi_key_file)
    full = run_phase(ctx, "full", client_factory=factory, executor=opts.executor, workers=opts.workers,
                     settings=settings,
                     locations=lf)  # creates what is new (the carried ID map skips the rest)
    from .usage import Watch, record

    updated, gone_done, failed = Counter(), Counter(), []
    watch = Watch(factory)  # the updates and deletes count in the run's requests
    for loc in ctx.locations:
        client = watch(loc)
        ids = IdMap.from_table(read_ledger(run, location=loc))
        ledger = LedgerWriter(run, ctx.run_id, writer=f"delta-{loc}")
        u, g, f = _apply(
            client, ctx, loc, changes[loc], plans.get(loc, {}), ids, ledger, opts.deleted, sealer
        )
        ledger.close()
        updated.update(u)
        gone_done.update(g)
        failed += f
    record(ctx.run_uri, "delta", watch.tally())
    pend = [k for k, _v in IdMap.from_table(read_ledger(run)).failed().items()]
    run.write_bytes("delta/state.json", json.dumps({"since": opts.since_run,
                                                    "failed": sorted(set(pend) | set(failed))
                                                    }).encode())
    rep = build_report(ctx, [full], status_note=f"delta since {opts.since_run}")
    rep["delta"] = {"since": opts.since_run, "changes": {loc: c.counts() for loc, c in changes.items()},
                    "updated": dict(updated), "deleted_in_source": dict(gone_done), "policy": opts.deleted,
                    "failed_updates": len(failed)}
    if failed and rep["status"] == "completed":
        rep["status"] = "incomplete"
    paths = write_report(ctx.run_uri, rep, [full])
    return {**rep, "report": paths["md"]}


def _payloads(plan: Any) -> dict[str, Any]:
    out: dict[str, Any] = {c.stable_key: c for c in plan.contacts}
    out.update({r.stable_key: r for r in plan.records})
    out.update({o.stable_key: o for o in plan.crm.opportunities})
    return out


def _apply(client: Any, ctx: Any, loc: str, ch: Changes, payloads: dict[str, Any], ids: IdMap,
           ledger: LedgerWriter, deleted: str,
           sealer: Any = None) -> tuple[Counter[str], Counter[str], list[str]]:
    """Updates with before-images, then what is gone; returns (updated, gone handled, failed keys)."""
    from .write import LocationSchema

    schema = LocationSchema(**ctx.schemas[loc])
    updated, gone, failed = Counter(), Counter(), []
    lid = schema.location_id
    for key, obj in sorted(ch.changed.items()):
        hl_id = ids.get(key)
        p = payloads.get(key)
        if hl_id is None or p is None or obj not in UPDATABLE:
            if hl_id is not None and p is None:
                ledger.add(Op(ctx.run_id, loc, lid, obj, key, "", hl_id, "update", "skipped",
                              error="notes, events and files are written once"))
            continue
        row = Op(ctx.run_id, loc, lid, obj, key, getattr(p, "source_id", ""), hl_id, "update", "updated")
        try:
            update_in_place(client, schema, obj, hl_id, p, keep=before_keeper(ledger, sealer, row))
        except HighLevelError as exc:
            ledger.add(Op(ctx.run_id, loc, lid, obj, key, getattr(p, "source_id", ""), hl_id, "update",
                          "failed",
                          http_status=getattr(exc, "status", None), error=f"{type(exc).__name__}"))
            failed.append(key)
            continue
        ledger.add(row)
        updated[obj] += 1
    for key, obj in sorted(ch.gone.items()):
        hl_id = ids.get(key)
        if hl_id is None:
            continue
        try:
            if deleted == "delete":
                delete_object(client, obj, hl_id)
                op, outcome = "delete", "deleted"
            elif obj == "patient":
                client.add_contact_tags(hl_id, [DELETED_TAG])
                op, outcome = "tag", "tagged"
            else:
                op, outcome = "report", "deleted-in-source"
        except NotFoundError:
            op, outcome = "delete", "gone"
        except HighLevelError as exc:
            ledger.add(Op(ctx.run_id, loc, lid, obj, key, "", hl_id, "delete", "failed",
                          error=type(exc).__name__))
            failed.append(key)
            continue
        ledger.add(Op(ctx.run_id, loc, lid, obj, key, "", hl_id, op, outcome))
        gone[obj] += 1
    return updated, gone, failed
