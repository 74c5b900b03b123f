"""One unit of work: a (location, shard) of staged rows -> transform -> write, through the governor.

``ShardSpec`` is all a worker needs (picklable: it travels to Ray actors); ``migrate_shard`` is a
plain function the thread executor and the Ray actors both call. A patient and all their rows share
a shard (staging put them there), so shards are independent; the reference rows a record joins
(insurance subscriptions, plans, carriers) are read per location.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..mapping.model import Mapping as FieldMap
from ..storage import Store, open_store
from .ledger import IdMap, LedgerWriter, read_ledger, stable_key
from .transform import OBJECT_NAMES, RECORD_TABLES, Plan, Transformer, lookup_descriptions
from .write import SHARED_FIELDS, LocationSchema, ShardWriter, WriteResult, households

__all__ = ["ShardSpec", "ShardResult", "migrate_shard", "plan_shard", "read_back_location", "read_staged",
           "verify_shard", "PATIENT_TABLES"]

# tables read from the patient's shard (txplan rides along for the treatment-plan join)
PATIENT_TABLES = ("patient", "patins", "txitem", "txplan", "ledger", "claim")


@dataclass
class ShardSpec:
    run_id: str
    run_uri: str  # runs/<run_id> (ledger, report); local path or s3://
    staged_uri: str
    mapping: dict[str, Any]  # the confirmed Mapping, as JSON
    location: str  # export LOC_ID
    shard: int
    schema: dict[str, Any]  # LocationSchema as a dict (read once per location by the driver)
    patients: list[int] | None = None  # the sample's patient ids (None: every patient of the shard)
    phi_key_file: str | None = None

    @property
    def name(self) -> str:
        return f"{self.location}/{self.shard:03d}"


@dataclass
class ShardResult:
    location: str
    shard: int
    written: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    shared_channel: int = 0
    staged: dict[str, int] = field(default_factory=dict)  # rows of the shard considered (sample: filtered)
    requests: int = 0  # HTTP requests this shard sent (every attempt, lookups and relations included)
    http_429: int = 0


def read_staged(store: Store, table: str, location: str, shard: int | None = None) -> pa.Table | None:
    """One table's rows of a location (one shard, or all of them); None when there are none."""
    prefix = f"{table}/location={location}/"
    keys = [k for k in store.list(prefix) if k.endswith(".parquet")
            and (shard is None or k.endswith(f"shard={shard:03d}.parquet"))]
    if not keys:
        return None
    return pa.concat_tables([pq.read_table(io.BytesIO(store.read_bytes(k))) for k in sorted(keys)])


