"""What the confirmed map needs in HighLevel (``DesiredSchema``): custom objects and their fields,
contact and opportunity fields with their pick-list options, associations, tags, pipelines.

``desired_schema`` is pure: it reads only the map and, when given, the export's reference tables
(LOOKUP, PROCCODE, RECALLTYP, USERFLD, REFSRC) for pick-list options. Only schema travels: names,
types and option labels, never a patient's value. Marketing referral channels become tags; doctor and
patient referrers do not (their names could identify a person).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from ..errors import ConfigError
from ..highlevel.models import DataType
from ..mapping.model import Entry, Mapping
from ..mapping.objectmap import (
    CHECKBOX_OPTIONS,
    CUSTOM_OBJECTS,
    OBJECTS,
    PIPELINES,
    UDF_TARGET,
    field_key,
    user_field,
)
from ..model import TABLES

__all__ = ["DesiredSchema", "FieldSpec", "ObjectDef", "PICKLISTS", "ProvisionError", "desired_schema",
           "snake"]

_DATA_TYPES = frozenset(get_args(DataType))
PICKLISTS = ("SINGLE_OPTIONS", "MULTIPLE_OPTIONS")
_REF_KINDS = {"DOC": "doctor", "PAT": "patient", "MKT": "marketing", "OTH": "other"}
_CDT_CSV = Path(__file__).resolve().parent.parent / "generate" / "cdt_codes.csv"


class ProvisionError(ConfigError):
    """The map cannot be provisioned as is (conflict, object cap, inconsistent map): nothing was written."""


snake = field_key  # HighLevel's field key of a name (``Patient ID`` -> ``patient_id``)


def _unique(items: Iterable[Any]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for it in items:
        if it is not None and str(it).strip():
            out.setdefault(str(it).strip(), None)
    return tuple(out)


@dataclass(frozen=True)
class FieldSpec:
    """One field the map needs: ``key`` is the full field key (``contact.gender``, ``custom_objects.x.y``)."""

    key: str
    name: str  # the display name sent to HighLevel
    data_type: str
    options: tuple[str, ...] = ()
    note: str = ""
    needs_source: bool = False  # options come from the export: TEXT until --source is given
    sources: tuple[str, ...] = ()  # FILE.COLUMN entries that land here

    @property
    def short(self) -> str:
        return self.key.rsplit(".", 1)[1]


@dataclass
class ObjectDef:
    key: str
    singular: str
    plural: str
    primary: str  # short key of the primary display property
    primary_label: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)  # full key -> spec
    associate: bool = False  # relation.contact: an association custom object <-> Contact

    @property
    def short(self) -> str:
        return self.key.split(".", 1)[1]

    @property
    def folder(self) -> str:
        return f"{self.singular} Details"

    @property
    def association_key(self) -> str:
        return f"{self.short}_contact"

    @property
    def primary_type(self) -> str:
        spec = self.fields.get(f"{self.key}.{self.primary}")
        return spec.data_type if spec is not None else "TEXT"


@dataclass
class DesiredSchema:
    """Everything the map needs in each location; pure data (no PHI: names, types, option labels)."""

    objects: dict[str, ObjectDef] = field(default_factory=dict)
    contact_fields: dict[str, FieldSpec] = field(default_factory=dict)
    opportunity_fields: dict[str, FieldSpec] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    pipelines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _Reference:
    """The export's reference tables, read once (only when ``source`` is given)."""

    def __init__(self, mapping: Mapping, source: str | Path | None) -> None:
        self.source = source
        self.tables: dict[str, list[dict[str, Any]]] = {}
        if source is None:
            return
        from ..api import open_export
        from ..sources.reader import ExportReader

        reader = ExportReader(open_export(source, profile=mapping.to_profile(), documents=False))
        for table in ("lookup", "proccode", "recalltyp", "userfld", "refsrc"):
            rows: list[dict[str, Any]] = []
            for chunk in reader.iter_table(table):
                keep = [c for c in chunk.data.column_names if not c.startswith("_")]
                rows += chunk.data.select(keep).to_pylist()
            self.tables[table] = rows

    def lookup(self, category: str) -> tuple[str, ...]:
        rows = [r for r in self.tables.get("lookup", []) if str(r.get("category") or "").upper() == category]
        rows.sort(key=lambda r: (r.get("sort") if r.get("sort") is not None else 1 << 30, str(r.get("code"))))
        return _unique(r.get("description") or r.get("code") for r in rows)

    def cdt_codes(self) -> tuple[str, ...]:
        if self.source is not None:
            return _unique(r.get("proc_code") for r in self.tables.get("proccode", []))
        with _CDT_CSV.open(encoding="utf-8", newline="") as fh:
            return _unique(row["code"] for row in csv.DictReader(fh))

    def recall_types(self) -> tuple[str, ...]:
        return _unique(r.get("description") or r.get("recall_type") for r in self.tables.get("recalltyp", []))


