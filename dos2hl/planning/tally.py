"""One shard's plan, counted without building it: what the quota planner needs, at a fraction of the cost.

``dos2hl plan`` needs four things per location: the payloads by kind (``counts.kinds_of``), the patients,
the years of calendar events and the parents with notes or files. ``plan_shard`` builds every payload
(every field converted, sealed, every note's RTF/HTML turned into text, every note and title written)
to be counted and thrown away. Whether a payload exists depends on a few columns only, so here:

* only those columns are read from the staged Parquet (never the note text but for the notes that may
  hold a picture, never the fields a payload carries);
* each payload is decided by the same rule the transform applies, on those columns: a contact per
  patient row not excluded (deleted, merged); a record per row of a patient who migrates; a clinical
  note per revision chain that is not voided (``richtext.notes.revision_chains``, the transform's own
  grouping); an appointment opportunity per row with a patient who migrates, with an event when it has a
  date and a time; a recall opportunity per (patient, recall type); a note per outgoing referral and per
  activity; a file per document that can go (``crm.document_files`` itself: its checks stat the file);
* the work whose outcome depends on content runs only where it can change a count: a note's text is
  converted (``compose``) only in a chain where some revision's text holds ``pict`` (RTF pictures) or
  ``<img`` (HTML): only those can have inline images, each with data a file; an event's year is its
  date's year unless the date is a 31 December or a 1 January, where the office's offset can move the
  instant into the next or the previous year (then the run's own ``event_times`` places it).

The answer is the one counting ``plan_shard``'s payloads gives, key for key (``counts.counted_plan``;
tests/planning/test_tally.py compares them shard by shard on a generated world with every object kind
and ugly inputs, and tests/test_golden_outputs.py on the golden world).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..storage import Store, open_store
from .keys import stable_key
from .plan import staged_keys
from .transform import OBJECT_NAMES, RECORD_TABLES, Transformer

__all__ = ["LocationCounts", "event_year", "tally_shard", "utc_year"]

# what decides a payload's existence, per table (a clinical note's text and format: only where needed)
_NOTE_COLUMNS = ("note_id", "pat_id", "amends_note_id", "void_flg", "created_dt", "modified_dt", "note_dt",
                 "note_tm")
_DOCUMENT_COLUMNS = ("doc_id", "pat_id", "deleted_flg", "file_ext", "file_name", "mime_type", "embed_b64",
                     "file_path")


@dataclass
class LocationCounts:
    """One location's plan, counted."""

    kinds: Counter[str] = field(default_factory=Counter)  # payload kind -> n (``counts.kinds_of``)
    patients: int = 0
    years: set[int] = field(default_factory=set)  # years of calendar events (the read-back's ranges)
    noted: int = 0  # parents with notes or files (one notes list each in the read-back)

    def add(self, other: LocationCounts) -> None:
        self.kinds.update(other.kinds)
        self.patients += other.patients
        self.years |= other.years
        self.noted += other.noted


def _files(staged: Store, table: str, location: str, shard: int) -> list[pq.ParquetFile]:
    """The shard's Parquet files of ``table`` (those ``plan.read_staged`` reads)."""
    keys = staged_keys(staged, table, location, shard)
    return [pq.ParquetFile(io.BytesIO(staged.read_bytes(k))) for k in keys]


def _read(files: list[pq.ParquetFile], columns: tuple[str, ...]) -> dict[str, list[Any]]:
    """``columns`` of the files as Python lists (a column a file lacks: None in its rows)."""
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for f in files:
        names = set(f.schema_arrow.names)
        t = f.read(columns=[c for c in columns if c in names])
        for c in columns:
            out[c] += t.column(c).to_pylist() if c in names else [None] * t.num_rows
    return out


def _table(staged: Store, table: str, location: str, shard: int, columns: tuple[str, ...]
           ) -> dict[str, list[Any]]:
    return _read(_files(staged, table, location, shard), columns)


def utc_year(start: str) -> int:
    """The UTC year of an event's ISO start (what the read-back's calendar ranges go by)."""
    return dt.datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(dt.timezone.utc).year


