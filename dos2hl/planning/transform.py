"""Pure functions: staged rows + the confirmed map + the location's schema -> HighLevel payloads.

No I/O. Values are converted by the target's HighLevel type (DATE -> ``YYYY-MM-DD``, MONETORY ->
number, SINGLE_OPTIONS -> the value map's label, CHECKBOX -> ``["Yes"]``...), fields marked
``encrypt`` are sealed, ``omit``/``skip`` never leave. The same functions produce the *expected*
value for verification, so the field diff compares like with like.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..mapping.model import Entry
from ..mapping.model import Mapping as FieldMap
from ..mapping.objectmap import UDF_TARGET, UserField, field_key
from ..model import TABLES
from ..sources.values import ParseContext, clean_text, parse_bool, parse_date, parse_money
from .crm import CrmPlan

__all__ = ["ContactPayload", "Plan", "RecordPayload", "Transformer", "convert", "CONTACT_STANDARD",
           "udf_value"]

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


def _iso(v: dt.date) -> str:  # a datetime is a date too
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
                 seal: Callable[[str, str, str], str] | None = None,
                 lookups: Mapping[str, Mapping[str, str]] | None = None,
                 user_fields: list[UserField] | None = None, parse: ParseContext | None = None) -> None:
        self.location = location
        self.lookups = lookups or {}  # LOOKUP category -> code -> description (the pick-list's options)
        # USERFLD definitions by FIELD_ID, and by FIELD_NAME (exports whose PATUDF names the field)
        self.user_fields: dict[str, UserField] = {}
        for uf in user_fields or ():
            self.user_fields.setdefault(_udf_ref(uf.field_id), uf)
            self.user_fields.setdefault(field_key(uf.name), uf)
        self.parse = parse or ParseContext()
        self.relations = dict(fmap.relations)
        self.key = key
        self.seal = seal
        # converted(): by id(entry): the entry, its cells' values, whether a text cell is sent as it is
        self._memo: dict[int, tuple[Entry, dict[tuple[type, Any], Any], bool]] = {}
        self.by_table: dict[str, list[Entry]] = {}
        for e in fmap.fields:
            if e.table and e.column and e.phi != "omit" and e.target not in ("skip", "reference"):
                self.by_table.setdefault(e.table, []).append(e)
        self.objects = sorted({e.target.rsplit(".", 1)[0] for es in self.by_table.values() for e in es
                               if e.target.startswith("custom_objects.")} & set(RECORD_TABLES))
        if seal is None and any(e.phi == "encrypt" for es in self.by_table.values() for e in es):
            from ..errors import ConfigError

            raise ConfigError("the map encrypts some fields but no PHI key is configured: set "
                              "DOS2HL_PHI_KEY_FILE")

    def uses(self, table: str) -> bool:
        """Whether the map sends any column of ``table`` (a table all skipped is not migrated)."""
        return table in self.by_table

    def value(self, e: Entry, row: Mapping[str, Any], record: str) -> Any:
        """The entry's value of ``row``, converted; sealed (for ``record``, the stable key of the record it
        is sent in) when the map encrypts it."""
        raw = row.get(e.column) if e.column is not None else None
        if raw is None:  # most cells of a sparse export: nothing to convert or seal (millions of calls)
            return None
        v = self.converted(e, raw)
        if v is not None and e.phi == "encrypt":
            assert self.seal is not None
            v = self.seal(str(v), e.target, record)
        return v

    def lookup_category(self, e: Entry) -> str | None:
        """The LOOKUP category whose descriptions replace ``e``'s codes (None: the cells as they are)."""
        if not e.values and e.table and e.column:
            return _lookup_category(e.table, e.column)
        return None

    def converted(self, e: Entry, raw: Any) -> Any:
        """``convert_raw``, remembered per entry and cell for the cells whose equal values convert alike
        (texts, ints, bools, dates, naive times: not ``Decimal("1.0")`` vs ``"1.00"``, nor zoned times);
        a list value is each caller's own copy."""
        got = self._memo.get(id(e))
        if got is None or got[0] is not e:
            got = self._memo[id(e)] = (e, {}, self.lookup_category(e) is None and not e.values
                                       and e.type not in NOT_TEXT)
        cls = raw.__class__
        if cls is str and got[2]:
            return raw or None  # a text sent as it is (str(v), or v itself); "" is nothing to send
        if cls not in _SAME_WHEN_EQUAL or (cls in _NAIVE and raw.tzinfo is not None):
            return self.convert_raw(e, raw)
        memo = got[1]
        k = (cls, raw)
        v = memo.get(k, _MISSING)
        if v is _MISSING:
            v = memo[k] = self.convert_raw(e, raw)
        return list(v) if v.__class__ is list else v

    def convert_raw(self, e: Entry, raw: Any) -> Any:
        """One cell of ``e``'s column converted, never sealed (``value`` without the row and the seal:
        the column-wise path converts each distinct cell once with it)."""
        if raw is None:
            return None
        if not e.values and e.table and e.column:
            cat = _lookup_category(e.table, e.column)
            if cat is not None:  # provisioning made the LOOKUP descriptions the options
                raw = self.lookups.get(cat, {}).get(str(raw), raw)
        return convert(e, raw)

    # ---- contacts --------------------------------------------------------------------------------------
    def excluded_patient(self, row: Mapping[str, Any]) -> str | None:
        """Why a patient is excluded by policy (None: it migrates)."""
        if row.get("deleted_flg"):
            return "deleted in the source"
        if row.get("merged_into_id") is not None:
            return "merged into another patient"
        return None

    def sends_user_fields(self) -> bool:
        return any(e.target == UDF_TARGET for e in self.by_table.get("patudf", ()))

    def user_values(self,
                    rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
        """One patient's PATUDF rows -> (custom fields by key, values not sent as (field key, row id,
        reason)). Each value is converted to its USERFLD type: dates as typed (``2/4/11``) through the
        export's date parser, numbers through the money parser, checkboxes ``1``/``X``/``Y``, pick-list
        values matched to an option ignoring case and spaces. A value that does not convert is never
        sent half-right: it is returned with its reason (the report lists it)."""
        custom: dict[str, Any] = {}
        dropped: list[tuple[str, str, str]] = []
        for r in rows:
            raw = r.get("value")
            if clean_text(None if raw is None else str(raw)) is None:
                continue
            ref = r.get("field_id") if r.get("field_id") is not None else r.get("field_name")
            rid = f"{r.get('pat_id')}:{ref}"
            uf = self.user_fields.get(_udf_ref(ref)) or self.user_fields.get(field_key(str(ref or "")))
            if uf is None:
                dropped.append(("PATUDF.FIELD_ID", rid, "refers to no user-defined field of USERFLD"))
                continue
            value, why = udf_value(uf, str(raw), self.parse)
            if why:
                dropped.append((uf.key, rid, why))
            elif value is not None:
                custom[uf.key] = value
        return custom, dropped

    def contact(self, row: Mapping[str, Any], user_fields: Mapping[str, Any] | None = None) -> ContactPayload:
        """The patient's contact; ``user_fields``: its converted PATUDF values (``user_values``)."""
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        owner = None
        pid = row["pat_id"]
        sk = self.key(self.location, "patient", pid)
        for e in self.by_table.get("patient", ()):
            if e.target == "user":
                owner = (row.get(e.column) if e.column is not None else None) or row.get("hyg_prov")
                continue
            if not e.target.startswith("contact.") or e.target.startswith("contact.<"):
                continue
            v = self.value(e, row, sk)
            if v is None:
                continue
            name = e.target.split(".", 1)[1]
            if e.type == "STANDARD" and name in CONTACT_STANDARD:
                body[name] = v
            else:
                custom[e.target] = v
        for k, v in (user_fields or {}).items():
            custom.setdefault(k, v)  # a column of the patient file mapped to the same key wins
        body["customFields"] = custom
        return ContactPayload(sk, str(pid), body, owner)


# mapped entries the transform does not carry, with the reason the report gives ("fields not migrated")
_NOT_CARRIED: dict[tuple[str, str], str] = {
    ("txplan", "prov_id"): "a treatment plan record is owned by its item's provider (TXITEM.PROV_ID)",
    ("claim", "bill_prov_id"): "a claim record is owned by its treating provider (CLAIM.TREAT_PROV_ID)",
    ("appt", "hyg_id"): "the opportunity's owner is the provider (APPT.PROV_ID); the hygienist only when "
                        "there is none",
    ("appt", "asst_id"): "an opportunity has one owner (APPT.PROV_ID); assistants are not kept",
    ("document", "prov_id"): "files in HighLevel have no owner",
    ("ledger", "guar_id"): "a ledger entry is associated with its patient's contact, not the guarantor's",
    ("inssub", "subscriber_pat_id"): "an insurance record is associated with the covered patient's contact",
    ("refsrc", "ref_pat_id"): "a referring patient becomes no link (a referrer's identity stays in the "
                              "source)",
    ("document", "deleted_flg"): "deleted documents are excluded by policy (report/excluded.csv)",
    **{("document", c): "a file in HighLevel has a name and a title (date, category, image type, "
                        "description): this detail stays in the source"
       for c in ("note", "tooth_list", "series_id", "source", "signed_flg")},
    ("clinnote", "void_flg"): "voided notes are excluded by policy (report/excluded.csv): every migrated "
                              "note is not voided",
}


def not_carried(fmap: FieldMap) -> list[tuple[Entry, str]]:
    """The map's sent entries this transform does not write, each with its reason: the report lists
    them under "fields not migrated" (tests/migrate/test_every_field.py keeps this list honest)."""
    out = []
    for e in fmap.fields:
        if not e.table or e.phi == "omit" or e.target in ("skip", "reference"):
            continue
        if e.table == "claimln" and e.target.startswith("custom_objects."):
            out.append((e, "claim lines are not rolled up: the Insurance Claim record carries the claim's "
                           "totals, the lines stay in the source"))
        elif (e.table, e.column) in _NOT_CARRIED:
            out.append((e, _NOT_CARRIED[(e.table, e.column or "")]))
    return out


# the types whose conversion of a text, a number or a timestamp is not the cell's own text / date
NOT_TEXT = ("MONETORY", "NUMERICAL", "CHECKBOX", "MULTIPLE_OPTIONS")
_MISSING = object()
_SAME_WHEN_EQUAL = frozenset({str, int, bool, dt.date, dt.datetime, dt.time})
_NAIVE = (dt.datetime, dt.time)


def _udf_ref(ref: Any) -> str:
    """A FIELD_ID as a lookup key (``7``, ``7.0`` and ``"007"`` are one field)."""
    s = str(ref).strip() if ref is not None else ""
    try:
        return str(int(float(s)))
    except ValueError:
        return s


def _fold(s: str) -> str:
    return " ".join(s.split()).casefold()


def udf_value(uf: UserField, raw: str, ctx: ParseContext) -> tuple[Any, str]:
    """A PATUDF value as its field's HighLevel type: (value, "") or (None, why it cannot be sent). An
    unticked checkbox is (None, ""): HighLevel has no "unticked" value to send."""
    t = uf.data_type
    if t == "DATE":
        d, _code, _action = parse_date(raw, ctx)
        return (d.isoformat(), "") if d is not None else (None, "not a readable date (DATE field; a month "
                                                          "and year without a day is not a date)")
    if t == "NUMERICAL":
        n, _code, _action = parse_money(raw, ctx)
        if n is None:
            return None, "not a number (NUMERICAL field)"
        return (int(n) if n == n.to_integral_value() else float(n)), ""
    if t == "CHECKBOX":
        b, _code, _action = parse_bool(raw)
        if b is None:
            return None, "not a checkbox value (1/X/Y or 0/N)"
        return (["Yes"] if b else None), ""
    text = " ".join(raw.split()) if t == "SINGLE_OPTIONS" else raw.strip()
    if t == "SINGLE_OPTIONS":
        match = next((o for o in uf.options if _fold(o) == _fold(text)), None)
        return (match, "") if match is not None else (None, "not among the pick-list's options")
    return text, ""


@lru_cache(maxsize=None)
def _lookup_category(table: str, column: str) -> str | None:
    """The LOOKUP category of a column (static: the canonical model's; computed once a column, it is
    asked for every cell)."""
    col = TABLES[table].by_name.get(column)
    # provisioning made the recall types' descriptions the options
    if col is not None and col.fk == "recalltyp":
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
    return {str(r["recall_type"]): str(r.get("description") or r["recall_type"]) for r in rows
            if r.get("recall_type")}


def _pk(table: str) -> str:
    from ..model import TABLES

    return TABLES[table].pk[0]
