"""Planning one unit of work: a (location, shard) of staged rows -> the payloads to send (pure: no
request; the run, the delta's digests and the quota planner all plan through here).

``ShardSpec`` is all a worker needs (picklable: it travels to Ray actors). A patient and all their rows
share a shard (staging put them there); the reference rows a record joins (plans, carriers, referral
sources, LOOKUP descriptions, user-defined fields) are read once per staging and the insurance
subscriptions once per location (``staged_reference``, ``subscriptions_of``), not once per shard.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..mapping.model import Mapping as FieldMap
from ..mapping.objectmap import UserField, user_field
from ..storage import Store, open_store
from . import columnar
from .keys import stable_key
from .transform import (
    OBJECT_NAMES,
    RECORD_TABLES,
    Plan,
    Transformer,
    lookup_descriptions,
    recall_descriptions,
)

__all__ = ["PATIENT_TABLES", "ShardSpec", "of_patients", "opener_of", "plan_shard", "read_staged", "rows_of",
           "sealer_of", "transformer_of"]

# tables read from the patient's shard (txplan rides along for the treatment-plan join)
PATIENT_TABLES = ("patient", "patins", "txitem", "txplan", "ledger", "claim", "clinnote", "appt", "apptproc",
                  "recall", "patref", "commlog", "document")


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
    source: str | None = None  # the export (documents' files are read from its IMAGES/ tree)
    # every office's IANA zone, LOC_ID -> zone (driver.office_zones): an appointment is placed in the
    # zone of the office where it took place, which need not be its patient's home location
    zones: dict[str, str] = field(default_factory=dict)
    pause_after: int = 5  # outages in a row (after retries) that pause the location (highlevel.systemic)

    @property
    def name(self) -> str:
        return f"{self.location}/{self.shard:03d}"


def staged_keys(store: Store, table: str, location: str, shard: int | None = None) -> list[str]:
    """The Parquet files of one table of a location (one shard, or all of them), in order."""
    end = ".parquet" if shard is None else f"shard={shard:03d}.parquet"
    return sorted(k for k in store.list(f"{table}/location={location}/") if k.endswith(end))


def read_staged(store: Store, table: str, location: str, shard: int | None = None) -> pa.Table | None:
    """One table's rows of a location (one shard, or all of them); None when there are none."""
    keys = staged_keys(store, table, location, shard)
    if not keys:
        return None
    # ParquetFile.read: a single file's table without the dataset machinery read_table builds (half the
    # time on a shard's small files, read for every shard of every run)
    return pa.concat_tables([pq.ParquetFile(io.BytesIO(store.read_bytes(k))).read() for k in keys])


