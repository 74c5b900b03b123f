"""The seed's object map: where every canonical column goes in HighLevel, with type and PHI policy.

The proposer matches an export's columns to canonical columns; this table then gives each canonical
column its HighLevel target, so an export named any way gets the same destination schema.

Targets (the ``target:`` of a mapping entry):

=====================================  ===========================================================
``contact.<standardField>``            a contact standard field (``contact.firstName``, ...)
``contact.<key>``                      a contact custom field (key in snake case)
``opportunity.<key>``                  an opportunity custom field
``opportunity.<standard>``             ``opportunity.name``, ``.monetaryValue``, ``.status``, ...
``custom_objects.<object>.<field>``    a custom object field
``calendar_event.<field>``             the appointment's calendar event
``note.<field>``                       a contact note (comm log, outgoing referrals)
``file.<field>``                       a file linked to the contact
``tag``                                a contact tag (value = tag name)
``user``                               resolved to a HighLevel user (provider -> user by email)
``location``                           routes the record to a sub-account (locations.yaml)
``relation.<object>``                  the parent record, used to associate (not a field)
``reference``                          read for value maps and pick-list options only
``skip``                               not migrated; ``reasons`` says why (PHI minimum necessary, ...)
=====================================  ===========================================================

HighLevel data types: TEXT, LARGE_TEXT, NUMERICAL, PHONE, MONETORY (sic), CHECKBOX, SINGLE_OPTIONS,
MULTIPLE_OPTIONS, DATE, EMAIL; ``STANDARD`` for standard fields. PHI policy: ``send`` (plain),
``encrypt`` (AES-GCM before sending, decrypt command documented), ``omit`` (never leaves the machine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..model import TABLES
from ..model.tables import Column, Kind

__all__ = ["CustomObject", "FieldTarget", "OBJECTS", "PIPELINES", "target_for", "CUSTOM_OBJECTS",
           "VALUE_LABELS", "Pipeline", "UserField", "user_field", "UDF_TARGET", "CHECKBOX_OPTIONS",
           "field_key"]

TYPE_OF_KIND: dict[Kind, str] = {
    "int": "NUMERICAL", "code": "TEXT", "str": "TEXT", "memo": "LARGE_TEXT", "date": "DATE", "dob": "DATE",
    "time": "TEXT", "datetime": "DATE", "money": "MONETORY", "bool": "CHECKBOX", "enum": "SINGLE_OPTIONS",
    "lookup": "SINGLE_OPTIONS", "phone": "PHONE", "email": "EMAIL", "zip": "TEXT", "state": "TEXT",
}


@dataclass(frozen=True)
class FieldTarget:
    target: str
    type: str
    phi: str = "send"  # send | encrypt | omit
    reason: str = ""
    label: str = ""  # the HighLevel field's display name (custom fields and object fields)


UDF_TARGET = "contact.<userfld>"  # PATUDF.VALUE: one contact custom field per USERFLD row
CHECKBOX_OPTIONS = ("Yes",)  # HighLevel's checkbox is a pick-list: one option = ticked
_UDF_TYPES = {"T": "TEXT", "L": "SINGLE_OPTIONS", "D": "DATE", "C": "CHECKBOX", "N": "NUMERICAL"}


def field_key(name: str) -> str:
    """HighLevel's field key of a name (``Patient ID`` -> ``patient_id``): keys derive from names."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass(frozen=True)
class UserField:
    """One USERFLD definition as a contact custom field: provisioning creates it, the transform writes it."""

    field_id: Any
    key: str  # contact.<snake of the name>
    name: str
    data_type: str  # TEXT | SINGLE_OPTIONS | DATE | CHECKBOX | NUMERICAL
    options: tuple[str, ...] = ()
    declared: str = "T"  # the export's FIELD_TYPE letter


def user_field(row: dict[str, Any]) -> UserField | None:
    """The contact custom field of one USERFLD row (None: a nameless definition). FIELD_TYPE T/L/D/C/N
    -> TEXT/SINGLE_OPTIONS/DATE/CHECKBOX/NUMERICAL; a pick-list without options is TEXT."""
    name = str(row.get("field_name") or "").strip()
    if not field_key(name):
        return None
    declared = str(row.get("field_type") or "T").strip().upper() or "T"
    dt = _UDF_TYPES.get(declared, "TEXT")
    options: tuple[str, ...] = ()
    if dt == "SINGLE_OPTIONS":
        options = tuple(dict.fromkeys(o.strip() for o in str(row.get("picklist") or "").split("|")
                                      if o.strip()))
        dt = dt if options else "TEXT"
    elif dt == "CHECKBOX":
        options = CHECKBOX_OPTIONS
    return UserField(row.get("field_id"), f"contact.{field_key(name)}", name, dt, options, declared)


