"""Read back what a run wrote and diff it field by field against the source after the map's transforms.

The expected value of every field is produced by the same ``Transformer`` that produced the payload,
so the diff is source value (after documented transforms) vs what HighLevel stores. Encrypted fields
are compared after opening them with the run's key. The diff holds counts and stable keys, never a
value: it goes into the report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from ..errors import ConfigError, HighLevelError, LocationPaused
from ..highlevel.protocols import Client
from ..highlevel.systemic import DEFAULT_PAUSE_AFTER, is_outage, is_quota, is_systemic, pause_reason
from ..phi import PREFIX
from ..planning.transform import OBJECT_NAMES, ContactPayload, RecordPayload
from .ledger import IdMap

__all__ = ["FieldDiff", "ReadBack", "PAGE", "read_back_cost", "verify_contacts", "verify_crm",
           "verify_records"]

T = TypeVar("T")
PAGE = {"contact": 500, "record": 500, "opportunity": 100}  # search page sizes (HighLevel's maximums)
EVENT_YEARS = 15  # calendar-range requests the planner assumes for a location's events (one per year)


def read_back_cost(have: dict[str, int], share: float = 1.0, *, event_windows: int = EVENT_YEARS
                   ) -> tuple[set[str], int]:
    """Which kinds to read by the location's search pages, and what the read-back costs in requests:
    ``have`` the location's count per kind (``contact``, ``record:<key>``, ``opportunity``, ``event``),
    ``share`` the part of it to verify. Pages: ``n // page + 1`` (the last, short page ends the search);
    events: ``event_windows`` calendar-range requests; else one GET per record to verify."""
    import math

    paged, cost = set(), 0
    for kind, n in have.items():
        if not n:
            continue
        pages = event_windows if kind == "event" else n // PAGE[kind.split(":", 1)[0]] + 1
        gets = math.ceil(n * share)
        if pages <= gets:
            paged.add(kind)
        cost += min(pages, gets)
    return paged, cost


class ReadBack:
    """How verification reads one location's records back. Per kind (``contact``, ``record:<key>``,
    ``opportunity``, ``event``): the location's search pages (500 contacts or records, 100
    opportunities a page; events by one calendar-range request per year) when ``paged`` names the
    kind, else one GET per record. The pages are read once per location and shared by its shards.
    Notes: one list per contact that has notes or files (HighLevel has no location-wide notes search)."""

    def __init__(self, client: Client, paged: set[str] | frozenset[str] = frozenset(),
                 calendar_id: str | None = None
                 ) -> None:
        self.client, self.paged, self.calendar_id = client, set(paged), calendar_id
        self._pages: dict[str, dict[str, Any]] = {}
        self._years: dict[int, dict[str, Any]] = {}
        self._notes: dict[str, set[str]] = {}

    def _all(self, kind: str, read: Callable[[], Any]) -> dict[str, Any]:
        if kind not in self._pages:
            self._pages[kind] = {x.id: x for x in read()}
        return self._pages[kind]

    def contact(self, cid: str) -> Any:
        if "contact" in self.paged:
            return self._all("contact",
                             lambda: self.client.search_contacts_all(page_limit=PAGE["contact"])).get(cid)
        return self.client.get_contact(cid)

    def record(self, key: str, rid: str) -> Any:
        if f"record:{key}" in self.paged:
            return self._all(f"record:{key}", lambda: self.client.search_records_all(
                key, page_limit=PAGE["record"])).get(rid)
        return self.client.get_record(key, rid)

    def opportunity(self, oid: str) -> Any:
        if "opportunity" in self.paged:
            return self._all("opportunity", lambda: self.client.search_opportunities_all(
                limit=PAGE["opportunity"])).get(oid)
        return self.client.get_opportunity(oid)

    def event(self, eid: str, start: str | None) -> Any:
        """By the calendar's range request for the year the event should start in; an event not there
        (moved, or another calendar) costs one GET."""
        import datetime as dt

        when = _instant(start)
        if "event" in self.paged and self.calendar_id and when:
            year = dt.datetime.fromisoformat(when).year
            if year not in self._years:
                lo = dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc)
                hi = dt.datetime(year + 1, 1, 1, tzinfo=dt.timezone.utc)
                self._years[year] = {e.id: e for e in self.client.list_calendar_events(
                    self.calendar_id, int(lo.timestamp() * 1000), int(hi.timestamp() * 1000) - 1)}
            if eid in self._years[year]:
                return self._years[year][eid]
        return self.client.get_appointment(eid)

    def notes(self, cid: str) -> set[str]:
        if cid not in self._notes:
            self._notes[cid] = {n.body or "" for n in self.client.list_notes(cid)}
        return self._notes[cid]


@dataclass
class FieldDiff:
    """object -> field -> {"match", "mismatch", "missing"} counts, plus up to 5 stable keys per miss."""

    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=lambda: defaultdict(
        lambda: defaultdict(lambda: {"match": 0, "mismatch": 0, "missing": 0})))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    read_back: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    not_found: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pause_after: int = DEFAULT_PAUSE_AFTER  # outages in a row (after the client's retries) that pause
    outages: int = 0  # the current row of them
    location: str = ""  # the export location read back (named by the pause)

    def add(self, obj: str, name: str, key: str, expected: Any, actual: Any) -> None:
        c = self.counts[obj][name]
        if actual is None or actual == "" or actual == []:
            outcome = "missing"
        elif _same(expected, actual):
            outcome = "match"
        else:
            outcome = "mismatch"
        c[outcome] += 1
        if outcome != "match" and len(self.examples[f"{obj}.{name}"]) < 5:
            self.examples[f"{obj}.{name}"].append(key)

    def mismatches(self) -> int:
        return sum(c["mismatch"] + c["missing"] for fields in self.counts.values() for c in fields.values())

    def to_dict(self) -> dict[str, Any]:
        return {"read_back": dict(self.read_back), "not_found": dict(self.not_found),
                "fields": {o: {f: dict(c) for f, c in fs.items()} for o, fs in self.counts.items()},
                "examples": dict(self.examples), "mismatches": self.mismatches()}


def comparable(v: Any) -> list[str] | str:
    """A field value as verification compares it (lists unordered, 3.0 == "3", a timestamp by its date,
    text case-blind); the inventory's digests use the same form, so "equal" means one thing."""
    if isinstance(v, list):
        return sorted(str(x) for x in v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    s = str(v).strip()
    return s[:10] if len(s) >= 10 and s[4:5] == "-" and s[7:8] == "-" else s.lower()


def _same(a: Any, b: Any) -> bool:
    return comparable(a) == comparable(b)


def _open(open_sealed: Callable[[str, str, str], str], value: Any, field: str, record: str) -> Any:
    """A sealed value opened for ``record``; one that does not open for it (another record's value moved
    here, another key) stays as it is, so it shows as a difference."""
    if not (isinstance(value, str) and value.startswith(PREFIX)):
        return value
    try:
        return open_sealed(value, field, record)
    except ConfigError:
        return value


def _read_back(fetch: Callable[[], T | None], diff: FieldDiff, obj: str) -> T | None:
    """What HighLevel holds under an id we wrote, counted as read back or not found (an error reading
    it counts as not found, but a spent day or a systemic refusal is raised: every read after it would
    fail alike; so is the ``diff.pause_after``-th outage in a row, 5xx or no answer after the client's
    retries, as a ``LocationPaused``, as the writer's row of them pauses its location)."""
    try:
        got = fetch()
    except HighLevelError as exc:
        if is_quota(exc) or is_systemic(exc):  # the location's, not the record's: it pauses (issue 17)
            raise
        if is_outage(exc):
            diff.outages += 1
            if diff.outages >= diff.pause_after:
                raise LocationPaused(diff.location, pause_reason(exc, diff.outages)) from None
        else:
            diff.outages = 0
        got = None
    else:
        diff.outages = 0
    if got is None:
        diff.not_found[obj] += 1
        return None
    diff.read_back[obj] += 1
    return got


def _add_value(diff: FieldDiff, obj: str, name: str, record: str, expected: Any, actual: Any,
               open_sealed: Callable[[str, str, str], str] | None, field: str | None = None) -> None:
    """``diff.add`` for a value that may be sealed: both sides opened for ``record`` (as ``field``)."""
    if open_sealed and isinstance(actual, str) and actual.startswith(PREFIX):
        actual = _open(open_sealed, actual, field or name, record)
        expected = _open(open_sealed, expected, field or name, record)
    diff.add(obj, name, record, expected, actual)


def verify_contacts(get_contact: Callable[[str], Any], payloads: list[ContactPayload], ids: IdMap,
                    field_ids: dict[str, str],
                    diff: FieldDiff, *, open_sealed: Callable[[str, str, str], str] | None = None,
                    owners: Callable[[str | None], str | None] | None = None) -> None:
    by_id = {v: k for k, v in field_ids.items()}
    for p in payloads:
        hl_id = ids.get(p.stable_key)
        if hl_id is None:
            continue
        c = _read_back(partial(get_contact, hl_id), diff, "patient")
        if c is None:
            continue
        data = c.model_dump()
        custom = {by_id.get(cf.id, cf.id): cf.value for cf in c.customFields}
        for name, expected in p.body.items():
            if name == "customFields":
                continue
            diff.add("patient", name, p.stable_key, expected, data.get(name))
        for key, expected in p.body.get("customFields", {}).items():
            _add_value(diff, "patient", key, p.stable_key, expected, custom.get(key), open_sealed)
        if owners is not None:
            diff.add("patient", "assignedTo", p.stable_key, owners(p.owner_provider), data.get("assignedTo"))


def verify_records(get_record: Callable[[str, str], Any], payloads: list[RecordPayload], ids: IdMap,
                   diff: FieldDiff, *,
                   open_sealed: Callable[[str, str, str], str] | None = None,
                   owners: Callable[[str | None], str | None] | None = None) -> None:
    for r in payloads:
        obj = OBJECT_NAMES[r.object_key]
        hl_id = ids.get(r.stable_key)
        if hl_id is None:
            continue
        rec = _read_back(partial(get_record, r.object_key, hl_id), diff, obj)
        if rec is None:
            continue
        props = rec.properties or {}
        if owners is not None and (owner := owners(r.owner_provider)):  # a provider known as a user
            diff.add(obj, "owner", r.stable_key, owner, (rec.owner or [None])[0])
        if r.relation == "lookup_field":  # the record names its contact itself
            diff.add(obj, "contact_id", r.stable_key, ids.get(r.parent_key), props.get("contact_id"))
        for name, expected in r.properties.items():
            _add_value(diff, obj, name, r.stable_key, expected, props.get(name), open_sealed,
                       f"{r.object_key}.{name}")


def verify_crm(reader: ReadBack, plan: Any, ids: IdMap, diff: FieldDiff, schema: Any, *,
               open_sealed: Callable[[str, str, str], str] | None = None) -> None:
    """Opportunities (name, stage, status, value, owner, custom fields), their calendar events (start,
    status, notifications off), notes (exact body on the contact) and files (linked by a note)."""
    from ..planning.crm import link_note_body

    fields = {v: k for k, v in schema.opportunity_fields.items()}
    for o in plan.opportunities:
        hl_id = ids.get(o.stable_key)
        if hl_id is None:
            continue
        got = _read_back(partial(reader.opportunity, hl_id), diff, o.object)
        if got is None:
            continue
        data = got.model_dump()
        pipeline_id, stage_id = schema.pipeline(o.pipeline, o.stage)
        for name, expected, actual in (("name", o.name, got.name),
                                       ("pipelineStageId", stage_id, got.pipelineStageId),
                                       ("status", o.status, got.status),
                                       ("monetaryValue", o.monetary, data.get("monetaryValue"))):
            if expected is not None:
                diff.add(o.object, name, o.stable_key, expected, actual)
        owner = schema.users.get(o.owner_provider or "") or schema.users.get("")
        diff.add(o.object, "assignedTo", o.stable_key, owner, data.get("assignedTo"))
        custom = {fields.get(cf.id, cf.id): cf.fieldValue if cf.fieldValue is not None else cf.value
                  for cf in got.customFields}
        for key, expected in o.custom.items():
            _add_value(diff, o.object, key, o.stable_key, expected, custom.get(key), open_sealed)
        if o.event is not None and (eid := ids.get(o.event.stable_key)):
            ev = _read_back(partial(reader.event, eid, o.event.start), diff, "appointment_event")
            if ev is None:
                continue
            extra = ev.model_extra or {}
            diff.add("appointment_event", "startTime", o.event.stable_key, _instant(o.event.start),
                     _instant(ev.startTime))
            diff.add("appointment_event", "appointmentStatus", o.event.stable_key, o.event.status,
                     ev.appointmentStatus)
            diff.add("appointment_event", "toNotify", o.event.stable_key, "False", str(extra.get("toNotify")))
    def bodies(contact_key: str) -> set[str] | None:
        cid = ids.get(contact_key)
        return None if cid is None else reader.notes(cid)

    for n in plan.notes:
        if ids.get(n.stable_key) and (have := bodies(n.parent_key)) is not None:
            diff.read_back[n.object] += n.body in have
            diff.not_found[n.object] += n.body not in have
            diff.add(n.object, "body", n.stable_key, "present", "present" if n.body in have else None)
    for f in plan.files:
        url = ids.detail(f.stable_key)
        if ids.get(f.stable_key) and (have := bodies(f.parent_key)) is not None:
            linked = link_note_body(f, url or "") in have
            diff.read_back[f.object] += linked
            diff.not_found[f.object] += not linked
            diff.add(f.object, "linked_to_contact", f.stable_key, "present", "present" if linked else None)


def _instant(value: Any) -> str | None:
    import datetime as dt

    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z",
                                                            "+00:00")).astimezone(dt.timezone.utc).isoformat()
    except ValueError:
        return str(value)
