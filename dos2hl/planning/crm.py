"""Pure functions for the CRM side of the object map: appointments, recalls, referrals, activities,
documents and clinical notes (staged rows + the confirmed map -> payloads; no I/O but ``FileSource``).

* Appointment -> an opportunity in pipeline "Appointments" (stage from status, value = its procedure
  fees, CDT codes in a pick-list) **and** a calendar event on the location's calendar at its real time
  in the location's time zone, written as a historical import: ``ignoreDateRange``,
  ``ignoreFreeSlotValidation`` and ``toNotify: false`` always (a migration never texts a patient).
  A placeholder appointment without a patient is excluded and reported, never invented.
* Recall rows -> one opportunity per patient and recall type in pipeline "Recall" (many:1; the merged
  rows' ids are kept), due date in ``opportunity.recall_due_date`` for workflows to trigger on.
* Referrals: an incoming source becomes contact tags (``referral: <kind>`` and, for marketing, the
  channel) and the ``contact.referral_source`` pick-list, written with the contact (no extra
  request); free-text variants are normalised (``referrals.py``). Outgoing referrals become notes.
* Activities (the communication log) -> contact notes; HighLevel cannot backdate a note, so the
  original time, direction and channel head the body.
* Documents and a clinical note's inline images -> files uploaded to the media library, each linked to
  its contact by a note holding the file's link (NOTES.md §2.10 option b: no attach-to-contact
  endpoint exists; a note keeps the link on the contact's timeline without a custom object, and costs
  one request where a Document object would cost two). Files that cannot go (missing, empty, over
  25 MB, a proprietary format) are excluded with a reason, one row each in the report.
* Clinical notes -> Clinical Note records (``transform.records``), one per revision chain: the latest
  text converted from RTF/HTML (``richtext``) with its amendment history.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..mapping.model import Entry
from ..sources.docfiles import MAX_DOCUMENT_BYTES, RefusedDocument, document_key, too_large_reason

__all__ = ["EventPayload", "FilePayload", "NotePayload", "OpportunityPayload", "CrmPlan", "MAX_UPLOAD_BYTES",
           "appointment_payloads", "recall_payloads", "activity_notes", "outgoing_referral_notes",
           "document_files", "link_note_body", "PROPRIETARY_EXTS", "UPLOAD_EXTS", "upload_ext",
           "event_times", "local_instant", "local_stamp",
           "office_zone"]

MAX_UPLOAD_BYTES = MAX_DOCUMENT_BYTES
# the only extensions an uploaded file's name can carry (anything else -> "bin"): the extension is
# the one part of FILE_NAME that reaches HighLevel, and a name without a dot must not pass as one
UPLOAD_EXTS = {"pdf": "application/pdf", "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
               "gif": "image/gif", "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",
               "webp": "image/webp", "heic": "image/heic", "dcm": "application/dicom", "txt": "text/plain",
               "rtf": "application/rtf", "doc": "application/msword",
               "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               "xls": "application/vnd.ms-excel",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "odt": "application/vnd.oasis.opendocument.text", "csv": "text/csv", "mp4": "video/mp4"}
# formats only the source's imaging software opens: uploading them gives the practice an unreadable file
PROPRIETARY_EXTS = frozenset({"dxr", "img"})
EVENT_STATUS = {"SCH": "new", "PLN": "new", "CNF": "confirmed", "ARR": "showed", "SEAT": "showed",
                "CMP": "showed", "BRK": "noshow", "CAN": "cancelled", "UNS": "cancelled"}
APPT_STATUS = {"CMP": "won", "BRK": "lost", "CAN": "abandoned", "UNS": "abandoned"}
RECALL_STATUS = {"CMP": "won", "DIS": "abandoned", "INA": "abandoned"}
MODE = {"PH": "phone call", "EM": "email", "TX": "text message", "ML": "letter", "IP": "in person",
        "FX": "fax"}
DIRECTION = {"S": "outbound", "R": "inbound", "N": "internal"}
COMM_TYPE = {"APPT": "appointment", "RECALL": "recall", "FIN": "financial", "INS": "insurance",
             "MISC": "general"}
OUT_STATUS = {"NONE": "no status", "DECL": "declined", "SCHED": "scheduled", "CONS": "consulted",
              "INTX": "in treatment", "DONE": "completed"}
_KNOWN_MIMES = frozenset(UPLOAD_EXTS.values()) | {"application/octet-stream"}
IMAGE_CATEGORY = {"R": "radiograph", "P": "photo", "D": "document", "F": "form", "A": "attachment"}


@dataclass
class EventPayload:
    stable_key: str
    start: str  # ISO 8601 with the location's offset
    end: str
    status: str  # new | confirmed | showed | noshow | cancelled
    title: str


@dataclass
class OpportunityPayload:
    object: str  # appointment | recall
    stable_key: str
    source_id: str
    parent_key: str  # the contact's stable key
    pipeline: str
    stage: str
    status: str  # open | won | lost | abandoned
    name: str
    monetary: float | None
    custom: dict[str, Any]  # opportunity.<key> -> value
    owner_provider: str | None
    rows: int = 1  # source rows it stands for (recalls merge)
    event: EventPayload | None = None
    event_problem: str = ""  # why the appointment has no calendar event (reported)


@dataclass
class NotePayload:
    object: str  # activity | referral
    stable_key: str
    source_id: str
    parent_key: str
    body: str


@dataclass
class FilePayload:
    object: str  # document | note_image
    stable_key: str
    source_id: str
    parent_key: str
    name: str  # the uploaded file's name: ids only (source file names can hold a patient's name)
    mime: str
    title: str  # the link note's header
    description: str = ""
    key: str | None = None  # the file in the export store (IMAGES/...)
    data: bytes | None = None  # inline content (embedded documents, note images)
    size: int = 0


@dataclass
class CrmPlan:
    opportunities: list[OpportunityPayload] = field(default_factory=list)
    notes: list[NotePayload] = field(default_factory=list)
    files: list[FilePayload] = field(default_factory=list)
    # (object, source id, reason) of every row excluded by a policy: one report row each
    excluded: list[tuple[str, str, str]] = field(default_factory=list)


Key = Callable[[str, str, Any], str]
Value = Callable[[Entry, Mapping[str, Any], str], Any]  # (entry, row, the record's stable key)


def _zone(name: str | None) -> dt.tzinfo:
    """An IANA zone; UTC only when none is known (``prepare`` resolves every office's zone first and
    refuses a location without one, so a run never gets here with None)."""
    try:
        return ZoneInfo(name) if name else dt.timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def local_instant(date: dt.date, time: dt.time, tz: str | None) -> dt.datetime:
    """A wall-clock date and time at a place -> the aware instant, normalised to a real wall time.

    Around DST changes (deterministic, whatever the platform): an *ambiguous* time (the repeated hour
    when clocks go back, e.g. America/Chicago 2024-11-03 01:30) is its first occurrence, daylight time
    (``fold=0``); a *nonexistent* time (the hour skipped when clocks go forward, 2024-03-10 02:30) is
    read with the offset in force before the change and written as the wall time after it (03:30 CDT):
    the instant a clock that was not moved forward would have shown."""
    zone = _zone(tz)
    naive = dt.datetime.combine(date, time.replace(tzinfo=None))
    return naive.replace(tzinfo=zone, fold=0).astimezone(dt.timezone.utc).astimezone(zone)


def event_times(date: dt.date | None, time: dt.time | None, minutes: int | None, tz: str | None
                ) -> tuple[str, str] | None:
    """Start and end (ISO 8601 with the offset of ``tz``, the zone of the office where the appointment
    took place); None without a date or a time. The length is elapsed time: an appointment across a DST
    change ends ``minutes`` after it starts, not at the wall time ``minutes`` later."""
    if date is None or time is None:
        return None
    start = local_instant(date, time, tz)
    length = dt.timedelta(minutes=minutes if minutes and minutes > 0 else 30)
    end = (start.astimezone(dt.timezone.utc) + length).astimezone(start.tzinfo)
    return start.isoformat(), end.isoformat()


def office_zone(office: Any, zones: Mapping[str, str], home: str | None) -> str | None:
    """The zone of the office where a row happened (``APPT.LOC_ID``), else the home office's ``home``
    (a blank or unknown office id)."""
    return zones.get(str(office or "").strip().upper()) or home


def _custom_entries(entries: list[Entry], skip: set[str]) -> list[Entry]:
    """The entries ``_custom`` sends: the opportunity's custom fields, but ``skip``."""
    return [e for e in entries if e.target.startswith("opportunity.") and e.target.count(".") == 1
            and e.type != "STANDARD" and e.target not in skip]