@dataclass(frozen=True)
class CustomObject:
    key: str  # custom_objects.<name>
    singular: str
    plural: str
    primary: str  # the short key of the primary display property
    primary_label: str
    sources: tuple[str, ...]  # canonical tables whose columns land here


@dataclass(frozen=True)
class Pipeline:
    name: str
    stages: tuple[str, ...]


CUSTOM_OBJECTS: dict[str, CustomObject] = {o.key: o for o in (
    CustomObject("custom_objects.insurance_records", "Insurance Record", "Insurance Records", "carrier",
                 "Carrier",
                 ("insco", "insplan", "inssub", "patins")),
    CustomObject("custom_objects.treatment_plans", "Treatment Plan", "Treatment Plans", "procedure",
                 "Procedure", ("txplan", "txitem")),
    CustomObject("custom_objects.clinical_notes", "Clinical Note", "Clinical Notes", "title", "Title",
                 ("clinnote",)),
    CustomObject("custom_objects.patient_ledger", "Patient Ledger", "Patient Ledger Entries", "description",
                 "Description", ("ledger",)),
    CustomObject("custom_objects.insurance_claims", "Insurance Claim", "Insurance Claims", "source_id",
                 "Claim ID", ("claim", "claimln")),
)}

PIPELINES: dict[str, Pipeline] = {
    "Appointments": Pipeline("Appointments", ("Scheduled", "Confirmed", "Completed", "Broken / No-show",
                                              "Cancelled")),
    "Recall": Pipeline("Recall", ("Due", "Scheduled", "Completed", "Missed")),
}

# value maps where values change: enum code -> pick-list label or pipeline stage
VALUE_LABELS: dict[tuple[str, str], dict[str, str]] = {
    ("appt", "status"): {"SCH": "Scheduled", "CNF": "Confirmed", "ARR": "Confirmed", "SEAT": "Confirmed",
                         "CMP": "Completed", "BRK": "Broken / No-show", "CAN": "Cancelled",
                         "UNS": "Cancelled",
                         "PLN": "Scheduled"},
    ("recall", "status"): {"DUE": "Due", "OVR": "Missed", "SCH": "Scheduled", "CMP": "Completed",
                           "DIS": "Missed",
                           "INA": "Missed"},
    ("patient", "pat_stat"): {"A": "Active", "I": "Inactive", "N": "Non-patient", "X": "Archived",
                              "D": "Deleted", "Z": "Deceased", "P": "Prospect"},
    ("patient", "sex"): {"M": "Male", "F": "Female", "U": "Unknown", "O": "Other"},
    ("patient", "marital"): {"S": "Single", "M": "Married", "W": "Widowed", "D": "Divorced", "C": "Child"},
    ("patient", "pref_contact"): {"P": "Phone", "T": "Text", "E": "Email", "M": "Mail", "N": "None"},
    ("patins", "elig_stat"): {"V": "Verified", "U": "Unverified", "P": "Pending", "I": "Inactive",
                              "X": "Not found"},
    ("txplan", "status"): {"P": "Proposed", "A": "Accepted", "R": "Declined", "C": "Completed",
                           "I": "Inactive",
                           "S": "Saved"},
    ("txitem", "status"): {"TP": "Planned", "AC": "Accepted", "SC": "Scheduled", "CP": "Completed",
                           "DC": "Declined", "DL": "Deleted", "RO": "Referred out"},
    ("ledger", "trans_type"): {"CHG": "Charge", "PMT": "Patient payment", "INSPMT": "Insurance payment",
                               "INSWO": "Write-off", "ADJ": "Adjustment", "REF": "Refund",
                               "FIN": "Finance charge",
                               "BRK": "Broken-appointment fee", "XFER": "Transfer", "PREPAY": "Prepayment",
                               "VOID": "Void"},
    ("claim", "status"): {"U": "Unsent", "H": "Hold", "Q": "Queued", "S": "Sent", "A": "Accepted",
                          "R": "Received",
                          "PP": "Partially paid", "D": "Denied", "V": "Void", "C": "Closed"},
    ("insplan", "plan_type"): {"PPO": "PPO", "INDEM": "Indemnity", "DHMO": "DHMO", "MCAID": "Medicaid",
                               "DISC": "Discount plan"},
}

