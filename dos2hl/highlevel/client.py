"""``HighLevelClient``: typed operations on HighLevel API v2 for one location (sub-account).

Every request takes a permit from the ``PermitSource`` first, carries ``Authorization: Bearer`` and
the ``Version`` of its API family, and is retried per the ``RetryPolicy``. Creates are not
idempotent: pass ``lookup`` (e.g. ``client.contact_lookup(source_field_id, patient_id)``) so that an
ambiguous failure is verified instead of re-sent.

Examples:
    >>> client = HighLevelClient(URL, SecretStr(token), location_id)            # doctest: +SKIP
    >>> w = client.create_contact(ContactCreate(firstName="Ann", customFields=[  # doctest: +SKIP
    ...     CustomFieldInput(id=SRC_FIELD, field_value="P-123")]), stable_key=key,
    ...     lookup=client.contact_lookup(SRC_FIELD, "P-123"))
    >>> w.value.id, w.outcome                                                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from ..errors import PayloadTooLargeError
from ._core import Lookup, Written, _Call
from .models import (
    Appointment,
    AppointmentCreate,
    Calendar,
    Contact,
    ContactCreate,
    ContactSearch,
    ContactSearchPage,
    ContactUpdate,
    ContactUpsert,
    FilterGroup,
    MediaFile,
    MediaItem,
    Note,
    NoteCreate,
    Opportunity,
    OpportunityCreate,
    OpportunitySearchPage,
    OpportunityUpdate,
    Pipeline,
    Record,
    RecordCreate,
    RecordSearch,
    RecordSearchPage,
    RecordUpdate,
    Relation,
    RelationCreate,
    SearchFilter,
    Task,
    TaskCreate,
    User,
    Workflow,
)
from .paging import iter_search_after
from .schema_ops import SchemaOperations

__all__ = ["HighLevelClient", "MAX_UPLOAD_BYTES"]

log = logging.getLogger("dos2hl.highlevel")

MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # /medias/upload-file


class HighLevelClient(SchemaOperations):
    """HighLevel API v2 for one location. Args: see ``_Core`` (base_url, token, location_id, permits,
    transport, retry, timeout, limits, sleep, rng). Use as a context manager or call ``close()``."""

    # ---- contacts -----------------------------------------------------------------------------------
    def create_contact(self, contact: ContactCreate, *, stable_key: str | None = None,
                       lookup: Lookup[Contact] | None = None) -> Written[Contact]:
        """POST /contacts/ (201). A duplicate raises ``DuplicateContactError`` with the existing id."""
        call = _Call("POST", "/contacts/", json=self._body(contact), stable_key=stable_key)
        return self._write(call, lambda b: (self._parse(Contact, b, call, "contact"), "created"), lookup)

    def upsert_contact(self, contact: ContactUpsert, *, stable_key: str | None = None,
                       lookup: Lookup[Contact] | None = None) -> Written[Contact]:
        """POST /contacts/upsert (200): matched per the location's duplicate setting (NOTES §2.2)."""
        call = _Call("POST", "/contacts/upsert", json=self._body(contact), stable_key=stable_key)

        def parse(b: Any) -> tuple[Contact, Literal["created", "updated"]]:
            new = isinstance(b, dict) and b.get("new") is True
            return self._parse(Contact, b, call, "contact"), "created" if new else "updated"
        return self._write(call, parse, lookup)

    def get_contact(self, contact_id: str) -> Contact:
        call = _Call("GET", "/contacts/{contactId}", {"contactId": contact_id})
        return self._parse(Contact, self._request(call), call, "contact")

    def update_contact(self, contact_id: str, contact: ContactUpdate, *,
                       stable_key: str | None = None) -> Contact:
        """PUT /contacts/{contactId}; ``tags`` and each sent custom field overwrite."""
        call = _Call("PUT", "/contacts/{contactId}", {"contactId": contact_id},
                     json=self._body(contact), stable_key=stable_key)
        return self._parse(Contact, self._request(call), call, "contact")

    def delete_contact(self, contact_id: str) -> None:
        self._request(_Call("DELETE", "/contacts/{contactId}", {"contactId": contact_id}))

    def search_contacts(self, search: ContactSearch) -> ContactSearchPage:
        """POST /contacts/search: one page (``pageLimit`` ≤ 500)."""
        call = _Call("POST", "/contacts/search", json=self._body(search))
        return self._parse(ContactSearchPage, self._request(call), call)

    def search_contacts_all(self, filters: Sequence[SearchFilter | FilterGroup] | None = None, *,
                            page_limit: int = 500, query: str | None = None,
                            max_pages: int | None = None) -> Iterator[Contact]:
        """Every matching contact, following ``searchAfter`` page by page (one request per page)."""
        first = ContactSearch(pageLimit=page_limit, filters=list(filters) if filters else None, query=query)

        def fetch(after: list[Any] | None) -> ContactSearchPage:
            return self.search_contacts(first.model_copy(update={"searchAfter": after}))
        return iter_search_after(fetch, lambda p: p.contacts, lambda c: c.searchAfter, page_limit, max_pages)

    def find_contact_by_custom_field(self, field_id: str, value: Any) -> Contact | None:
        """The contact whose custom field ``field_id`` equals ``value`` (e.g. Source_System_ID), or None."""
        search = ContactSearch(pageLimit=10, filters=[
            SearchFilter(field=f"customFields.{field_id}", operator="eq", value=value)])
        hits = [c for c in self.search_contacts(search).contacts
                if not c.customFields or str(c.custom_value(field_id)) == str(value)]
        if len(hits) > 1:
            log.warning("highlevel lookup: %d contacts share one value of custom field %s; using %s",
                        len(hits), field_id, hits[0].id)
        return hits[0] if hits else None

    def contact_lookup(self, field_id: str, value: Any) -> Lookup[Contact]:
        """A ``lookup`` for create/upsert: finds the contact by a unique custom field's value."""
        return functools.partial(self.find_contact_by_custom_field, field_id, value)

    def add_contact_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """POST /contacts/{contactId}/tags (adds; idempotent)."""
        call = _Call("POST", "/contacts/{contactId}/tags", {"contactId": contact_id},
                     json={"tags": list(tags)})
        body = self._request(call)
        return list(body.get("tags", [])) if isinstance(body, dict) else []

    def remove_contact_tags(self, contact_id: str, tags: Sequence[str]) -> None:
        """DELETE /contacts/{contactId}/tags with a JSON body."""
        self._request(_Call("DELETE", "/contacts/{contactId}/tags", {"contactId": contact_id},
                            json={"tags": list(tags)}))

    def create_note(self, contact_id: str, note: NoteCreate, *, stable_key: str | None = None,
                    lookup: Lookup[Note] | None = None) -> Written[Note]:
        call = _Call("POST", "/contacts/{contactId}/notes", {"contactId": contact_id}, json=self._body(note),
                     stable_key=stable_key)
        return self._write(call, lambda b: (self._parse(Note, b, call, "note"), "created"), lookup)

    def list_notes(self, contact_id: str) -> list[Note]:
        call = _Call("GET", "/contacts/{contactId}/notes", {"contactId": contact_id})
        return self._parse_list(Note, self._request(call), call, "notes")

    def delete_note(self, contact_id: str, note_id: str) -> None:
        self._request(_Call("DELETE", "/contacts/{contactId}/notes/{id}",
                            {"contactId": contact_id, "id": note_id}))

    def note_lookup(self, contact_id: str, body: str) -> Lookup[Note]:
        """A ``lookup`` for create_note: the contact's note with exactly this body."""
        return lambda: next((n for n in self.list_notes(contact_id) if n.body == body), None)

    def create_task(self, contact_id: str, task: TaskCreate, *, stable_key: str | None = None,
                    lookup: Lookup[Task] | None = None) -> Written[Task]:
        call = _Call("POST", "/contacts/{contactId}/tasks", {"contactId": contact_id}, json=self._body(task),
                     stable_key=stable_key)
        return self._write(call, lambda b: (self._parse(Task, b, call, "task"), "created"), lookup)

    # ---- locations: custom fields, tags -------------------------------------------------------------

    # ---- custom fields v2 (custom objects) ----------------------------------------------------------

    # ---- custom objects and records -----------------------------------------------------------------

    def create_record(self, schema_key: str, record: RecordCreate, *, stable_key: str | None = None,
                      lookup: Lookup[Record] | None = None) -> Written[Record]:
        call = _Call("POST", "/objects/{schemaKey}/records", {"schemaKey": schema_key},
                     json=self._body(record), stable_key=stable_key)
        return self._write(call, lambda b: (self._parse(Record, b, call, "record"), "created"), lookup)

    def get_record(self, schema_key: str, record_id: str) -> Record:
        call = _Call("GET", "/objects/{schemaKey}/records/{id}", {"schemaKey": schema_key, "id": record_id},
                     params={"locationId": self.location_id})
        return self._parse(Record, self._request(call), call, "record")

    def update_record(self, schema_key: str, record_id: str, record: RecordUpdate, *,
                      stable_key: str | None = None) -> Record:
        call = _Call("PUT", "/objects/{schemaKey}/records/{id}", {"schemaKey": schema_key, "id": record_id},
                     params={"locationId": self.location_id}, json=self._body(record), stable_key=stable_key)
        return self._parse(Record, self._request(call), call, "record")

    def delete_record(self, schema_key: str, record_id: str) -> None:
        self._request(_Call("DELETE", "/objects/{schemaKey}/records/{id}",
                            {"schemaKey": schema_key, "id": record_id},
                            params={"locationId": self.location_id}))

    def search_records(self, schema_key: str, search: RecordSearch) -> RecordSearchPage:
        call = _Call("POST", "/objects/{schemaKey}/records/search", {"schemaKey": schema_key},
                     json=self._body(search))
        return self._parse(RecordSearchPage, self._request(call), call)

    def search_records_all(self, schema_key: str, query: str | None = None, *, page_limit: int = 500,
                           max_pages: int | None = None) -> Iterator[Record]:
        first = RecordSearch(pageLimit=page_limit, query=query)

        def fetch(after: list[Any] | None) -> RecordSearchPage:
            return self.search_records(schema_key, first.model_copy(update={"searchAfter": after}))
        return iter_search_after(fetch, lambda p: p.records, lambda r: r.searchAfter, page_limit, max_pages)

    def find_record(self, schema_key: str, property_key: str, value: Any) -> Record | None:
        """The record whose (searchable) property equals ``value``, or None."""
        page = self.search_records(schema_key, RecordSearch(pageLimit=10, query=f"{property_key}:{value}"))
        return next((r for r in page.records if str(r.properties.get(property_key)) == str(value)), None)

    def record_lookup(self, schema_key: str, property_key: str, value: Any) -> Lookup[Record]:
        return functools.partial(self.find_record, schema_key, property_key, value)

    # ---- associations -------------------------------------------------------------------------------

    def create_relation(self, relation: RelationCreate, *, stable_key: str | None = None,
                        lookup: Lookup[Relation] | None = None) -> Written[Relation]:
        call = _Call("POST", "/associations/relations", json=self._body(relation), stable_key=stable_key)

        def parse(b: Any) -> tuple[Relation, Literal["created"]]:
            inner = b.get("relation", b) if isinstance(b, dict) else b
            return self._parse(Relation, inner, call), "created"
        return self._write(call, parse, lookup)

    # ---- opportunities ------------------------------------------------------------------------------
    def list_relations(self, record_id: str, *, skip: int = 0, limit: int = 100) -> list[Relation]:
        """GET /associations/relations/{recordId}: one page of the record's relations (every association)."""
        call = _Call("GET", "/associations/relations/{recordId}", {"recordId": record_id},
                     params={"locationId": self.location_id, "skip": str(skip), "limit": str(limit)})
        return self._parse_list(Relation, self._request(call), call, "relations")

    def list_relations_all(self, record_id: str, *, limit: int = 100) -> list[Relation]:
        """Every relation of a record, page by page (one request per ``limit`` relations)."""
        out: list[Relation] = []
        while True:
            page = self.list_relations(record_id, skip=len(out), limit=limit)
            out += page
            if len(page) < limit:
                return out

    def list_pipelines(self) -> list[Pipeline]:
        call = _Call("GET", "/opportunities/pipelines", params={"locationId": self.location_id})
        return self._parse_list(Pipeline, self._request(call), call, "pipelines")

    def create_opportunity(self, opportunity: OpportunityCreate, *, stable_key: str | None = None,
                           lookup: Lookup[Opportunity] | None = None) -> Written[Opportunity]:
        call = _Call("POST", "/opportunities/", json=self._body(opportunity), stable_key=stable_key)
        return self._write(call, lambda b: (self._parse(Opportunity, b, call, "opportunity"), "created"),
                           lookup)

    def update_opportunity(self, opportunity_id: str, opportunity: OpportunityUpdate, *,
                           stable_key: str | None = None) -> Opportunity:
        call = _Call("PUT", "/opportunities/{id}", {"id": opportunity_id}, json=self._body(opportunity),
                     stable_key=stable_key)
        return self._parse(Opportunity, self._request(call), call, "opportunity")

    def get_opportunity(self, opportunity_id: str) -> Opportunity:
        call = _Call("GET", "/opportunities/{id}", {"id": opportunity_id})
        return self._parse(Opportunity, self._request(call), call, "opportunity")

    def delete_opportunity(self, opportunity_id: str) -> None:
        self._request(_Call("DELETE", "/opportunities/{id}", {"id": opportunity_id}))

    def search_opportunities(self, *, contact_id: str | None = None, pipeline_id: str | None = None,
                             pipeline_stage_id: str | None = None, status: str | None = None,
                             q: str | None = None, limit: int = 100, page: int | None = None
                             ) -> OpportunitySearchPage:
        """GET /opportunities/search (snake_case query parameters)."""
        params = {"location_id": self.location_id, "contact_id": contact_id, "pipeline_id": pipeline_id,
                  "pipeline_stage_id": pipeline_stage_id, "status": status, "q": q, "limit": limit,
                  "page": page}
        call = _Call("GET", "/opportunities/search",
                     params={k: v for k, v in params.items() if v is not None})
        return self._parse(OpportunitySearchPage, self._request(call), call)

    def search_opportunities_all(self, *, limit: int = 100, **filters: Any) -> Iterator[Opportunity]:
        """Every matching opportunity of the location, page by page (``limit`` ≤ 100; one request per
        page), following ``meta.startAfter``/``startAfterId``."""
        params = {"location_id": self.location_id, "limit": limit,
                  **{k: v for k, v in filters.items() if v is not None}}
        after: dict[str, Any] = {}
        while True:
            call = _Call("GET", "/opportunities/search", params={**params, **after})
            page = self._parse(OpportunitySearchPage, self._request(call), call)
            yield from page.opportunities
            nxt = {"startAfterId": page.meta.get("startAfterId"), "startAfter": page.meta.get("startAfter")}
            if len(page.opportunities) < limit or not nxt["startAfterId"] or nxt == after:
                return
            after = nxt

    def find_opportunity(self, contact_id: str, pipeline_id: str, name: str | None = None
                         ) -> Opportunity | None:
        page = self.search_opportunities(contact_id=contact_id, pipeline_id=pipeline_id)
        return next((o for o in page.opportunities if name is None or o.name == name), None)

    def opportunity_lookup(self, contact_id: str, pipeline_id: str, name: str | None = None
                           ) -> Lookup[Opportunity]:
        return functools.partial(self.find_opportunity, contact_id, pipeline_id, name)

    # ---- calendars (Version 2021-04-15) -------------------------------------------------------------
    def list_calendars(self) -> list[Calendar]:
        call = _Call("GET", "/calendars/", params={"locationId": self.location_id})
        return self._parse_list(Calendar, self._request(call), call, "calendars")

    def create_appointment(self, appointment: AppointmentCreate, *, stable_key: str | None = None,
                           lookup: Lookup[Appointment] | None = None) -> Written[Appointment]:
        """POST /calendars/events/appointments (200, the event unwrapped)."""
        call = _Call("POST", "/calendars/events/appointments", json=self._body(appointment),
                     stable_key=stable_key)
        return self._write(call, lambda b: (self._parse(Appointment, b, call), "created"), lookup)

    def get_appointment(self, event_id: str) -> Appointment:
        call = _Call("GET", "/calendars/events/appointments/{eventId}", {"eventId": event_id})
        return self._parse(Appointment, self._request(call), call, "event")

    def delete_event(self, event_id: str) -> None:
        """DELETE /calendars/events/{eventId} (the spec requires a body: ``{}``; answers 201)."""
        self._request(_Call("DELETE", "/calendars/events/{eventId}", {"eventId": event_id}, json={}))

    def list_calendar_events(self, calendar_id: str, start_ms: int, end_ms: int) -> list[Appointment]:
        """GET /calendars/events: the calendar's events starting in [start_ms, end_ms] (epoch millis)."""
        call = _Call("GET", "/calendars/events", params={"locationId": self.location_id,
                                                         "calendarId": calendar_id,
                                                        "startTime": str(start_ms), "endTime": str(end_ms)})
        return self._parse_list(Appointment, self._request(call), call, "events")

    def list_contact_appointments(self, contact_id: str) -> list[Appointment]:
        call = _Call("GET", "/contacts/{contactId}/appointments", {"contactId": contact_id})
        return self._parse_list(Appointment, self._request(call), call, "events")

    def appointment_lookup(self, contact_id: str, calendar_id: str, start_time: str) -> Lookup[Appointment]:
        """A ``lookup`` for create_appointment: the contact's event on that calendar at that instant."""
        want = _instant(start_time)
        return lambda: next((a for a in self.list_contact_appointments(contact_id)
                             if a.calendarId == calendar_id and a.startTime
                             and _instant(a.startTime) == want), None)

    # ---- users, workflows, media --------------------------------------------------------------------
    def list_users(self) -> list[User]:
        call = _Call("GET", "/users/", params={"locationId": self.location_id})
        return self._parse_list(User, self._request(call), call, "users")

    def search_users(self, company_id: str, query: str | None = None, *, skip: int = 0,
                     limit: int = 100) -> list[User]:
        """GET /users/search (``companyId`` from ``get_location().companyId``)."""
        params = {"companyId": company_id, "locationId": self.location_id, "skip": str(skip),
                  "limit": str(limit)} | ({"query": query} if query else {})
        call = _Call("GET", "/users/search", params=params)
        return self._parse_list(User, self._request(call), call, "users")

    def list_workflows(self) -> list[Workflow]:
        call = _Call("GET", "/workflows/", params={"locationId": self.location_id})
        return self._parse_list(Workflow, self._request(call), call, "workflows")

    def upload_media(self, content: bytes | Path, *, filename: str,
                     content_type: str = "application/octet-stream",
                     name: str | None = None, parent_id: str | None = None, stable_key: str | None = None,
                     lookup: Lookup[MediaFile] | None = None) -> Written[MediaFile]:
        """POST /medias/upload-file (multipart). Over 25 MB: ``PayloadTooLargeError``, nothing sent."""
        size = content.stat().st_size if isinstance(content, Path) else len(content)
        if size > MAX_UPLOAD_BYTES:
            raise PayloadTooLargeError(
                f"the file is {size / 2**20:.1f} MB; HighLevel accepts at most 25 MB per upload "
                "(split or compress it, or store it elsewhere and link it)", stable_key=stable_key)
        data = content.read_bytes() if isinstance(content, Path) else content
        form = {k: v for k, v in {"name": name, "parentId": parent_id}.items() if v is not None}
        call = _Call("POST", "/medias/upload-file", files={"file": (filename, data, content_type)},
                     data=form or None, stable_key=stable_key)
        return self._write(call, lambda b: (self._parse(MediaFile, b, call), "created"), lookup)

    def list_media(self, query: str | None = None, *, offset: int = 0, limit: int = 100) -> list[MediaItem]:
        """GET /medias/files of the location (``query`` matches names)."""
        params = {"sortBy": "createdAt", "sortOrder": "asc", "type": "file", "altType": "location",
                  "altId": self.location_id, "offset": str(offset), "limit": str(limit)}
        call = _Call("GET", "/medias/files", params=params | ({"query": query} if query else {}))
        return self._parse_list(MediaItem, self._request(call), call, "files")

    def media_lookup(self, name: str) -> Lookup[MediaFile]:
        """A ``lookup`` for upload_media: the library's file with exactly this name."""
        def find() -> MediaFile | None:
            item = next((f for f in self.list_media(name) if f.name == name), None)
            return None if item is None else MediaFile(fileId=item.id, url=item.url)
        return find

    def delete_media(self, file_id: str) -> None:
        self._request(_Call("DELETE", "/medias/{id}", {"id": file_id},
                            params={"altType": "location", "altId": self.location_id}))


def _instant(value: str) -> dt.datetime | str:
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