def _rows(t: pa.Table | None, keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    if t is None:
        return []
    rows = t.to_pylist()
    return [r for r in rows if keep(r)] if keep else rows


def _transformer(spec: ShardSpec) -> tuple[Transformer, Callable[[str, str], str] | None]:
    fmap = FieldMap.model_validate(spec.mapping)
    sealer = None
    if any(e.phi == "encrypt" for e in fmap.fields) and spec.phi_key_file:
        from ..phi import load_sealer

        sealer = load_sealer(spec.phi_key_file)
    lookups = lookup_descriptions(_rows(read_staged(open_store(spec.staged_uri), "lookup", "_all")))
    tf = Transformer(fmap, location=spec.location, key=stable_key, seal=sealer.seal if sealer else None,
                     lookups=lookups)
    return tf, (sealer.open if sealer else None)


def plan_shard(spec: ShardSpec) -> tuple[Plan, dict[str, int]]:
    """The shard's payloads (pure: staged rows + map) and the rows considered per object."""
    staged = open_store(spec.staged_uri)
    tf, _ = _transformer(spec)
    want = set(spec.patients) if spec.patients is not None else None
    tables = {t: read_staged(staged, t, spec.location, spec.shard) for t in PATIENT_TABLES}
    patients = _rows(tables["patient"], None if want is None else (lambda r: r["pat_id"] in want))
    counts = {"patient": len(patients)}
    plan = Plan()
    gone: set[Any] = set()
    for row in patients:
        if tf.excluded_patient(row):
            gone.add(row["pat_id"])
            plan.excluded["patient"] = plan.excluded.get("patient", 0) + 1
        else:
            plan.contacts.append(tf.contact(row))
    parents = {"txplan": {r["txplan_id"]: r for r in _rows(tables["txplan"])}}
    if "custom_objects.insurance_records" in tf.objects:
        parents["inssub"] = {r["sub_rec_id"]: r for r in _rows(read_staged(staged, "inssub", spec.location))}
        parents["insplan"] = {r["plan_id"]: r for r in _rows(read_staged(staged, "insplan", "_all"))}
        parents["insco"] = {r["carrier_id"]: r for r in _rows(read_staged(staged, "insco", "_all"))}
    ids_in = {r["pat_id"] for r in patients}
    for obj_key in tf.objects:
        rows = _rows(tables.get(RECORD_TABLES[obj_key][0]), lambda r: r.get("pat_id") in ids_in)
        payloads, excluded = tf.records(obj_key, rows, parents, gone)
        name = OBJECT_NAMES[obj_key]
        counts[name] = len(rows)
        plan.records += payloads
        if excluded:
            plan.excluded[name] = excluded
    return plan, counts


def household_channels(staged_uri: str, mapping: dict[str, Any], location: str) -> dict[str, list[str]]:
    """Which patients of a location must leave their email/phone to a household member (write.households);
    computed over the whole location before any shard writes, since families span shards."""
    tf = Transformer(FieldMap.model_validate(mapping), location=location, key=stable_key,
                     seal=lambda text, _f: text)  # only email and phone are read here
    rows = _rows(read_staged(open_store(staged_uri), "patient", location))
    people = []
    for r in rows:
        if tf.excluded_patient(r):
            continue
        body = tf.contact(r).body
        people.append((str(r["pat_id"]), r.get("guar_id") == r["pat_id"], body.get("email"), body.get("phone")))
    return households(people)


def write_households(run: Store, location: str, shared: dict[str, list[str]]) -> None:
    run.write_bytes(f"households/{location}.json", json.dumps(shared).encode())


def read_households(run: Store, location: str) -> dict[str, list[str]]:
    """Written by the driver only when the location refuses duplicate contacts; else empty."""
    key = f"households/{location}.json"
    return json.loads(run.read_bytes(key)) if run.exists(key) else {}


def migrate_shard(spec: ShardSpec, client: Any) -> ShardResult:
    """Transform and write one shard; safe to run again (resume): the ledger says what is done."""
    plan, counts = plan_shard(spec)
    run = open_store(spec.run_uri)
    shared = read_households(run, spec.location)
    writer_id = f"s{spec.shard:03d}"
    ids = IdMap.from_table(_shard_ledger(run, spec.location, writer_id))
    keys = {p.stable_key for p in plan.contacts} | {r.stable_key for r in plan.records}
    # look first where an earlier attempt may have landed unrecorded: a crashed shard, or a failure
    # (a 422 that HighLevel stored anyway, a timeout the lookup could not yet see)
    uncertain = keys if ids.interrupted(spec.name) else keys & set(ids.failed())
    ledger = LedgerWriter(run, spec.run_id, writer=f"{writer_id}-{_uid()}")
    schema = LocationSchema(**spec.schema)
    sent0, r429 = _stats(client)
    out: WriteResult = ShardWriter(client, schema, ledger, ids, run_id=spec.run_id, location=spec.location,
                                   uncertain=uncertain, shared=shared).write(plan, spec.name)
    sent1, r429b = _stats(client)
    result = ShardResult(spec.location, spec.shard, staged=counts, shared_channel=out.shared_channel,
                         requests=sent1 - sent0, http_429=r429b - r429)
    for name in ("written", "created", "failed", "held", "excluded"):
        setattr(result, name, dict(getattr(out, name)))
    return result


def read_back_location(client: Any, object_keys: list[str]) -> dict[str, Any]:
    """Every contact and record of a location, by search pages of 500 (``--verify full``: a few hundred
    requests for a practice instead of one per record)."""
    return {"contacts": {c.id: c for c in client.search_contacts_all(page_limit=500)},
            "records": {k: {r.id: r for r in client.search_records_all(k, page_limit=500)} for k in object_keys}}


def verify_shard(spec: ShardSpec, client: Any, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read back the shard's written records and diff them against the source (see verify.py); with
    ``cache`` (``read_back_location``) from pages already read, else one GET per record."""
    from .verify import FieldDiff, verify_contacts, verify_records

    plan, _ = plan_shard(spec)
    _, open_sealed = _transformer(spec)
    run = open_store(spec.run_uri)
    shared = read_households(run, spec.location)
    for p in plan.contacts:  # expect what the writer sent: household channels moved to custom fields
        for name in shared.get(p.source_id, ()):
            if name in p.body:
                p.body["customFields"][SHARED_FIELDS[name]] = p.body.pop(name)
    ids = IdMap.from_table(_shard_ledger(run, spec.location, f"s{spec.shard:03d}"))
    schema = LocationSchema(**spec.schema)
    diff = FieldDiff()
    if cache is None:
        get_contact, get_record = client.get_contact, client.get_record
    else:
        get_contact = cache["contacts"].get
        get_record = lambda key, rid: cache["records"].get(key, {}).get(rid)  # noqa: E731
    verify_contacts(get_contact, plan.contacts, ids, schema.contact_fields, diff, open_sealed=open_sealed,
                    owners=lambda prov: schema.users.get(prov or "") or schema.users.get(""))
    verify_records(get_record, plan.records, ids, diff, open_sealed=open_sealed)
    return diff.to_dict()


def _shard_ledger(run: Store, location: str, writer_prefix: str) -> pa.Table:
    """Only this shard's files (a patient and all their records are written by their shard's writer),
    and rollbacks, which undo across shards."""
    return read_ledger(run, location=location, writer=(writer_prefix, "rollback"))


def _stats(client: Any) -> tuple[int, int]:
    stats = getattr(client, "stats", None) or {}
    return int(stats.get("sent", 0)), int(stats.get("http_429", 0))


def _uid() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