def _field_spec(e: Entry, key: str, ref: _Reference) -> FieldSpec:
    """Type and options of one entry's field: pick-list options from values:, LOOKUP, PROCCODE, RECALLTYP."""
    col = TABLES[e.table].by_name.get(e.column) if e.table in TABLES and e.column else None
    short = key.rsplit(".", 1)[1]
    name = e.label or " ".join(w.capitalize() for w in short.split("_"))
    dt, note, needs, label_note = e.type, "", False, ""
    options: tuple[str, ...] = ()
    if key.split(".", 1)[0] in ("contact", "opportunity") and snake(name) != short:
        # HighLevel derives a contact/opportunity field's key from its name, once: the name must spell
        # the key; the map's label can be set in HighLevel afterwards (the key never changes).
        label_note = f"label {name!r} can be set in HighLevel after creation"
        name = " ".join(w.capitalize() for w in short.split("_"))
    if dt not in _DATA_TYPES:
        raise ProvisionError(f"mapping: {e.source}: type {dt!r} is not a HighLevel data type "
                             f"({', '.join(sorted(_DATA_TYPES))}); fix the entry's type")
    if e.phi == "encrypt" and dt not in ("TEXT", "LARGE_TEXT"):
        dt, note = "LARGE_TEXT", f"encrypted: ciphertext kept as text (map type {e.type})"
    elif dt in PICKLISTS:
        if e.values:
            options = _unique(e.values.values())
        elif key == "opportunity.cdt_codes" or (col is not None and col.name == "proc_code"):
            options = ref.cdt_codes()
        elif col is not None and (col.kind == "lookup" or col.fk == "recalltyp"):
            what = f"LOOKUP category {col.lookup}" if col.kind == "lookup" else "RECALLTYP"
            if ref.source is None:
                dt, needs, note = "TEXT", True, f"options need --source ({what}); TEXT until then"
            else:
                options = ref.lookup(col.lookup or "") if col.kind == "lookup" else ref.recall_types()
                if not options:
                    dt, note = "TEXT", f"the export has no rows for {what}: TEXT"
        elif col is not None and col.values:
            options = _unique(col.values)
        if dt in PICKLISTS and not options:
            dt, note = "TEXT", "no pick-list options known: TEXT"
    elif dt == "CHECKBOX":
        options = CHECKBOX_OPTIONS
    note = "; ".join(x for x in (note, label_note) if x)
    return FieldSpec(key, name, dt, options, note, needs, (e.source,))


def _merge(into: dict[str, FieldSpec], spec: FieldSpec) -> None:
    """Two entries may land in one field (txplan.status, txitem.status): same type -> options unite."""
    old = into.get(spec.key)
    if old is None:
        into[spec.key] = spec
        return
    if old.data_type != spec.data_type:
        raise ProvisionError(f"mapping: {', '.join(old.sources)} and {', '.join(spec.sources)} both target "
                             f"{spec.key} but as {old.data_type} and {spec.data_type}; give them one type "
                             "or different targets")
    into[spec.key] = FieldSpec(old.key, old.name, old.data_type, _unique(old.options + spec.options),
                               old.note or spec.note, old.needs_source and spec.needs_source,
                               old.sources + spec.sources)


def _object(d: DesiredSchema, key: str) -> ObjectDef:
    if key not in d.objects:
        co = CUSTOM_OBJECTS.get(key)
        if co is not None:
            d.objects[key] = ObjectDef(key, co.singular, co.plural, co.primary, co.primary_label)
        else:  # an object the map invented: labels from its name, its record id as primary property
            words = key.split(".", 1)[1].replace("_", " ").title()
            d.objects[key] = ObjectDef(key, words, words, "name", "Name")
    return d.objects[key]