def event_year(date: Any, time: Any, minutes: Any, tz: str | None) -> int | None:
    """The UTC year of an appointment's calendar event (``counts`` reads it from the event's start), None
    without an event. A wall time is at most a day from its UTC instant: only a 31 December or a 1
    January can fall in another year, and only those are placed in their zone."""
    if date is None or time is None:
        return None
    if isinstance(date, dt.date) and not ((date.month == 12 and date.day == 31)
                                          or (date.month == 1 and date.day == 1)):
        return date.year
    from .crm import event_times

    times = event_times(date, time, minutes, tz)
    assert times is not None
    return utc_year(times[0])


@functools.lru_cache(maxsize=4)
def _transformer(mapping_json: str) -> Transformer:
    """The map's Transformer, built once per map: only which objects and tables it sends is asked (no
    value is converted here, so neither the reference tables nor the key are needed)."""
    import json

    from ..mapping.model import Mapping as FieldMap

    return Transformer(FieldMap.model_validate(json.loads(mapping_json)), location="", key=stable_key,
                       seal=lambda text, _f, _r: text)


def tally_shard(spec: Any, relations: Mapping[str, str]) -> LocationCounts:
    """``counts.counted_plan(plan_shard(spec)[0], ...)`` without building the plan (a full shard:
    ``spec.patients`` must be None, as the planner's are)."""
    import json

    from ..richtext.notes import compose, revision_chains
    from .crm import office_zone

    if spec.patients is not None:
        raise ValueError("tally_shard counts whole shards (a sample is planned by plan_shard)")
    staged = open_store(spec.staged_uri)
    loc, shard = spec.location, spec.shard
    tf = _transformer(json.dumps(spec.mapping, sort_keys=True))
    pat = _table(staged, "patient", loc, shard, ("pat_id", "deleted_flg", "merged_into_id"))
    ids_in = set(pat["pat_id"])
    gone = {p for p, d, m in zip(pat["pat_id"], pat["deleted_flg"], pat["merged_into_id"], strict=True)
            if d or m is not None}
    contacts = sum(1 for d, m in zip(pat["deleted_flg"], pat["merged_into_id"], strict=True)
                   if not d and m is None)
    ok = ids_in - gone

    c: Counter[str] = Counter()
    c["contact"] += contacts
    noted: set[Any] = set()  # patients with a note or a file (by their contact's stable key)
    images: list[Any] = []  # a clinical note image's patient, per image with data
    for obj_key in tf.objects:
        name = OBJECT_NAMES[obj_key]
        if obj_key == "custom_objects.clinical_notes":
            n = _note_chains(staged, loc, shard, ids_in, gone, images, revision_chains, compose)
        else:
            n = sum(1 for p in _table(staged, RECORD_TABLES[obj_key][0], loc, shard, ("pat_id",))["pat_id"]
                    if p in ok)
        if n:
            c[f"record:{name}"] += n
            if relations.get(obj_key, "association") == "association":
                c[f"relation:{name}"] += n

    years: set[int] = set()
    opportunities = Counter[str]()
    events = 0
    if tf.uses("appt"):
        appt = _table(staged, "appt", loc, shard,
                      ("pat_id", "appt_date", "appt_time", "length_min", "loc_id"))
        home_tz = spec.zones.get(loc.upper()) or spec.schema.get("time_zone")
        for p, when, at, minutes, office in zip(appt["pat_id"], appt["appt_date"], appt["appt_time"],
                                                appt["length_min"], appt["loc_id"], strict=True):
            if p is None or p not in ok:  # a placeholder, or a patient not migrated: excluded
                continue
            opportunities["appointment"] += 1
            if when is not None and at is not None:
                events += 1
                office_id = str(office or "").strip().upper()
                y = event_year(when, at, minutes, office_zone(office_id, spec.zones, home_tz))
                assert y is not None
                years.add(y)
    if tf.uses("recall"):
        rec = _table(staged, "recall", loc, shard, ("pat_id", "recall_type"))
        opportunities["recall"] += len({(p, str(t or ""))
                                        for p, t in zip(rec["pat_id"], rec["recall_type"], strict=True)
                                        if p in ok})
    for kind in ("appointment", "recall"):
        if opportunities[kind]:
            c[f"opportunity:{kind}"] += opportunities[kind]
            c["event"] += events if kind == "appointment" else 0
    notes: Counter[str] = Counter()
    if tf.uses("patref") or tf.uses("refsrc"):
        ref = _table(staged, "patref", loc, shard, ("pat_id", "direction"))
        for p, d in zip(ref["pat_id"], ref["direction"], strict=True):
            if p in ok and str(d) == "OUT":
                notes["referral"] += 1
                noted.add(stable_key(loc, "patient", p))
    if tf.uses("commlog"):
        for p in _table(staged, "commlog", loc, shard, ("pat_id",))["pat_id"]:
            if p in ok:
                notes["activity"] += 1
                noted.add(stable_key(loc, "patient", p))
    for kind in ("referral", "activity"):
        if notes[kind]:
            c[f"note:{kind}"] += notes[kind]
    if images:
        c["file:note_image"] += len(images)
        c["file_link"] += len(images)
        noted.update(stable_key(loc, "patient", p) for p in images)
    if tf.uses("document"):
        docs = _documents(spec, staged, ids_in, gone)
        if docs:
            c["file:document"] += len(docs)
            c["file_link"] += len(docs)
            noted.update(docs)
    return LocationCounts(kinds=c, patients=contacts, years=years,
                          noted=len(noted))


