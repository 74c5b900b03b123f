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

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import HighLevelError, NotFoundError
from ..highlevel.protocols import Client
from ..planning.keys import payload_hash
from ..planning.plan import ShardSpec, plan_shard
from ..planning.transform import OBJECT_NAMES
from ..storage import Store
from .ledger import IdMap, LedgerWriter, Op, read_ledger
from .removal import DELETED_TAG, delete_object
from .updates import before_keeper, update_in_place
from .writer import LocationSchema

__all__ = ["UPDATABLE", "Changes", "apply_changes", "carry_ids", "delta_changes", "digests",
           "payloads_by_key"]

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


def payloads_by_key(plan: Any) -> dict[str, Any]:
    out: dict[str, Any] = {c.stable_key: c for c in plan.contacts}
    out.update({r.stable_key: r for r in plan.records})
    out.update({o.stable_key: o for o in plan.crm.opportunities})
    return out


def apply_changes(client: Client, ctx: Any, loc: str, ch: Changes, payloads: dict[str, Any], ids: IdMap,
           ledger: LedgerWriter, deleted: str,
           sealer: Any = None) -> tuple[Counter[str], Counter[str], list[str]]:
    """Updates with before-images, then what is gone; returns (updated, gone handled, failed keys)."""
    schema = LocationSchema(**ctx.schemas[loc])
    updated: Counter[str] = Counter()
    gone: Counter[str] = Counter()
    failed: list[str] = []
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