def _custom(entries: list[Entry], row: Mapping[str, Any], value: Value, record: str) -> dict[str, Any]:
    """The opportunity's custom fields from ``row`` (``entries``: ``_custom_entries``, chosen once)."""
    out = {}
    for e in entries:
        v = value(e, row, record)
        if v is not None:
            out[e.target] = v
    return out


def appointment_payloads(rows: list[dict[str, Any]], procs: Mapping[Any, list[dict[str, Any]]],
                         entries: Mapping[str, list[Entry]], *, location: str, key: Key, value: Value,
                         stage_of: Mapping[str, str], tz: str | None, excluded_patients: set[Any],
                         zones: Mapping[str, str] | None = None,
                         ) -> tuple[list[OpportunityPayload], list[tuple[str, str, str]]]:
    """One opportunity + event per appointment; ``procs`` = appointment id -> its APPTPROC rows.

    The appointment goes to the patient's home sub-account (``location``, where their contact is) but
    its instant is read in the zone of the office where it took place: ``zones`` (LOC_ID -> IANA zone)
    at ``APPT.LOC_ID``, else ``tz`` (the home office's). A visit at another office says so in the
    opportunity's name and the event's title (``at L002``)."""
    out, excluded = [], []
    appt_entries, proc_entries = entries.get("appt", []), entries.get("apptproc", [])
    appt_custom = _custom_entries(appt_entries, set())
    for row in rows:
        aid = row["appt_id"]
        if row.get("pat_id") is None:
            excluded.append(("appointment", str(aid),
                             "placeholder appointment without a patient (not invented)"))
            continue
        if row["pat_id"] in excluded_patients:
            excluded.append(("appointment", str(aid), "its patient is excluded"))
            continue
        mine = sorted(procs.get(aid, []), key=lambda p: p.get("seq") or 0)
        sk = key(location, "appointment", aid)
        custom = _custom(appt_custom, row, value, sk)
        codes = [str(p["proc_code"]) for p in mine if p.get("proc_code")]
        for e in proc_entries:
            if e.target == "opportunity.cdt_codes" and codes:
                custom[e.target] = list(dict.fromkeys(codes))
            elif e.target.startswith("opportunity.") and e.type not in ("STANDARD", "MULTIPLE_OPTIONS"):
                vals = [v for p in mine if (v := value(e, p, sk)) is not None]
                if e.type in ("TEXT", "LARGE_TEXT") and vals:  # rolled up: one value per procedure
                    custom[e.target] = ", ".join(dict.fromkeys(str(v) for v in vals))
                elif len(vals) == 1:  # a number only says something for a single procedure
                    custom[e.target] = vals[0]
        fees = [float(p["fee"]) for p in mine if p.get("fee") is not None]
        status = str(row.get("status") or "SCH")
        when = row.get("appt_date")
        at = row.get("appt_time")
        label = str(row.get("appt_name") or "Appointment").strip() or "Appointment"
        office = str(row.get("loc_id") or "").strip().upper()
        elsewhere = f" at {office}" if office and office != location.upper() else ""
        name = (f"{label} {when.isoformat() if when else 'undated'}{' ' + at.strftime('%H:%M') if at else ''}"
                f"{elsewhere} (#{aid})")
        p = OpportunityPayload("appointment", sk, str(aid), key(location, "patient", row["pat_id"]),
                               "Appointments",
                               stage_of.get(status, "Scheduled"), APPT_STATUS.get(status, "open"), name,
                               round(sum(fees), 2) if fees else None, custom,
                               row.get("prov_id") or row.get("hyg_id"))
        times = event_times(when, at, row.get("length_min"), office_zone(office, zones or {}, tz))
        if times is None:
            p.event_problem = "no date or start time: opportunity only, no calendar event"
        else:
            p.event = EventPayload(sk + "/event", times[0], times[1], EVENT_STATUS.get(status, "new"),
                                   label + elsewhere)
        out.append(p)
    return out, excluded


