"""Running one unit of work: a (location, shard) planned (``planning``) and written through the
governor, or read back and diffed. ``migrate_shard`` is a plain function the thread executor and the Ray
actors both call; shards are independent (a patient and all their rows share one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import LocationPaused, safe_error
from ..highlevel.protocols import Client
from ..highlevel.tally import counting_as, snapshot
from ..planning.plan import (
    ShardSpec,
    opener_of,
    plan_shard,
    sealer_of,
    transformer_of,
)
from ..planning.transform import (
    OBJECT_NAMES,
)
from ..storage import Store, open_store
from ..writing.existing import load_inventory
from ..writing.households import read_households
from ..writing.ledger import IdMap, LedgerWriter, read_ledger
from ..writing.writer import SHARED_FIELDS, LocationSchema, ShardWriter, WriteResult

__all__ = ["ShardResult", "is_paused", "migrate_shard", "migrate_shard_isolated", "not_started", "paused_by",
           "read_back_location", "shard_ids", "verify_shard"]

@dataclass
class ShardResult:
    location: str
    shard: int
    written: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)  # already in HighLevel under our key: adopted
    updated: dict[str, int] = field(default_factory=dict)  # adopted and updated to the source
    shared_channel: int = 0
    staged: dict[str, int] = field(default_factory=dict)  # rows of the shard considered (sample: filtered)
    requests: int = 0  # HTTP requests this shard sent (every attempt, lookups and relations included)
    http_429: int = 0
    tally: dict[str,
                Any] = field(default_factory=dict)  # the same requests by class and minute (Tally.to_dict)
    excluded_rows: list[tuple[str, str, str]] = field(default_factory=list)  # (object, source id, reason)
    notices: dict[str, Any] = field(default_factory=dict)  # referral variants, events without a time, ...
    error: str = ""  # why the shard stopped (the other shards and locations go on)
    node: str = ""  # the Ray node it ran on (set by the Ray pool; "" on this process's threads)
    retried: int = 0  # how often the Ray pool started it again after its worker was lost
    # why its location paused (issue 17: ids, statuses, counts): "" when it did not; its rows not written
    # are pending, none failed, and a re-run of the run id resumes the shard
    paused: str = ""
    # when the pause is a spent daily quota: the reset it waits for (epoch seconds), else None
    resume_at: float | None = None


def is_paused(result: Any) -> bool:
    """Whether a shard's result (a ``ShardResult`` or its dict, from a Ray worker) paused its location."""
    return bool(result.get("paused") if isinstance(result, dict) else getattr(result, "paused", ""))


def not_started(spec: ShardSpec, reason: str, resume_at: float | None = None) -> ShardResult:
    """The result of a shard never handed out because its location paused first: every row pending."""
    return ShardResult(spec.location, spec.shard, paused=reason, resume_at=resume_at)


def paused_by(exc: BaseException, location: str) -> tuple[str, float | None] | None:
    """(reason, reset time or None) when ``exc`` pauses ``location`` (a systemic refusal, a spent day, a
    ``LocationPaused``), else None."""
    from ..highlevel.systemic import is_quota, is_systemic, pause_reason, quota_pause

    if is_quota(exc):
        quota = quota_pause(exc, location)  # type: ignore[arg-type]
        return quota.reason, quota.resume_at
    if isinstance(exc, LocationPaused):
        return exc.reason, None
    if is_systemic(exc):
        return pause_reason(exc), None
    return None


def migrate_shard_isolated(spec: ShardSpec, client: Client) -> ShardResult:
    """``migrate_shard``, but an error that escapes it stops this shard only: the others (and the other
    locations) go on, and the report names the shard and the error class (never a value)."""
    import logging

    before = snapshot(client)
    try:
        return migrate_shard(spec, client)
    except Exception as exc:  # noqa: BLE001 - isolation is the point; the report shows it
        spent = snapshot(client) - before  # what it sent before it stopped still counts
        out = ShardResult(spec.location, spec.shard, requests=spent.total, http_429=spent.http_429,
                          tally=spent.to_dict())
        paused = paused_by(exc, spec.location)
        if paused is not None:  # a revoked token or a spent day outside the writer's records: a pause
            out.paused, out.resume_at = paused
            logging.getLogger("dos2hl.migrate").warning("location %s paused (shard %s): %s", spec.location,
                                                        spec.name, out.paused)
        else:
            out.error = safe_error(exc)
            logging.getLogger("dos2hl.migrate").error("shard %s stopped: %s", spec.name, type(exc).__name__)
        return out