def _note_chains(staged: Store, loc: str, shard: int, ids_in: set[Any], gone: set[Any], images: list[Any],
                 revision_chains: Any, compose: Any) -> int:
    """The clinical note records of the shard (revision chains not voided, of patients who migrate);
    each inline image with data of those chains appended to ``images`` (by its patient)."""
    files = _files(staged, "clinnote", loc, shard)
    cols = _read(files, _NOTE_COLUMNS)
    # the rows whose text may hold a picture: only those are read as text and converted
    maybe: list[bool] = []
    fmt: list[Any] = []
    text: list[Any] = []
    for f in files:
        names = set(f.schema_arrow.names)
        n = f.metadata.num_rows
        if "note_text" not in names:
            maybe += [False] * n
            text += [None] * n
            fmt += [None] * n
            continue
        t = f.read(columns=[c for c in ("note_text", "note_fmt") if c in names])
        col = t.column("note_text")
        hit = pc.or_(pc.match_substring(col, "pict"), pc.match_substring(col, "<img", ignore_case=True))
        flags = pc.fill_null(hit, False).to_pylist()
        maybe += flags
        if any(flags):
            where = pa.array(flags, pa.bool_())
            sub = t.filter(where)
            sub_text = iter(sub.column("note_text").to_pylist())
            sub_fmt = iter(sub.column("note_fmt").to_pylist() if "note_fmt" in names
                           else [None] * sub.num_rows)
            for flag in flags:
                text.append(next(sub_text) if flag else None)
                fmt.append(next(sub_fmt) if flag else None)
        else:
            text += [None] * n
            fmt += [None] * n
    rows = []
    for i, p in enumerate(cols["pat_id"]):
        if p in ids_in and p not in gone:  # plan_shard: the shard's patients' notes, the excluded ones aside
            r = {c: cols[c][i] for c in _NOTE_COLUMNS}
            r["note_text"], r["note_fmt"], r["_maybe"] = text[i], fmt[i], maybe[i]
            rows.append(r)
    n = 0
    for chain in revision_chains(rows):
        if chain.voided:
            continue
        n += 1
        if chain.latest["_maybe"] or any(r["_maybe"] for r in chain.history):
            _text, found = compose(chain)  # the stamps' zone changes the text, never the images
            images += [chain.latest["pat_id"] for img in found if img.data is not None]
    return n


def _documents(spec: Any, staged: Store, ids_in: set[Any], gone: set[Any]) -> list[str]:
    """The contact (stable key) of each document file of the shard that can go (``crm.document_files``'s
    checks, which stat the file in the export; its title's fields are not read)."""
    from ..sources.docfiles import document_size
    from .crm import document_files

    cols = _table(staged, "document", spec.location, spec.shard, _DOCUMENT_COLUMNS)
    rows = [{c: cols[c][i] for c in _DOCUMENT_COLUMNS} for i, p in enumerate(cols["pat_id"]) if p in ids_in]
    export = open_store(spec.source) if spec.source else None

    def size(k: str) -> int | None:
        return document_size(export, k) if export is not None else None

    files, _excluded = document_files(rows, location=spec.location, key=stable_key, exists=size,
                                      category_labels={}, excluded_patients=gone)
    return [f.parent_key for f in files]