def recall_payloads(rows: list[dict[str, Any]], entries: list[Entry], *, location: str, key: Key,
                    value: Value,
                    stage_of: Mapping[str, str], type_labels: Mapping[str, str],
                    owners: Mapping[Any, str | None],
                    excluded_patients: set[Any]) -> tuple[list[OpportunityPayload],
                                                          list[tuple[str, str, str]]]:
    """One opportunity per (patient, recall type); the row with the latest due date speaks for the group."""
    groups: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    excluded = []
    for row in rows:
        if row.get("pat_id") in excluded_patients:
            excluded.append(("recall", str(row["recall_id"]), "its patient is excluded"))
            continue
        groups.setdefault((row["pat_id"], str(row.get("recall_type") or "")), []).append(row)
    out = []
    recall_custom = _custom_entries(entries, {"opportunity.source_recall_ids"})
    for (pid, rtype), group in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        group.sort(key=lambda r: (r.get("due_dt") or dt.date.min, r["recall_id"]))
        lead = group[-1]
        ids = ",".join(str(r["recall_id"]) for r in sorted(group, key=lambda r: r["recall_id"]))
        sid = f"{pid}:{rtype}"
        sk = key(location, "recall", sid)
        custom = _custom(recall_custom, lead, value, sk)
        custom["opportunity.source_recall_ids"] = ids
        status = str(lead.get("status") or "DUE")
        label = type_labels.get(rtype) or rtype or "Recall"
        out.append(OpportunityPayload("recall", sk, sid, key(location, "patient", pid),
                                      "Recall", stage_of.get(status, "Due"),
                                      RECALL_STATUS.get(status, "open"),
                                      f"{label} recall (patient #{pid})", None, custom, owners.get(pid),
                                      rows=len(group)))
    return out, excluded


