"""Pure functions: staged rows + the confirmed map + the location's schema -> HighLevel payloads.

No I/O. Values are converted by the target's HighLevel type (DATE -> ``YYYY-MM-DD``, MONETORY ->
number, SINGLE_OPTIONS -> the value map's label, CHECKBOX -> ``["Yes"]``...), fields marked
``encrypt`` are sealed, ``omit``/``skip`` never leave. The same functions produce the *expected*
value for verification, so the field diff compares like with like.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..mapping.model import Entry
from ..mapping.model import Mapping as FieldMap
from .crm import CrmPlan

__all__ = ["ContactPayload", "Plan", "RecordPayload", "Transformer", "convert", "CONTACT_STANDARD"]

CONTACT_STANDARD = ("firstName", "lastName", "dateOfBirth", "email", "phone", "address1", "city", "state",
                    "postalCode", "companyName", "gender", "country", "website", "timezone", "source")

# the seed's object names (report, --json) per custom object key
OBJECT_NAMES = {"custom_objects.insurance_records": "insurance_record",
                "custom_objects.treatment_plans": "treatment_plan",
                "custom_objects.clinical_notes": "clinical_note",
                "custom_objects.patient_ledger": "ledger_entry",
                "custom_objects.insurance_claims": "insurance_claim"}
# the table whose rows are the object's records, and the parents joined into each record (child -> fk)
RECORD_TABLES: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    # object key: (primary table, ((parent table, fk column on the already-joined row, parent pk), ...))
    "custom_objects.insurance_records": ("patins", (("inssub", "sub_rec_id", "sub_rec_id"),
                                                    ("insplan", "plan_id", "plan_id"),
                                                    ("insco", "carrier_id", "carrier_id"))),
    "custom_objects.treatment_plans": ("txitem", (("txplan", "txplan_id", "txplan_id"),)),
    "custom_objects.patient_ledger": ("ledger", ()),
    "custom_objects.insurance_claims": ("claim", ()),
    "custom_objects.clinical_notes": ("clinnote", ()),  # one record per revision chain (run.plan_shard)
}


def _iso(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    return v.isoformat()


def convert(entry: Entry, value: Any) -> Any:
    """A source value as HighLevel wants it for ``entry``'s type; None when there is nothing to send."""
    if value is None or value == "":
        return None
    t = entry.type
    if entry.values and isinstance(value, str):
        value = entry.values.get(value, value)
    if t in ("DATE",) or (t == "STANDARD" and isinstance(value, dt.date)):
        return _iso(value) if isinstance(value, (dt.date, dt.datetime)) else str(value)
    if t == "MONETORY":
        return float(value)
    if t == "NUMERICAL":
        return int(value) if isinstance(value, (int, bool)) else float(value)
    if t == "CHECKBOX":
        return ["Yes"] if value else None
    if t == "MULTIPLE_OPTIONS":
        return value if isinstance(value, list) else [str(value)]
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return _iso(value)
    return str(value) if t != "STANDARD" else value


@dataclass
class ContactPayload:
    stable_key: str
    source_id: str
    body: dict[str, Any]  # ContactCreate fields (customFields by key: resolved to ids by the writer)
    owner_provider: str | None
    rides: dict[str, int] = field(default_factory=dict)  # rows of other objects written with it (referrals)


@dataclass
class RecordPayload:
    object_key: str
    stable_key: str
    source_id: str
    parent_key: str  # stable key of the contact
    properties: dict[str, Any]
    owner_provider: str | None = None
    relation: str = "association"  # or "lookup_field": the contact's id goes in the record, no relation call


@dataclass
class Plan:
    """What one shard turns into, in dependency order."""

    contacts: list[ContactPayload] = field(default_factory=list)
    records: list[RecordPayload] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)  # object -> rows excluded by policy
    excluded_keys: set[str] = field(default_factory=set)
    crm: CrmPlan = field(default_factory=lambda: CrmPlan())  # opportunities, notes, files
    # (object, source id, reason) of rows excluded with a reason worth a report row (documents, ...)
    excluded_rows: list[tuple[str, str, str]] = field(default_factory=list)
    notices: dict[str, Any] = field(default_factory=dict)  # referral variants, ...