def migrate_shard(spec: ShardSpec, client: Client) -> ShardResult:
    """Transform and write one shard; safe to run again (resume): the ledger says what is done."""
    plan, counts = plan_shard(spec)
    run = open_store(spec.run_uri)
    shared = read_households(run, spec.location)
    writer_id = f"s{spec.shard:03d}"
    ids = IdMap.from_table(_shard_ledger(run, spec.location, writer_id))
    keys = ({p.stable_key for p in plan.contacts} | {r.stable_key for r in plan.records}
            | {o.stable_key for o in plan.crm.opportunities}
            | {o.event.stable_key for o in plan.crm.opportunities if o.event is not None}
            | {n.stable_key for n in plan.crm.notes} | {f.stable_key for f in plan.crm.files}
            | {f.stable_key + "/link" for f in plan.crm.files})
    # look first where an earlier attempt may have landed unrecorded: a crashed shard, or a failure
    # (a 422 that HighLevel stored anyway, a timeout the lookup could not yet see)
    uncertain = keys if ids.interrupted(spec.name) else keys & set(ids.failed())
    ledger = LedgerWriter(run, spec.run_id, writer=f"{writer_id}-{_uid()}")
    schema = LocationSchema(**spec.schema)
    open_sealed = opener_of(spec)
    before = snapshot(client)
    writer = ShardWriter(client, schema, ledger, ids, run_id=spec.run_id, location=spec.location,
                         uncertain=uncertain, shared=shared,
                         source=open_store(spec.source) if spec.source else None,
                         inventory=load_inventory(run, spec.location),
                         open_sealed=open_sealed, sealer=sealer_of(spec), pause_after=spec.pause_after)
    paused, resume_at = "", None
    try:
        out: WriteResult = writer.write(plan, spec.name)
    except Exception as exc:  # the shard stays "started": the next attempt looks its records up first
        import logging

        why = paused_by(exc, spec.location)  # (a lookup's or a read's 401 or spent day, too)
        if why is None:
            raise
        ledger.flush()
        out = writer.result
        paused, resume_at = why
        out.excluded.update(plan.excluded)
        logging.getLogger("dos2hl.migrate").warning("location %s paused (shard %s): %s", spec.location,
                                                    spec.name, paused)
    spent = snapshot(client) - before
    result = ShardResult(spec.location, spec.shard, staged=counts, shared_channel=out.shared_channel,
                         requests=spent.total, http_429=spent.http_429, tally=spent.to_dict(), paused=paused,
                          resume_at=resume_at)
    for name in ("written", "created", "failed", "held", "excluded", "present", "updated"):
        setattr(result, name, dict(getattr(out, name)))
    result.excluded_rows = list(plan.excluded_rows)
    result.notices = {**plan.notices, "writer": dict(out.notices)}
    return result


def read_back_location(client: Client, run_uri: str, location: str, patients: int | None = None) -> Any:
    """The location's ``ReadBack`` for verifying what the run wrote there (``patients``: only that many
    sampled patients' records): each kind is read by search pages when its pages (counted from the
    location's ledger) cost fewer requests than one GET per record to verify (``--verify full``: pages;
    a tiny sample of a large location: GETs)."""
    from ..writing.verify import ReadBack, read_back_cost

    t = read_ledger(open_store(run_uri), location=location)
    keys: dict[str, set[str]] = {}
    for obj, key, hl in zip(t.column("object").to_pylist(), t.column("stable_key").to_pylist(),
                            t.column("hl_id").to_pylist(), strict=True):
        if hl:
            keys.setdefault(obj, set()).add(key)
    have = {"contact": len(keys.get("patient", ())),
            "opportunity": len(keys.get("appointment", ())) + len(keys.get("recall", ())),
            "event": len(keys.get("appointment_event", ()))}
    have |= {f"record:{key}": len(keys.get(name, ())) for key, name in OBJECT_NAMES.items()}
    share = 1.0 if patients is None else min(1.0, patients / max(1, have["contact"]))
    paged, _cost = read_back_cost(have, share)
    return ReadBack(client, paged)


def shard_ids(run: Store, spec: ShardSpec) -> IdMap:
    """The shard's ID map: what its writer (and rollbacks, imports, a carried map) recorded."""
    return IdMap.from_table(_shard_ledger(run, spec.location, f"s{spec.shard:03d}"))


def verify_shard(spec: ShardSpec, client: Client, reader: Any = None, *, ids: IdMap | None = None
                 ) -> dict[str, Any]:
    """Read back the shard's written records and diff them against the source (see verify.py), through
    ``reader`` (a location's ``ReadBack``: search pages shared by its shards) or, without one, one GET
    per record. Its requests count as ``verify``; the diff carries their tally. ``ids``: the shard's ID
    map when the caller has read it (``shard_ids``). A spent day or a systemic refusal is raised
    (``verified.verify_unit`` pauses the location on it)."""
    from ..writing.verify import FieldDiff, ReadBack, verify_contacts, verify_crm, verify_records

    plan, _ = plan_shard(spec)
    _, open_sealed = transformer_of(spec)
    run = open_store(spec.run_uri)
    shared = read_households(run, spec.location)
    for p in plan.contacts:  # expect what the writer sent: household channels moved to custom fields
        for name in shared.get(p.source_id, ()):
            if name in p.body:
                p.body["customFields"][SHARED_FIELDS[name]] = p.body.pop(name)
    ids = ids if ids is not None else shard_ids(run, spec)
    schema = LocationSchema(**spec.schema)
    reader = reader or ReadBack(client)
    if reader.calendar_id is None:
        reader.calendar_id = schema.calendar_id
    diff = FieldDiff(pause_after=spec.pause_after, location=spec.location)
    before = snapshot(client)
    with counting_as(client, "verify"):
        verify_contacts(reader.contact, plan.contacts, ids, schema.contact_fields, diff,
                        open_sealed=open_sealed,
                        owners=lambda prov: schema.users.get(prov or "") or schema.users.get(""))
        verify_records(reader.record, plan.records, ids, diff, open_sealed=open_sealed,
                       owners=lambda prov: schema.users.get(prov or ""))
        verify_crm(reader, plan.crm, ids, diff, schema, open_sealed=open_sealed)
    return {**diff.to_dict(), "tally": (snapshot(client) - before).to_dict()}


def _shard_ledger(run: Store, location: str, writer_prefix: str) -> pa.Table:
    """Only this shard's files (a patient and all their records are written by their shard's writer),
    rollbacks, which undo across shards, the bulk phase's imports and a delta's carried ID map."""
    return read_ledger(run, location=location, writer=(writer_prefix, "rollback", "bulk", "carry"))


def _uid() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