_CONTACT: dict[str, FieldTarget] = {
    "pat_id": FieldTarget("contact.source_system_id", "TEXT", reason="our own unique key (Source_System_ID): "
                          "contacts are found by it, never by email/phone, so family members stay separate",
                          label="Source_System_ID"),
    "fname": FieldTarget("contact.firstName", "STANDARD"),
    "lname": FieldTarget("contact.lastName", "STANDARD"),
    "birthdate": FieldTarget("contact.dateOfBirth", "STANDARD"),
    "email": FieldTarget("contact.email", "STANDARD"),
    "cphone": FieldTarget("contact.phone", "STANDARD",
                          reason="the mobile number is the contact's phone (texts)"),
    "addr1": FieldTarget("contact.address1", "STANDARD"),
    "city": FieldTarget("contact.city", "STANDARD"),
    "st": FieldTarget("contact.state", "STANDARD"),
    "zip": FieldTarget("contact.postalCode", "STANDARD"),
    "employer": FieldTarget("contact.companyName", "STANDARD"),
    "loc_id": FieldTarget("location", "STANDARD",
                          reason="routes the patient to its sub-account (locations.yaml)"),
    "pri_prov": FieldTarget("user", "STANDARD",
                            reason="the primary provider becomes the contact's assigned user"),
    "created_dt": FieldTarget("contact.original_created_date", "DATE", reason="HighLevel cannot backdate "
                              "dateAdded: the original creation date is kept in a date field",
                              label="Original Created Date"),
    "ssn": FieldTarget("skip", "TEXT", "omit",
                       "minimum-necessary PHI: a CRM needs no Social Security number"),
    "sex": FieldTarget("contact.gender", "SINGLE_OPTIONS", label="Gender"),
    "med_alert": FieldTarget("contact.medical_alert", "LARGE_TEXT", "encrypt", "health information",
                             label="Medical Alert"),
    "deleted_flg": FieldTarget("skip", "CHECKBOX", reason="deleted patients are excluded by policy "
                               "(reported, not migrated)"),
    "merged_into_id": FieldTarget("skip", "NUMERICAL", reason="merged duplicates are excluded by policy; the "
                                  "surviving patient migrates"),
    "created_by": FieldTarget("skip", "TEXT",
                              reason="staff login of the old system; no meaning in HighLevel"),
    "hyg_prov": FieldTarget("contact.hygienist", "TEXT", reason="provider code; the owner is the primary "
                            "provider", label="Hygienist"),
}

_APPT: dict[str, FieldTarget] = {
    "appt_id": FieldTarget("opportunity.source_appointment_id", "TEXT",
                           reason="stable key of the appointment",
                           label="Source Appointment ID"),
    "pat_id": FieldTarget("relation.contact", "STANDARD", reason="the opportunity's contact"),
    "loc_id": FieldTarget("location", "STANDARD"),
    "prov_id": FieldTarget("user", "STANDARD", reason="the provider becomes the opportunity's owner"),
    "status": FieldTarget("opportunity.stage", "STANDARD", reason="status -> stage of pipeline Appointments"),
    "appt_date": FieldTarget("opportunity.appointment_date", "DATE", label="Appointment Date"),
    "appt_time": FieldTarget("opportunity.appointment_time", "TEXT", label="Appointment Time"),
    "appt_name": FieldTarget("opportunity.name", "STANDARD"),
    "note": FieldTarget("opportunity.appointment_note", "LARGE_TEXT", "encrypt", "health information",
                        label="Appointment Note"),
    "created_by": FieldTarget("skip", "TEXT", reason="staff login of the old system"),
}

_APPTPROC: dict[str, FieldTarget] = {
    "appt_id": FieldTarget("relation.opportunity", "STANDARD",
                           reason="procedures roll up into their appointment"),
    "proc_code": FieldTarget("opportunity.cdt_codes", "MULTIPLE_OPTIONS", reason="CDT codes as a pick-list",
                             label="CDT Codes"),
    "fee": FieldTarget("opportunity.monetaryValue", "STANDARD", reason="the appointment's value = sum of its "
                       "procedure fees"),
}

_RECALL: dict[str, FieldTarget] = {
    "recall_id": FieldTarget("opportunity.source_recall_ids", "TEXT",
                             reason="many:1 - one opportunity per patient "
                             "and recall type; the merged recall ids are kept", label="Source Recall IDs"),
    "pat_id": FieldTarget("relation.contact", "STANDARD"),
    "recall_type": FieldTarget("opportunity.recall_type", "SINGLE_OPTIONS", label="Recall Type"),
    "due_dt": FieldTarget("opportunity.recall_due_date", "DATE", reason="a workflow can trigger on it",
                          label="Recall Due Date"),
    "status": FieldTarget("opportunity.stage", "STANDARD", reason="status -> stage of pipeline Recall"),
}