def desired_schema(mapping: Mapping, source: str | Path | None = None) -> DesiredSchema:
    """What the confirmed map needs in HighLevel. ``source``: the export, for options from its reference
    tables and for USERFLD contact fields; without it lookup pick-lists are TEXT (noted) and CDT codes
    come from the bundled ``cdt_codes.csv``."""
    ref = _Reference(mapping, source)
    d = DesiredSchema()
    tags = userfld = False
    used_tables: set[str] = set()
    for e in mapping.fields:
        t = e.target
        if e.phi == "omit" or t in ("skip", "reference"):
            continue
        if e.table:
            used_tables.add(e.table)
        if t == "tag":
            tags = True
        elif t == "relation.contact":
            spec = OBJECTS.get(e.table or "")
            if spec is not None and spec.kind == "custom_object":
                _object(d, spec.object_key).associate = True
        elif t == UDF_TARGET:
            userfld = True
        elif e.type == "STANDARD":
            continue
        elif t.startswith("custom_objects.") and t.count(".") == 2:
            obj = _object(d, t.rsplit(".", 1)[0])
            _merge(obj.fields, _field_spec(e, t, ref))
        elif t.startswith("contact.") and t.count(".") == 1:
            _merge(d.contact_fields, _field_spec(e, t, ref))
        elif t.startswith("opportunity.") and t.count(".") == 1:
            _merge(d.opportunity_fields, _field_spec(e, t, ref))
    for key, policy in mapping.relations.items():  # records that carry their contact instead of a relation
        if policy == "lookup_field" and key in d.objects:
            obj = d.objects[key]
            obj.associate = False
            for short, label in (("contact_id", "Contact ID"), ("patient_id", "Patient Source ID")):
                _merge(obj.fields, FieldSpec(f"{key}.{short}", label, "TEXT", (),
                                             "relation policy lookup_field: "
                                             "the contact, without a relation call", sources=("(relation)",)))
    for obj in d.objects.values():
        if f"{obj.key}.source_id" not in obj.fields:  # every record carries its source id (planning's
            # identity lookups), also when the file had no id column (a key the reader hashed, dos2hl.sources
            # .shaped) and the map so has no entry for it
            _merge(obj.fields, FieldSpec(f"{obj.key}.source_id", "Source ID", "NUMERICAL", (),
                                         "the record's source id", sources=("(key)",)))
        ptype = obj.primary_type
        if ptype not in ("TEXT", "NUMERICAL"):
            raise ProvisionError(f"mapping: {obj.key}.{obj.primary} is the object's primary display property "
                                 f"and must be TEXT or NUMERICAL, not {ptype}; change the entry's type")
    if userfld:
        if source is None:
            d.notes.append("user-defined contact fields (USERFLD) need --source to be planned")
        udfs = sorted(ref.tables.get("userfld", []),
                      key=lambda r: (r.get("sort") or 0, r.get("field_id") or 0))
        for uf in filter(None, map(user_field, udfs)):
            _merge(d.contact_fields, FieldSpec(uf.key, uf.name, uf.data_type, uf.options,
                                               f"user-defined field {uf.field_id}",
                                               sources=(f"USERFLD.{uf.field_id}",)))
    if any(e.table == "patient" for e in mapping.fields):  # households (dos2hl.writing.households)
        for key, name, dt_ in (("contact.shared_email", "Shared Email", "TEXT"),
                               ("contact.shared_phone", "Shared Phone", "TEXT")):
            _merge(d.contact_fields, FieldSpec(key, name, dt_, (), "a family member's email/phone when the "
                                               "location refuses duplicate contacts",
                                               sources=("(household)",)))
    if tags:
        names = [f"referral: {k}" for k in _REF_KINDS.values()]
        if source is None:
            d.notes.append("referral channel tags (REFSRC, marketing) need --source to be planned")
        names += [f"referral: {r.get('name')}" for r in ref.tables.get("refsrc", [])
                  if str(r.get("ref_kind") or "").upper() == "MKT" and r.get("name")]
        d.tags = _unique(n.lower() for n in names)
        from ..planning.referrals import referral_options

        _merge(d.contact_fields, FieldSpec("contact.referral_source", "Referral Source", "SINGLE_OPTIONS",
                                           tuple(referral_options(ref.tables.get("refsrc", []))),
                                           "the canonical referral source (free-text variants normalised)",
                                           sources=("PATREF", "REFSRC")))
    for table, pname in (("appt", "Appointments"), ("recall", "Recall")):
        if table in used_tables:
            status = mapping.entry(table, "status")
            extra = tuple((status.values or {}).values()) if status is not None else ()
            d.pipelines[pname] = _unique(PIPELINES[pname].stages + extra)
    return d
