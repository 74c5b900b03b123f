"""Writes one shard's payloads to one HighLevel location, parents before children, every op in the ledger.

Identity (DESIGN.md): a contact is found by its Source_System_ID custom field, a record by its
``source_id`` property, never by email or phone. Keys already in the ID map are not written again
(resume, re-run, a kept sample); keys HighLevel already holds (the run's inventory, ``existing.py``:
another run's, whatever its id) are *adopted*: left alone when equal to the source, updated with a
before-image when not, never created twice; keys whose outcome is unknown (an intent without a result: a crash
between send and ledger flush) are looked up before anything is created. A child whose parent
failed is *held* (ledger outcome ``held``), never orphaned.

Households: when the location refuses duplicate contacts, a second patient who shares a guardian's
email or phone would be refused (or merged, under upsert). ``households`` decides, per location and
before any write, which patient holds each shared channel (the guarantor, else the lowest id); the
others are created without it and keep it in ``contact.shared_email`` / ``contact.shared_phone``.
A contact outside the run holding a channel (400 duplicate) is handled the same way. The report
counts these.

A failure that is no record's (a revoked token, HighLevel down) pauses the location: ``pausing.py``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import AlreadyExistsError, DuplicateContactError, HighLevelError, NotFoundError, safe_error
from ..highlevel.models import ContactCreate, CustomFieldInput, RecordCreate, RelationCreate
from ..highlevel.protocols import Client
from ..highlevel.retry import is_transient
from ..highlevel.systemic import DEFAULT_PAUSE_AFTER
from ..planning.keys import payload_hash
from ..planning.transform import OBJECT_NAMES, ContactPayload, Plan, RecordPayload
from .existing import Inventory, contact_fields, record_fields
from .ledger import IdMap, LedgerWriter, Op
from .pausing import Pausing
from .updates import before_keeper, update_in_place
from .writer_crm import CrmWriter

__all__ = ["LocationSchema", "ShardWriter", "WriteResult"]

log = logging.getLogger("dos2hl.migrate")
SHARED_FIELDS = {"email": "contact.shared_email", "phone": "contact.shared_phone"}
RELATION_ATTEMPTS = 3


@dataclass
class LocationSchema:
    """What the writer needs to know of a provisioned location: field ids, associations, settings."""

    location_id: str
    contact_fields: dict[str, str]  # fieldKey -> id
    associations: dict[str, tuple[str, bool]]  # object key -> (association id, contact is first)
    allow_duplicates: bool
    users: dict[str, str] = field(default_factory=dict)  # provider code -> user id (owner)
    opportunity_fields: dict[str, str] = field(default_factory=dict)  # fieldKey -> id
    pipelines: dict[str,
                    dict[str, Any]] = field(default_factory=dict)  # name -> {"id", "stages": {lower: id}}
    calendar_id: str | None = None  # the calendar appointments land on (locations.yaml, else the first)
    calendar_team: list[str] = field(default_factory=list)
    time_zone: str | None = None  # the practice's zone: appointment times are local times
    # fieldKey -> [dataType, [option labels]] of the contact/opportunity fields read (the migrate gate)
    field_types: dict[str, list[Any]] = field(default_factory=dict)
    # custom object key -> its fields as fieldKey -> [dataType, [option labels]]; None: no such object
    object_fields: dict[str, dict[str, list[Any]] | None] = field(default_factory=dict)

    @classmethod
    def read(cls, client: Client, *, owners: dict[str, str] | None = None, calendar: str | None = None,
             time_zone: str | None = None, crm: bool = True, opportunity: bool = False,
             objects: tuple[str, ...] | list[str] = ()) -> LocationSchema:
        """``crm``: also the opportunity fields, pipelines and calendar (when the map sends appointments,
        recalls...); ``opportunity``: the opportunity fields even without ``crm``; ``objects``: the
        custom objects whose fields to read (one list call each). Types come with the same calls."""
        from ..provision.plan import _option_labels

        types: dict[str, list[Any]] = {}
        fields = {}
        for f in client.list_custom_fields("contact"):
            if f.fieldKey:
                fields[f.fieldKey] = f.id
                types[f.fieldKey] = [f.dataType, list(_option_labels(f.picklistOptions))]
        assoc: dict[str, tuple[str, bool]] = {}
        for a in client.list_associations(limit=100):
            first, second = str(a.firstObjectKey or ""), str(a.secondObjectKey or "")
            if second == "contact" and first.startswith("custom_objects."):
                assoc.setdefault(first, (a.id, False))
            elif first == "contact" and second.startswith("custom_objects."):
                assoc.setdefault(second, (a.id, True))
        loc = client.get_location()
        settings = (loc.model_extra or {}).get("settings") or {}
        out = cls(client.location_id, fields, assoc, bool(settings.get("allowDuplicateContact", False)),
                  dict(owners or {}), time_zone=time_zone or loc.timezone, field_types=types)
        if crm or opportunity:
            for f in client.list_custom_fields("opportunity"):
                if f.fieldKey:
                    out.opportunity_fields[f.fieldKey] = f.id
                    types[f.fieldKey] = [f.dataType, list(_option_labels(f.picklistOptions))]
        for key in objects:
            try:
                listed = client.list_object_fields(key)
            except NotFoundError:
                out.object_fields[key] = None
                continue
            out.object_fields[key] = {f.fieldKey: [f.dataType, list(_option_labels((f.model_extra or {}).get(
                "options")))] for f in listed.fields if f.fieldKey}
        if crm:
            for p in client.list_pipelines():
                stages = {}
                for st in p.stages:
                    name, sid = (st.get("name"), st.get("id")) if isinstance(st, dict) else (st, st)
                    stages[str(name).strip().lower()] = sid
                out.pipelines[str(p.name or "").strip()] = {"id": p.id, "stages": stages}
            calendars = client.list_calendars()
            chosen = next((c for c in calendars if c.id == calendar or (c.name or "") == calendar), None) \
                if calendar else (calendars[0] if calendars else None)
            if chosen is not None:
                out.calendar_id = chosen.id
                out.calendar_team = [str(m.get("userId")) for m in chosen.teamMembers if isinstance(m, dict)]
        return out

    def pipeline(self, name: str, stage: str) -> tuple[str, str | None]:
        """(pipeline id, stage id) by name; ConfigError naming the manual step when missing."""
        p = self.pipelines.get(name) or next((v for k, v in self.pipelines.items()
                                              if k.lower() == name.lower()),
                                              None)
        if p is None:
            from ..errors import ConfigError

            raise ConfigError(f"location {self.location_id} has no pipeline '{name}': create it by hand "
                              "(see dos2hl provision --plan; the API cannot create pipelines)")
        return p["id"], p["stages"].get(stage.strip().lower())

    def field_id(self, key: str) -> str:
        try:
            return self.contact_fields[key] if key.startswith("contact.") else self.opportunity_fields[key]
        except KeyError:
            from ..errors import ConfigError

            raise ConfigError(f"location {self.location_id} has no custom field {key}: run dos2hl provision "
                              "--apply first") from None


@dataclass
class WriteResult:
    written: Counter[str] = field(default_factory=Counter)  # object -> created/verified/already there
    created: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)  # found in HighLevel under our key (adopted)
    updated: Counter[str] = field(default_factory=Counter)  # adopted, differed from the source: updated
    shared_channel: int = 0  # contacts created without a channel a family member already uses
    notices: Counter[str] = field(default_factory=Counter)  # e.g. events not assigned to their provider

    def merge(self, other: WriteResult) -> None:
        for name in ("written", "created", "failed", "held", "excluded", "present", "updated", "notices"):
            getattr(self, name).update(getattr(other, name))
        self.shared_channel += other.shared_channel


class ShardWriter(CrmWriter, Pausing):
    def __init__(self, client: Client, schema: LocationSchema, ledger: LedgerWriter, ids: IdMap, *,
                 run_id: str, location: str, uncertain: set[str] = frozenset(),  # type: ignore[assignment]
                 shared: dict[str, list[str]] | None = None, source: Any = None,
                 inventory: Inventory | None = None, open_sealed: Any = None, sealer: Any = None,
                 pause_after: int = DEFAULT_PAUSE_AFTER) -> None:
        self.client, self.schema, self.ledger, self.ids = client, schema, ledger, ids
        self.run_id, self.location = run_id, location
        self.uncertain = uncertain
        self.inventory = inventory or Inventory(location)
        self.open_sealed = open_sealed  # compares sealed payload values with what HighLevel holds
        self.sealer = sealer  # seals the before-image of an adopted record this run updates
        self._children: dict[tuple[str, str], dict[str, str]] = {}  # (kind, contact id) -> key -> id
        self.result: WriteResult = WriteResult()
        self.shared = shared or {}  # source patient id -> channels a household member holds
        self.source = source  # the export's store (document files)
        self._init_pausing(pause_after)

    def _op(self, obj: str, key: str, source_id: str, hl_id: str | None, op: str, outcome: str,
            **kw: Any) -> None:
        self.ledger.add(Op(self.run_id, self.location, self.schema.location_id, obj, key, source_id, hl_id,
                           op,
                           outcome, **kw))
        self._answered(op, outcome)

    def write(self, plan: Plan, shard: str) -> WriteResult:
        """Write ``plan``; the shard's ``started`` marker is durable before the first send, ``done`` after
        the last op is, so a crash in between makes the next attempt look its records up first."""
        self._op("shard", shard, shard, None, "intent", "started")
        self.ledger.flush()
        for p in plan.contacts:
            self._contact(p)
        for r in plan.records:
            self._record(r)
        self.write_crm(plan.crm, self.source)
        self.result.excluded.update(plan.excluded)
        self.ledger.flush()
        self._op("shard", shard, shard, None, "intent", "done")
        self.ledger.flush()
        return self.result

    # ---- contacts --------------------------------------------------------------------------------------
    def _custom(self, values: dict[str, Any]) -> list[CustomFieldInput]:
        return [CustomFieldInput(id=self.schema.field_id(k), field_value=v) for k, v in values.items()]

    def _contact(self, p: ContactPayload) -> None:
        if self.ids.get(p.stable_key):
            self._count(p, "written")
            return
        body = dict(p.body)
        custom = dict(body.pop("customFields", {}))
        if not self.schema.allow_duplicates:
            self._share_channels(p, body, custom)
        owner = self.schema.users.get(p.owner_provider or "") or self.schema.users.get("")
        payload = {**body, "customFields": custom, "assignedTo": owner}
        found_there = self.inventory.contacts.get(p.stable_key)
        if found_there is not None:  # HighLevel holds it under our key: adopt, update only what differs
            expected = contact_fields({**body, "assignedTo": owner}, custom, open_sealed=self.open_sealed,
                                      record=p.stable_key)
            self.adopt("patient", p.stable_key, p.source_id, found_there, expected,
                       lambda hl_id, keep: update_in_place(self.client, self.schema, "patient", hl_id, p,
                                                           body=payload,
                                                           keep=keep))
            self._count(p, "written")
            return
        sid_field = self.schema.field_id("contact.source_system_id")
        lookup = self.client.contact_lookup(sid_field, p.source_id)
        if p.stable_key in self.uncertain:  # sent before a crash, result never recorded: look first
            found = lookup()
            if found is not None:
                self._op("patient", p.stable_key, p.source_id, found.id, "lookup", "verified-existing")
                self.ids.apply({"stable_key": p.stable_key, "op": "lookup", "outcome": "verified-existing",
                                "hl_id": found.id})
                self._count(p, "written")
                return
        for attempt in range(3):
            try:
                w = self.client.create_contact(
                    ContactCreate(**body, customFields=self._custom(custom), assignedTo=owner),
                    stable_key=p.stable_key, lookup=lookup)
                break
            except DuplicateContactError as exc:  # a contact outside this run holds the channel
                field_name = exc.matching_field if exc.matching_field in SHARED_FIELDS else None
                if attempt == 2 or field_name is None or field_name not in body:
                    self._fail_contact(p, exc, payload)
                    return
                self._share_channels(p, body, custom, (field_name,))
            except HighLevelError as exc:
                self._fail_contact(p, exc, payload)
                return
        self._op("patient", p.stable_key, p.source_id, w.value.id, "create", w.outcome,
                 http_status=201 if w.outcome == "created" else None, payload_hash=payload_hash(payload))
        self.ids.apply({"stable_key": p.stable_key, "op": "create", "outcome": w.outcome,
                        "hl_id": w.value.id})
        self._count(p, "written")
        self.result.created["patient"] += w.outcome == "created"

    def _fail_contact(self, p: ContactPayload, exc: Exception, payload: Any) -> None:
        self._fail("patient", p.stable_key, p.source_id, exc, payload)
        for obj, n in p.rides.items():
            self.result.failed[obj] += n

    def _count(self, p: ContactPayload, outcome: str) -> None:
        """The contact, and the rows that ride on it (incoming referrals are its tags)."""
        getattr(self.result, outcome)["patient"] += 1
        for obj, n in p.rides.items():
            getattr(self.result, outcome)[obj] += n

    def _share_channels(self, p: ContactPayload, body: dict[str, Any], custom: dict[str, Any],
                        names: tuple[str, ...] = ()) -> None:
        """Move the channels another patient of the household holds (or ``names``) to custom fields."""
        for name in names or self.shared.get(p.source_id, ()):
            value = body.pop(name, None)
            if value:
                custom[SHARED_FIELDS[name]] = value
                self.result.shared_channel += 1

    def _fail(self, obj: str, key: str, source_id: str, exc: Exception, payload: Any,
              parent: str | None = None
              ) -> None:
        """Ledger a record's failure (a dead letter), or pause the location when the failure is not the
        record's (``highlevel.systemic``): ``LocationPaused``, nothing written ``failed``."""
        self._pause_or_count(exc, obj, key, source_id, parent)
        status = getattr(exc, "status", None)
        msg = safe_error(exc)  # class, errno and ids: an OSError's text holds the export path
        self._op(obj, key, source_id, None, "create", "failed", http_status=status, error=msg,
                 payload_hash=payload_hash(payload), parent=parent)
        self.ids.apply({"stable_key": key, "op": "create", "outcome": "failed", "error": msg, "hl_id": None})
        self.result.failed[obj] += 1
        log.warning("%s %s failed: %s", obj, key, type(exc).__name__)

    # ---- custom-object records and their contact relation ------------------------------------------------
    def _record(self, r: RecordPayload) -> None:
        obj = OBJECT_NAMES[r.object_key]
        contact_id = self.ids.get(r.parent_key)
        if contact_id is None:
            self._op(obj, r.stable_key, r.source_id, None, "create", "held", parent=r.parent_key,
                     error="the patient's contact was not written")
            self.result.held[obj] += 1
            return
        record_id = self.ids.get(r.stable_key)
        found_there = self.inventory.records.get(r.stable_key) if record_id is None else None
        if found_there is not None:  # HighLevel holds it under our key: adopt, update only what differs
            if r.relation == "lookup_field":
                r.properties["contact_id"] = contact_id
            self.adopt(obj, r.stable_key, r.source_id, found_there,
                       record_fields(r.object_key, r.properties, open_sealed=self.open_sealed,
                                     record=r.stable_key),
                       lambda hl_id, keep: update_in_place(self.client, self.schema, obj, hl_id, r,
                                                           keep=keep),
                       parent=r.parent_key)
            record_id = found_there["id"]
        if record_id is None:
            lookup = self.client.record_lookup(r.object_key, "source_id", r.properties["source_id"])
            if r.stable_key in self.uncertain:
                found = lookup()
                record_id = found.id if found is not None else None
            if record_id is None:
                owner = self.schema.users.get(r.owner_provider or "")
                if r.relation == "lookup_field":
                    r.properties["contact_id"] = contact_id
                try:
                    w = self.client.create_record(
                        r.object_key,
                        RecordCreate(properties=r.properties, owner=[owner] if owner else None),
                        stable_key=r.stable_key,
                        lookup=lookup,
                    )
                except HighLevelError as exc:
                    self._fail(obj, r.stable_key, r.source_id, exc, r.properties, parent=r.parent_key)
                    return
                record_id = w.value.id
                self._op(obj, r.stable_key, r.source_id, record_id, "create", w.outcome,
                         payload_hash=payload_hash(r.properties), parent=r.parent_key)
                self.result.created[obj] += w.outcome == "created"
            else:
                self._op(obj, r.stable_key, r.source_id, record_id, "lookup", "verified-existing")
            self.ids.apply({"stable_key": r.stable_key, "op": "create", "outcome": "created",
                            "hl_id": record_id})
        if r.relation == "association" and not self.ids.related(r.stable_key, r.parent_key):
            if self.ids.adopted(r.parent_key) and record_id in self.children("relations", contact_id):
                self._op(obj, r.stable_key, r.source_id, record_id, "relate", "verified-existing",
                         parent=r.parent_key)
                self.ids.apply({"stable_key": r.stable_key, "op": "relate", "outcome": "verified-existing",
                                "parent": r.parent_key})
            elif not self._relate(obj, r, record_id, contact_id):
                return
        self.result.written[obj] += 1

    def _relate(self, obj: str, r: RecordPayload, record_id: str, contact_id: str) -> bool:
        assoc = self.schema.associations.get(r.object_key)
        if assoc is None:
            self._fail(obj, r.stable_key, r.source_id, LookupError(f"no association {r.object_key} <-> "
                                                                   f"contact: "
                                                                   "run dos2hl provision --apply"), {})
            return False
        assoc_id, contact_first = assoc
        first, second = (contact_id, record_id) if contact_first else (record_id, contact_id)
        body = RelationCreate(associationId=assoc_id, firstRecordId=first, secondRecordId=second)
        for attempt in range(RELATION_ATTEMPTS):  # safe to re-send: HighLevel refuses a second copy
            try:
                self.client.create_relation(body, stable_key=r.stable_key)
                outcome = "related"
                break
            except AlreadyExistsError:
                outcome = "verified-existing"  # an earlier, unrecorded attempt got through
                break
            except HighLevelError as exc:
                if not is_transient(exc) or attempt == RELATION_ATTEMPTS - 1:
                    self._fail(obj, r.stable_key, r.source_id, exc, {}, parent=r.parent_key)
                    return False
        self._op(obj, r.stable_key, r.source_id, record_id, "relate", outcome, parent=r.parent_key)
        self.ids.apply({"stable_key": r.stable_key, "op": "relate", "outcome": outcome,
                        "parent": r.parent_key})
        return True


    # ---- what HighLevel already holds under our keys (existing.py) ----------------------------------------
    def adopt(self, obj: str, key: str, source_id: str, found: dict[str, Any],
              expected: dict[str, Any] | None,
              update: Any = None, *, parent: str | None = None, detail: str | None = None) -> str:
        """Take a record HighLevel holds under our key into this run's ID map (ledger op ``adopt``: a rollback
        of this run leaves it; ``lookup`` when this run's own earlier, unrecorded attempt made it), and
        update it when it differs from the source, its before-image in the ledger. Returns its id."""
        hl_id = str(found["id"])
        op = "lookup" if key in self.uncertain else "adopt"
        self._op(obj, key, source_id, hl_id, op, "verified-existing", parent=parent, detail=detail)
        self.ids.apply({"stable_key": key, "op": op, "outcome": "verified-existing", "hl_id": hl_id,
                        "detail": detail})
        self.result.present[obj] += 1
        differs = (self.inventory.differs(found, expected, open_sealed=self.open_sealed, record=key)
                   if expected is not None and update is not None else [])
        if differs and self.sealer is None:  # its before-image could not be kept sealed: never sent unkept
            self.result.notices["already present, differs from the source: not updated (no PHI key "
                                "configured "
                                "to seal its before-image)"] += 1
            return hl_id
        if differs:
            row = Op(self.run_id, self.location, self.schema.location_id, obj, key, source_id, hl_id,
                     "update",
                     "updated", parent=parent, detail=",".join(differs)[:300])
            try:
                update(hl_id, before_keeper(self.ledger, self.sealer, row))
            except HighLevelError as exc:
                self._pause_if_systemic(exc)
                self._op(obj, key, source_id, hl_id, "update", "failed",
                         http_status=getattr(exc, "status", None),
                         error=type(exc).__name__, parent=parent)
                self.result.notices["already present, differs from the source: update failed"] += 1
                return hl_id
            self.ledger.add(row)
            self.result.updated[obj] += 1
        return hl_id

    def children(self, kind: str, contact_id: str) -> dict[str, str]:
        """What an adopted contact already has (``notes``: stamp -> id, ``events``: calendar + instant -> id,
        ``relations``: record id -> relation id), read once per contact: the API has no location-wide
        search for them."""
        got = self._children.get((kind, contact_id))
        if got is None:
            from .existing import event_key, note_key

            if kind == "notes":
                got = {note_key(n.body): n.id for n in self.client.list_notes(contact_id)}
            elif kind == "events":
                got = {event_key(a.calendarId, a.startTime): a.id
                       for a in self.client.list_contact_appointments(
                    contact_id) if a.startTime}
            else:
                got = {}
                for rel in self.client.list_relations_all(contact_id):
                    for rid in (rel.firstRecordId, rel.secondRecordId):
                        if rid and rid != contact_id:
                            got[rid] = rel.id
            self._children[(kind, contact_id)] = got
        return got