_SKIP_ALWAYS: dict[str, FieldTarget] = {
    "tin_ssn": FieldTarget("skip", "TEXT", "omit", "minimum-necessary: a provider's tax id / SSN"),
    "sig_data": FieldTarget("skip", "LARGE_TEXT", "omit",
                            "signature capture data: kept in the source system"),
    "embed_b64": FieldTarget("file.content", "STANDARD",
                             reason="embedded file content is uploaded as the file"),
    "entered_by": FieldTarget("skip", "TEXT", reason="staff login of the old system"),
    "elig_by": FieldTarget("skip", "TEXT", reason="staff login of the old system"),
}

_ENCRYPT = {("clinnote", "note_text"), ("patins", "elig_note"), ("claim", "narrative"), ("txplan", "note"),
            ("clinnote", "note_type")}


@dataclass(frozen=True)
class ObjectSpec:
    table: str
    kind: str  # contact | custom_object | opportunity | calendar_event | note | file | tag | user | ...
    object_key: str = ""
    detail: str = ""
    overrides: dict[str, FieldTarget] = field(default_factory=dict)


OBJECTS: dict[str, ObjectSpec] = {
    "location": ObjectSpec("location", "location",
                           detail="a HighLevel sub-account per location (locations.yaml)"),
    "provider": ObjectSpec("provider", "user", detail="a HighLevel user, matched by email"),
    "operatory": ObjectSpec("operatory", "reference", detail="calendar resources (reference)"),
    "proccode": ObjectSpec("proccode", "reference", detail="CDT pick-list options (our own labels)"),
    "lookup": ObjectSpec("lookup", "reference", detail="value maps for enums and pick-lists"),
    "patient": ObjectSpec("patient", "contact", overrides=_CONTACT),
    "insco": ObjectSpec("insco", "custom_object", "custom_objects.insurance_records", overrides={
        "carrier_name": FieldTarget("custom_objects.insurance_records.carrier", "TEXT", label="Carrier",
                                    reason="the record's primary display property")}),
    "insplan": ObjectSpec("insplan", "custom_object", "custom_objects.insurance_records"),
    "inssub": ObjectSpec("inssub", "custom_object", "custom_objects.insurance_records"),
    "patins": ObjectSpec("patins", "custom_object", "custom_objects.insurance_records",
                         detail="one Insurance Record per coverage, associated to the Contact"),
    "appt": ObjectSpec("appt", "opportunity", detail="pipeline Appointments + a calendar event",
                       overrides=_APPT),
    "apptproc": ObjectSpec("apptproc", "opportunity", overrides=_APPTPROC),
    "txplan": ObjectSpec("txplan", "custom_object", "custom_objects.treatment_plans"),
    "txitem": ObjectSpec("txitem", "custom_object", "custom_objects.treatment_plans",
                         detail="one Treatment Plan record per planned procedure", overrides={
                             "proc_code": FieldTarget("custom_objects.treatment_plans.procedure", "TEXT",
                                                      label="Procedure",
                                                      reason="the record's primary display property (CDT "
                                                             "code)")}),
    "clinnote": ObjectSpec("clinnote", "custom_object", "custom_objects.clinical_notes"),
    "commlog": ObjectSpec("commlog", "note", detail="contact notes with the original timestamp"),
    "ledger": ObjectSpec("ledger", "custom_object", "custom_objects.patient_ledger"),
    "claim": ObjectSpec("claim", "custom_object", "custom_objects.insurance_claims"),
    "claimln": ObjectSpec("claimln", "custom_object", "custom_objects.insurance_claims",
                          detail="claim lines roll up into their claim"),
    "recalltyp": ObjectSpec("recalltyp", "reference", detail="recall types: pick-list options"),
    "recall": ObjectSpec("recall", "opportunity", detail="pipeline Recall, one per patient and type",
                         overrides=_RECALL),
    "refsrc": ObjectSpec("refsrc", "tag",
                         detail="primary + secondary tags and the Referral_Source pick-list"),
    "patref": ObjectSpec("patref", "tag", detail="referral tags; outgoing referrals as notes"),
    "document": ObjectSpec("document", "file", detail="files linked to the Contact"),
    "userfld": ObjectSpec("userfld", "reference", detail="definitions of contact custom fields"),
    "patudf": ObjectSpec("patudf", "contact", detail="values of the practice's own contact custom fields"),
}
assert set(OBJECTS) == set(TABLES), "every canonical table has an object map entry"