def local_stamp(v: Any, tz: str | None = None) -> str:
    """A source date or timestamp as note text. A timestamp keeps its wall time and gains the zone and
    offset of the office where it happened (``2024-03-10 09:30 MDT (-06:00)``: the instant is
    unambiguous); a date stays a date (no zone: nothing shifts it)."""
    if isinstance(v, dt.datetime):
        if tz:
            at = local_instant(v.date(), v.time(), tz)
            off = at.strftime("%z")
            return f"{at.strftime('%Y-%m-%d %H:%M')} {at.tzname()} ({off[:3]}:{off[3:]})"
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, dt.date):
        return v.isoformat()
    return "undated"


def activity_notes(rows: list[dict[str, Any]], *, location: str, key: Key, with_text: bool,
                   excluded_patients: set[Any], tz: str | None = None
                   ) -> tuple[list[NotePayload], list[tuple[str, str, str]]]:
    """Communication log -> contact notes, the original time/direction/channel in the first line; the
    time with the zone of ``tz`` (COMMLOG has no office column: the patient's home office's)."""
    out, excluded = [], []
    for row in rows:
        cid = row["comm_id"]
        if row.get("pat_id") is None or row["pat_id"] in excluded_patients:
            excluded.append(("activity", str(cid), "no patient, or its patient is excluded"))
            continue
        head = (f"[Dent-O-Soft {COMM_TYPE.get(str(row.get('comm_type')), 'general')} "
                f"{MODE.get(str(row.get('mode')), 'contact')}, {DIRECTION.get(str(row.get('direction')), '')}"
                f" · {local_stamp(row.get('comm_dttm'), tz)} · log #{cid}]").replace(", ·", " ·")
        text = str(row.get("note") or "").strip() if with_text else ""
        out.append(NotePayload("activity", key(location, "activity", cid), str(cid),
                               key(location, "patient", row["pat_id"]), f"{head}\n{text}".strip()))
    return out, excluded


def outgoing_referral_notes(rows: list[dict[str, Any]], sources: Mapping[Any, dict[str, Any]], *,
                            location: str,
                            key: Key, excluded_patients: set[Any]) -> list[NotePayload]:
    out = []
    for row in rows:
        if str(row.get("direction")) != "OUT" or row.get("pat_id") in excluded_patients:
            continue
        src = sources.get(row.get("ref_id")) or {}
        to = " - ".join(str(v) for v in (src.get("practice") or src.get("name"), src.get("specialty")) if v)
        what = " ".join(str(v) for v in (row.get("proc_code"), f"tooth {row['tooth']}" if row.get("tooth")
                                         else None)
                        if v)
        rid = row["patref_id"]
        head = (f"[Dent-O-Soft outgoing referral · {local_stamp(row.get('ref_dt'))} · referral #{rid}] "
                f"to {to or 'specialist'}{' for ' + what if what else ''}; status: "
                f"{OUT_STATUS.get(str(row.get('out_status') or 'NONE'), 'no status')}")
        note = str(row.get("note") or "").strip()
        out.append(NotePayload("referral", key(location, "referral", rid), str(rid),
                               key(location, "patient", row["pat_id"]), f"{head}\n{note}".strip()))
    return out