def rows_of(t: pa.Table | None, keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    if t is None:
        return []
    rows = t.to_pylist()
    return [r for r in rows if keep(r)] if keep else rows


def of_patients(t: pa.Table | None, ids: set[Any]) -> pa.Table | None:
    """The rows of ``t`` whose PAT_ID is one of ``ids`` (``rows_of(t, lambda r: r.get("pat_id") in ids)``
    as a table: no row dict is built)."""
    if t is None:
        return None
    if "pat_id" not in t.column_names:
        return t.slice(0, 0) if None not in ids else t
    keep = [p in ids for p in t.column("pat_id").to_pylist()]
    return t if all(keep) else t.filter(pa.array(keep, pa.bool_()))


def transformer_of(spec: ShardSpec, plain: bool = False, ref: StagedReference | None = None
                   ) -> tuple[Transformer, Callable[[str, str, str], str] | None]:
    """The shard's Transformer; ``plain``: encrypt fields left unsealed (for comparing, never for sending);
    ``ref``: the store's reference tables when the caller has them."""
    fmap = FieldMap.model_validate(spec.mapping)
    sealer = None
    if any(e.phi == "encrypt" for e in fmap.fields) and spec.phi_key_file and not plain:
        from ..phi import load_sealer

        sealer = load_sealer(spec.phi_key_file)
    ref = ref or staged_reference(open_store(spec.staged_uri))
    seal = (lambda text, _f, _r: text) if plain else (sealer.seal if sealer else None)
    tf = Transformer(fmap, location=spec.location, key=stable_key, seal=seal, lookups=ref.lookups,
                     user_fields=list(ref.user_fields), parse=_parse_context(ref.export_date, fmap))
    return tf, (sealer.open if sealer else None)


@dataclass(frozen=True)
class StagedReference:
    """A staged store's reference tables (``location=_all``) as the transform uses them. Read once per
    staging and shared by every shard a process plans: read per shard, they cost more than the shard
    (60 locations x 16 shards read them 960 times at DSO size). Treat as read-only: shards share it."""

    lookups: dict[str, dict[str, str]]  # LOOKUP category (and RECALLTYP) -> code -> description
    user_fields: tuple[UserField, ...]
    parents: dict[str, dict[Any, dict[str, Any]]]  # insplan, insco, refsrc: primary key -> row
    export_date: str | None  # the manifest's (anchors two-digit years in user-defined fields)
    fingerprint: str | None = None  # the manifest's sha256 (None: no manifest, nothing cached)


_PARENT_KEYS = {"insplan": "plan_id", "insco": "carrier_id", "refsrc": "ref_id"}


def staged_reference(staged: Store) -> StagedReference:
    """The store's reference tables, from a small per-process cache keyed by the store and its manifest's
    sha256 (the manifest lists every staged file's sha256, so a new staging is a new key); a store
    without a manifest is read every time."""
    if not staged.exists("manifest.json"):
        return _read_reference(staged, None)
    fingerprint = hashlib.sha256(staged.read_bytes("manifest.json")).hexdigest()
    return _cached_reference(staged.uri, fingerprint)


@functools.lru_cache(maxsize=2)
def _cached_reference(uri: str, fingerprint: str) -> StagedReference:
    staged = open_store(uri)
    ref = _read_reference(staged, json.loads(staged.read_bytes("manifest.json")))
    return dataclasses.replace(ref, fingerprint=fingerprint)


def subscriptions_of(staged: Store, ref: StagedReference, location: str) -> dict[Any, dict[str, Any]]:
    """A location's insurance subscriptions by SUB_REC_ID (staged with their subscriber, so read per
    location, not per shard): the last location's kept, as ``plan`` and the run go location by location."""
    if ref.fingerprint is None:
        return _read_subscriptions(staged, location)
    return _cached_subscriptions(staged.uri, ref.fingerprint, location)


@functools.lru_cache(maxsize=1)
def _cached_subscriptions(uri: str, fingerprint: str, location: str) -> dict[Any, dict[str, Any]]:
    return _read_subscriptions(open_store(uri), location)


def _read_subscriptions(staged: Store, location: str) -> dict[Any, dict[str, Any]]:
    return {r["sub_rec_id"]: r for r in rows_of(read_staged(staged, "inssub", location))}


def _read_reference(staged: Store, manifest: dict[str, Any] | None) -> StagedReference:
    lookups = lookup_descriptions(rows_of(read_staged(staged, "lookup", "_all")))
    lookups["RECALLTYP"] = recall_descriptions(rows_of(read_staged(staged, "recalltyp", "_all")))
    ufs = tuple(u for u in map(user_field, rows_of(read_staged(staged, "userfld", "_all"))) if u)
    parents = {t: {r[pk]: r for r in rows_of(read_staged(staged, t, "_all"))}
               for t, pk in _PARENT_KEYS.items()}
    return StagedReference(lookups, ufs, parents, (manifest or {}).get("export_date"))


def sealer_of(spec: ShardSpec) -> Any:
    """The run's key (seals the before-images of records the writer updates), or None without one."""
    if not spec.phi_key_file:
        return None
    from ..phi import load_sealer

    return load_sealer(spec.phi_key_file)


def opener_of(spec: ShardSpec) -> Callable[[str, str, str], str] | None:
    """Opens the map's sealed fields with the run's key (to compare with what HighLevel holds)."""
    if not spec.phi_key_file or not any(e.get("phi") == "encrypt" for e in spec.mapping.get("fields", [])):
        return None
    from ..phi import load_sealer

    return load_sealer(spec.phi_key_file).open


def _parse_context(export_date: str | None, fmap: FieldMap) -> Any:
    """The export's value-parsing settings (date order, decimal comma, the export date that anchors
    two-digit years), for values the reader could not type at staging: user-defined fields."""
    import datetime as dt

    from ..sources.profile import load_profile
    from ..sources.values import ParseContext

    # the map's export profile takes these from its base profile (``Mapping.to_profile``, which also
    # builds every file's spec: ~40 ms a 400-entry map, once per shard planned)
    profile = load_profile(fmap.export.profile)
    return ParseContext(date_order=profile.date_order, decimal_comma=profile.decimal_comma,
                        export_date=dt.date.fromisoformat(export_date) if export_date else dt.date.today())


def plan_shard(spec: ShardSpec, *, plain: bool = False) -> tuple[Plan, dict[str, int]]:
    """The shard's payloads (pure: staged rows + map) and the rows considered per object (``plain``:
    encrypt fields unsealed, for the delta's comparison)."""
    staged = open_store(spec.staged_uri)
    ref = staged_reference(staged)
    tf, _ = transformer_of(spec, plain, ref)
    want = set(spec.patients) if spec.patients is not None else None
    tables = {t: read_staged(staged, t, spec.location, spec.shard) for t in PATIENT_TABLES}
    patients = rows_of(tables["patient"], None if want is None else (lambda r: r["pat_id"] in want))
    counts = {"patient": len(patients)}
    plan = Plan()
    gone: set[Any] = set()
    udfs = _user_values(tf, staged, spec, {r["pat_id"] for r in patients})
    for row in patients:
        if tf.excluded_patient(row):
            gone.add(row["pat_id"])
            plan.excluded["patient"] = plan.excluded.get("patient", 0) + 1
        else:
            custom, dropped = tf.user_values(udfs.get(row["pat_id"], []))
            plan.contacts.append(tf.contact(row, custom))
            for key, rid, why in dropped:  # each one a report row; the field's count in "fields not migrated"
                plan.excluded_rows.append(("user_field", rid, f"{key}: {why}"))
                nots = plan.notices.setdefault("values_not_sent", {}).setdefault(key, {})
                nots[why] = nots.get(why, 0) + 1
    parents = {"txplan": {r["txplan_id"]: r for r in rows_of(tables["txplan"])}}
    if "custom_objects.insurance_records" in tf.objects:
        parents["inssub"] = subscriptions_of(staged, ref, spec.location)
        parents["insplan"] = ref.parents["insplan"]
        parents["insco"] = ref.parents["insco"]
    ids_in = {r["pat_id"] for r in patients}
    for obj_key in tf.objects:
        name = OBJECT_NAMES[obj_key]
        mine = of_patients(tables.get(RECORD_TABLES[obj_key][0]), ids_in)
        counts[name] = mine.num_rows if mine is not None else 0
        rows: pa.Table | list[dict[str, Any]] = mine if mine is not None else []
        if obj_key == "custom_objects.clinical_notes":
            rows = _note_heads(rows_of(mine), spec, tf, plan, gone, rows_of(tables["appt"]))
        payloads, excluded = columnar.records(tf, obj_key, rows, parents, gone)
        plan.records += payloads
        if excluded:
            plan.excluded[name] = plan.excluded.get(name, 0) + excluded
    if plan.notices.get("note_images_found"):  # derived rows: the report reconciles them too
        counts["note_image"] = plan.notices["note_images_found"]
    _plan_crm(spec, tf, tables, staged, plan, counts, patients, ids_in, gone, ref)
    for obj, _sid, _reason in plan.excluded_rows:
        plan.excluded[obj] = plan.excluded.get(obj, 0) + 1
    return plan, counts


def _user_values(tf: Transformer, staged: Store, spec: ShardSpec, ids: set[Any]
                 ) -> dict[Any, list[dict[str, Any]]]:
    """The shard's PATUDF rows by patient (staged with their patient), when the map sends them."""
    if not tf.sends_user_fields():
        return {}
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in rows_of(read_staged(staged, "patudf", spec.location, spec.shard),
                     lambda r: r.get("pat_id") in ids):
        out.setdefault(r["pat_id"], []).append(r)
    return out


def _note_heads(rows: list[dict[str, Any]], spec: ShardSpec, tf: Transformer, plan: Plan, gone: set[Any],
                appts: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Clinical notes -> one row per revision chain: the latest revision's text converted from RTF/HTML,
    with the amendment history; its inline images become files linked to the contact. Earlier revisions
    and voided notes are excluded with their reason (every row is accounted for). Times are those of the
    office where the note was written (its appointment's LOC_ID, else the patient's home office): the
    history's stamps and the note time carry that zone and offset."""
    import datetime as dt

    from ..richtext.notes import compose, revision_chains
    from .crm import FilePayload, local_stamp, office_zone

    home_tz = spec.zones.get(spec.location.upper()) or spec.schema.get("time_zone")
    office = {a["appt_id"]: a.get("loc_id") for a in appts or ()}

    heads = []
    for chain in revision_chains([r for r in rows if r.get("pat_id") not in gone]):
        for rid in chain.ids:
            if rid != chain.head_id:
                plan.excluded_rows.append(("clinical_note", str(rid),
                                           "earlier revision: kept in the amendment "
                                           "history of the chain's latest note"))
        if chain.voided:
            plan.excluded_rows.append(("clinical_note", str(chain.head_id), "voided in the source"))
            continue
        tz = office_zone(office.get(chain.latest.get("appt_id")), spec.zones, home_tz)
        lost: list[int] = []
        text, images = compose(chain, stamp=functools.partial(local_stamp, tz=tz), fallbacks=lost)
        if lost:  # the converter lost text (HTML nested too deep): kept as plain text, and reported
            plain = plan.notices.setdefault("notes_as_plain_text", [])
            plain += [i for i in lost if i not in plain]
        head = dict(chain.latest, note_text=text)
        if isinstance(head.get("note_dt"), dt.date) and isinstance(head.get("note_tm"), dt.time):
            # a wall time means nothing without its place: "09:30 MDT (-06:00)" (the date stays a date)
            head["note_tm"] = local_stamp(dt.datetime.combine(head["note_dt"], head["note_tm"]), tz)[11:]
        heads.append(head)
        pid = head["pat_id"]
        for img in images:
            sid = f"{chain.head_id}:{img.index}"
            if img.data is None:
                plan.excluded_rows.append(("note_image", sid, f"inline image not migrated: {img.error}"))
                continue
            plan.crm.files.append(FilePayload(
                "note_image", stable_key(spec.location, "note_image", sid), sid,
                stable_key(spec.location, "patient", pid),
                f"note-{spec.location}-{chain.head_id}-{img.index}.{img.ext}",
                img.mime, f"clinical note #{chain.head_id} · image {img.index} of {len(images)}",
                data=img.data,
                size=len(img.data)))
    plan.notices["note_images"] = sum(1 for f in plan.crm.files if f.object == "note_image")
    plan.notices["note_images_found"] = plan.notices["note_images"] + sum(
        1 for o, *_r in plan.excluded_rows if o == "note_image")
    return heads + [r for r in rows
                    if r.get("pat_id") in gone]  # the excluded patients' rows: counted as such


def _plan_crm(spec: ShardSpec, tf: Transformer, tables: dict[str, pa.Table | None], staged: Store, plan: Plan,
              counts: dict[str, int], patients: list[dict[str, Any]], ids_in: set[Any],
              gone: set[Any], ref: StagedReference) -> None:
    """Appointments, recalls, referrals, activities and documents of the shard (crm.py)."""
    from ..mapping.objectmap import VALUE_LABELS
    from . import crm
    from .columnar import rows_where, value_of
    from .referrals import Referrals

    def mine(r: dict[str, Any]) -> bool:
        return r.get("pat_id") in ids_in

    value = tf.value
    location, key = spec.location, stable_key
    home_tz = spec.zones.get(location.upper()) or spec.schema.get("time_zone")  # the home office's zone

    def stage_of(table: str) -> dict[str, str]:
        return {**VALUE_LABELS.get((table, "status"), {}),
                **next((e.values or {} for e in tf.by_table.get(table, ()) if e.column == "status"), {})}

    if tf.uses("appt"):
        # placeholders (no patient) are in one shard: reported by full runs, never by a sample
        full = spec.patients is None
        appt = rows_where(tables["appt"], lambda p: (p is None and full) or p in ids_in)
        rows = rows_of(appt)
        proc_rows = rows_of(tables["apptproc"])
        procs: dict[Any, list[dict[str, Any]]] = {}
        for p in proc_rows:
            procs.setdefault(p["appt_id"], []).append(p)
        # each mapped column converted once per distinct cell (columnar.value_of), not once per cell
        cells = value_of(tf, (appt, rows, tf.by_table.get("appt", [])),
                         (tables["apptproc"], proc_rows, tf.by_table.get("apptproc", [])))
        opps, excluded = crm.appointment_payloads(rows, procs, tf.by_table, location=location, key=key,
                                                  value=cells,
                                                  stage_of=stage_of("appt"), tz=home_tz, zones=spec.zones,
                                                  excluded_patients=gone)
        counts["appointment"] = len(rows)
        plan.crm.opportunities += opps
        plan.excluded_rows += excluded
    if tf.uses("recall"):
        rows = rows_of(tables["recall"], mine)
        labels = tf.lookups.get("RECALLTYP", {})
        owners = {r["pat_id"]: r.get("pri_prov") for r in patients}
        opps, excluded = crm.recall_payloads(rows, tf.by_table.get("recall", []), location=location, key=key,
                                             value=value, stage_of=stage_of("recall"), type_labels=labels,
                                             owners=owners, excluded_patients=gone)
        counts["recall"] = len(rows)
        plan.crm.opportunities += opps
        plan.excluded_rows += excluded
    if tf.uses("patref") or tf.uses("refsrc"):
        rows = rows_of(tables["patref"], mine)
        counts["referral"] = len(rows)
        sources = ref.parents["refsrc"]
        refs = Referrals(sources)
        by_patient = {c.source_id: c for c in plan.contacts}
        for r in rows:
            if r.get("pat_id") in gone:
                plan.excluded_rows.append(("referral", str(r["patref_id"]), "its patient is excluded"))
            elif str(r.get("direction")) != "OUT":
                tags, source = refs.resolve(r)
                c = by_patient[str(r["pat_id"])]
                c.body["tags"] = sorted(set(c.body.get("tags", [])) | set(tags))
                c.body["customFields"]["contact.referral_source"] = source
                c.rides["referral"] = c.rides.get("referral", 0) + 1
        plan.crm.notes += crm.outgoing_referral_notes(rows, sources, location=location, key=key,
                                                      excluded_patients=gone)
        plan.notices["referral_variants"] = refs.table()
    if tf.uses("commlog"):
        rows = rows_of(tables["commlog"], mine)
        counts["activity"] = len(rows)
        with_text = any(e.column == "note" for e in tf.by_table.get("commlog", ()))
        notes, excluded = crm.activity_notes(rows, location=location, key=key, with_text=with_text,
                                             excluded_patients=gone, tz=home_tz)
        plan.crm.notes += notes
        plan.excluded_rows += excluded
    if tf.uses("document"):
        rows = rows_of(tables["document"], mine)
        counts["document"] = len(rows)
        from ..sources.docfiles import document_size

        export = open_store(spec.source) if spec.source else None

        def size(k: str) -> int | None:  # raises RefusedDocument: a link, a FIFO, a device... (docfiles)
            return document_size(export, k) if export is not None else None

        files, excluded = crm.document_files(rows, location=location, key=key, exists=size,
                                             category_labels=tf.lookups.get("DOCCAT", {}),
                                             excluded_patients=gone,
                                             tz=home_tz)
        plan.crm.files += files
        plan.excluded_rows += excluded