_LABEL_WORDS = {"dt": "Date", "tm": "Time", "dttm": "Date/Time", "id": "ID", "no": "No.", "amt": "Amount",
                "flg": "", "st": "State", "loc": "Location", "prov": "Provider", "pat": "Patient",
                "ins": "Insurance",
                "elig": "Eligibility", "ded": "Deductible", "pct": "Percent", "est": "Estimated",
                "wo": "Write-off",
                "dx": "Diagnosis", "fmt": "Format", "addr1": "Address", "addr2": "Address 2",
                "zip": "Postal Code",
                "svc": "Service", "recv": "Received", "orig": "Original", "cov": "Coverage",
                "rel": "Relationship",
                "sub": "Subscriber", "hyg": "Hygiene", "txt": "Text", "ok": "OK", "bal": "Balance",
                "cur": "Current",
                "mi": "Middle Initial", "cred": "Credential", "npi": "NPI", "tz": "Time Zone",
                "dos": "Service Date"}


def label_of(column: str) -> str:
    words = [_LABEL_WORDS.get(w, w.capitalize()) for w in column.split("_")]
    return " ".join(w for w in words if w)


def _phi(table: str, col: Column) -> str:
    if (table, col.name) in _ENCRYPT:
        return "encrypt"
    return "send"


def target_for(table: str, column: str) -> FieldTarget:
    """The default HighLevel target of one canonical column."""
    spec = OBJECTS[table]
    col = TABLES[table].by_name[column]
    if column in spec.overrides:
        return spec.overrides[column]
    if column in _SKIP_ALWAYS:
        return _SKIP_ALWAYS[column]
    kind = spec.kind
    if kind in ("reference", "location"):
        return FieldTarget("reference", TYPE_OF_KIND[col.kind], reason=f"read for {spec.detail}")
    if kind == "user":
        if column == "email":
            return FieldTarget("user", "EMAIL", reason="providers are matched to HighLevel users by email")
        return FieldTarget("reference", TYPE_OF_KIND[col.kind],
                           reason="provider report (matching suggestions)")
    if col.fk == "patient" and kind != "contact":
        return FieldTarget("relation.contact", "STANDARD", reason="associates the record with its contact")
    if col.fk == "location" or column == "loc_id":
        return FieldTarget("location", "STANDARD")
    if col.fk == "provider":
        return FieldTarget("user", "STANDARD", reason="provider -> HighLevel user (owner)")
    if kind == "custom_object":
        short = column if not col.pk else "source_id" if table in _PRIMARY_TABLES else f"source_{column}"
        return FieldTarget(f"{spec.object_key}.{short}", _type(table, col), _phi(table, col),
                           label=label_of(short))
    if kind == "contact":  # patient (not overridden) and patudf
        if table == "patudf":
            if column == "value":
                return FieldTarget(UDF_TARGET, "TEXT", reason="one contact custom field per user-defined "
                                   "field (USERFLD), typed from its definition")
            return FieldTarget("reference", "NUMERICAL",
                               reason="which user-defined field the value belongs to")
        return FieldTarget(f"contact.{column}", _type(table, col), _phi(table, col), label=label_of(column))
    if kind == "opportunity":
        return FieldTarget(f"opportunity.{table}_{column}" if table == "recall" else f"opportunity.{column}",
                           _type(table, col), _phi(table, col), label=label_of(column))
    if kind == "note":
        return FieldTarget(f"note.{column}", "STANDARD",
                           reason="part of the note body (HighLevel cannot backdate "
                           "notes: the original time is written in the body)")
    if kind == "file":
        return FieldTarget(f"file.{column}", "STANDARD", reason="file upload metadata")
    if kind == "tag":
        if column in ("name", "source_text", "ref_kind"):
            return FieldTarget("tag", "STANDARD", reason="referral source -> primary/secondary tag and the "
                               "Referral_Source pick-list (variants normalised)")
        return FieldTarget("reference", TYPE_OF_KIND[col.kind], reason="referral details (report / notes)")
    raise AssertionError(f"no target rule for {table}.{column}")  # pragma: no cover


# the table whose primary key is the record's own id (the others' keys are kept as source_<col>)
_PRIMARY_TABLES = {"patins", "txitem", "clinnote", "ledger", "claim"}


def _type(table: str, col: Column) -> str:
    return TYPE_OF_KIND[col.kind]