def upload_ext(file_ext: Any, file_name: Any) -> str:
    """The extension an upload's name carries: FILE_EXT, else the part of FILE_NAME after its last dot,
    kept only when it is a known document/image extension ("bin" otherwise)."""
    given = str(file_ext or "").strip().lstrip(".").lower()
    if not given:
        stem, dot, tail = str(file_name or "").rpartition(".")
        given = tail.lower() if dot and stem else ""
    return given if given in UPLOAD_EXTS or given in PROPRIETARY_EXTS else "bin"


def _upload_mime(declared: Any, ext: str) -> str:
    """MIME_TYPE when it is one we know, else the extension's (a free-text column never reaches HighLevel)."""
    mime = str(declared or "").strip().lower()
    return mime if mime in _KNOWN_MIMES else UPLOAD_EXTS.get(ext, "application/octet-stream")


def document_files(rows: list[dict[str, Any]], *, location: str, key: Key,
                   exists: Callable[[str], int | None],
                   category_labels: Mapping[str, str], excluded_patients: set[Any], tz: str | None = None
                   ) -> tuple[list[FilePayload], list[tuple[str, str, str]]]:
    """Files to upload, and (document, id, reason) for every one that cannot go. ``exists(key)`` is the
    file's size in the export store, or None when it is not there."""
    out, excluded = [], []
    for row in rows:
        did = row["doc_id"]
        if row.get("deleted_flg"):
            excluded.append(("document", str(did), "deleted in the source"))
            continue
        if row.get("pat_id") is None or row["pat_id"] in excluded_patients:
            excluded.append(("document", str(did), "no patient, or its patient is excluded"))
            continue
        ext = upload_ext(row.get("file_ext"), row.get("file_name"))
        mime = _upload_mime(row.get("mime_type"), ext)
        cat = str(row.get("category") or "")
        title = (f"document #{did} · {category_labels.get(cat, cat or 'document')} · "
                 f"{IMAGE_CATEGORY.get(str(row.get('img_type') or ''), 'file')} · "
                 f"{local_stamp(row.get('doc_dttm'), tz)}")
        f = FilePayload("document", key(location, "document", did), str(did),
                        key(location, "patient", row["pat_id"]),
                        f"doc-{location}-{did}.{ext}", mime, title, str(row.get("description") or "").strip())
        if ext in PROPRIETARY_EXTS:
            excluded.append(("document", str(did),
                             f"proprietary format .{ext}: open it in the imaging software "
                             "and export it as JPEG/PDF, then upload by hand"))
            continue
        if row.get("embed_b64"):
            try:
                f.data = base64.b64decode(str(row["embed_b64"]), validate=False)
            except (binascii.Error, ValueError):
                excluded.append(("document", str(did), "embedded content is not valid base64"))
                continue
            f.size = len(f.data)
        else:
            try:  # the one safe resolver: nothing outside the export's IMAGES tree, no link, no FIFO
                f.key = document_key(row.get("file_path"), row.get("file_name"))
                size = exists(f.key) if f.key else None
            except RefusedDocument as exc:
                excluded.append(("document", str(did), exc.reason))
                continue
            if size is None:
                excluded.append(("document", str(did), "file missing from the export's IMAGES folder"))
                continue
            f.size = size
        if f.size == 0:
            excluded.append(("document", str(did), "zero-byte file"))
            continue
        if f.size > MAX_UPLOAD_BYTES:
            excluded.append(("document", str(did), too_large_reason(f.size)))
            continue
        out.append(f)
    return out, excluded


def link_note_body(f: FilePayload, url: str) -> str:
    """The note that links an uploaded file to its contact (deterministic: it is its own lookup key)."""
    return "\n".join(x for x in (f"[Dent-O-Soft {f.title}]", f.description, f"File: {url}") if x)