class Transformer:
    """Built once per run from the confirmed map; ``seal(text, field)`` encrypts ``encrypt`` fields."""

    def __init__(self, fmap: FieldMap, *, location: str, key: Callable[[str, str, Any], str],
                 seal: Callable[[str, str], str] | None = None,
                 lookups: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.location = location
        self.lookups = lookups or {}  # LOOKUP category -> code -> description (the pick-list's options)
        self.relations = dict(fmap.relations)
        self.key = key
        self.seal = seal
        self.by_table: dict[str, list[Entry]] = {}
        for e in fmap.fields:
            if e.table and e.column and e.phi != "omit" and e.target not in ("skip", "reference"):
                self.by_table.setdefault(e.table, []).append(e)
        self.objects = sorted({e.target.rsplit(".", 1)[0] for es in self.by_table.values() for e in es
                               if e.target.startswith("custom_objects.")} & set(RECORD_TABLES))
        if seal is None and any(e.phi == "encrypt" for es in self.by_table.values() for e in es):
            from ..errors import ConfigError

            raise ConfigError("the map encrypts some fields but no PHI key is configured: set DOS2HL_PHI_KEY_FILE")

    def uses(self, table: str) -> bool:
        """Whether the map sends any column of ``table`` (a table all skipped is not migrated)."""
        return table in self.by_table

    def value(self, e: Entry, row: Mapping[str, Any]) -> Any:
        raw = row.get(e.column)
        if not e.values and raw is not None and e.table and e.column:
            cat = _lookup_category(e.table, e.column)
            if cat is not None:  # provisioning made the LOOKUP descriptions the options
                raw = self.lookups.get(cat, {}).get(str(raw), raw)
        v = convert(e, raw)
        if v is not None and e.phi == "encrypt":
            assert self.seal is not None
            v = self.seal(str(v), e.target)
        return v

    # ---- contacts --------------------------------------------------------------------------------------
    def excluded_patient(self, row: Mapping[str, Any]) -> str | None:
        """Why a patient is excluded by policy (None: it migrates)."""
        if row.get("deleted_flg"):
            return "deleted in the source"
        if row.get("merged_into_id") is not None:
            return "merged into another patient"
        return None

    def contact(self, row: Mapping[str, Any]) -> ContactPayload:
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        owner = None
        for e in self.by_table.get("patient", ()):
            if e.target == "user":
                owner = row.get(e.column) or row.get("hyg_prov")
                continue
            if not e.target.startswith("contact.") or e.target.startswith("contact.<"):
                continue
            v = self.value(e, row)
            if v is None:
                continue
            name = e.target.split(".", 1)[1]
            if e.type == "STANDARD" and name in CONTACT_STANDARD:
                body[name] = v
            else:
                custom[e.target] = v
        body["customFields"] = custom
        pid = row["pat_id"]
        return ContactPayload(self.key(self.location, "patient", pid), str(pid), body, owner)

    # ---- custom-object records -------------------------------------------------------------------------
    def records(self, object_key: str, rows: list[dict[str, Any]], parents: Mapping[str, Mapping[Any, dict]],
                excluded_patients: set[Any]) -> tuple[list[RecordPayload], int]:
        """Records of one object from its primary table's rows, parents joined in; returns (payloads,
        rows excluded because their patient is)."""
        primary, joins = RECORD_TABLES[object_key]
        obj = OBJECT_NAMES[object_key]
        pk = _pk(primary)
        entries = {t: [e for e in self.by_table.get(t, ()) if e.target.startswith(object_key + ".")]
                   for t in (primary, *(j[0] for j in joins))}
        out, excluded = [], 0
        for row in rows:
            if row.get("pat_id") in excluded_patients:
                excluded += 1
                continue
            props: dict[str, Any] = {}
            joined = dict(row)
            for parent, fk, ppk in joins:  # each parent found through the row joined so far
                prow = parents.get(parent, {}).get(joined.get(fk))
                if prow is None:
                    continue
                for e in entries[parent]:
                    v = self.value(e, prow)
                    if v is not None:
                        props[e.target.rsplit(".", 1)[1]] = v
                joined.update({k: v for k, v in prow.items() if k not in joined or joined[k] is None})
            for e in entries[primary]:  # the record's own columns win over its parents'
                v = self.value(e, row)
                if v is not None:
                    props[e.target.rsplit(".", 1)[1]] = v
            sid = row[pk]
            props.setdefault("source_id", sid)
            owner = row.get("prov_id") or row.get("treat_prov_id")
            policy = self.relations.get(object_key, "association")
            if policy == "lookup_field":  # the writer adds contact_id (known once the contact exists)
                props["patient_id"] = str(row["pat_id"])
            out.append(RecordPayload(object_key, self.key(self.location, obj, sid), str(sid),
                                     self.key(self.location, "patient", row["pat_id"]), props, owner, policy))
        return out, excluded


def _lookup_category(table: str, column: str) -> str | None:
    from ..model import TABLES

    col = TABLES[table].by_name.get(column)
    if col is not None and col.fk == "recalltyp":  # provisioning made the recall types' descriptions the options
        return "RECALLTYP"
    return col.lookup if col is not None and col.kind == "lookup" else None


def lookup_descriptions(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """LOOKUP rows -> category -> code -> description (blank description: the code itself)."""
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        cat, code = str(r.get("category") or "").upper(), r.get("code")
        if cat and code is not None:
            out.setdefault(cat, {})[str(code)] = str(r.get("description") or code)
    return out


def recall_descriptions(rows: list[dict[str, Any]]) -> dict[str, str]:
    """RECALLTYP rows -> code -> description (the Recall Type pick-list's options)."""
    return {str(r["recall_type"]): str(r.get("description") or r["recall_type"]) for r in rows if r.get("recall_type")}


def _pk(table: str) -> str:
    from ..model import TABLES

    return TABLES[table].pk[0]
