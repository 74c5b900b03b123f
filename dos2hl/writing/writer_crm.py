"""The writer's CRM half: opportunities and their calendar events, notes, files and the notes linking them.

Mixed into ``write.ShardWriter`` (same ledger, ID map, result counters). Each kind is idempotent the
way the API allows (NOTES.md §2.7-2.10): an opportunity is looked up by contact + pipeline + name,
an event by contact + calendar + start, a note by contact + exact body, a file by its id-only name in
the media library; keys already in the ID map are never written again. Children wait for parents:
nothing is written for a contact that was not, and an event waits for its opportunity.

What HighLevel already holds under our keys is adopted, not written again (``existing.py``):
opportunities by contact + pipeline + the id in their name (from the run's inventory), files by name,
and an adopted contact's events and notes by reading that contact's once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import HighLevelError
from ..highlevel import Lookup, Written
from ..highlevel.models import AppointmentCreate, CustomFieldInput, NoteCreate, OpportunityCreate
from ..highlevel.protocols import Client
from ..planning.crm import CrmPlan, FilePayload, NotePayload, OpportunityPayload, link_note_body
from ..planning.keys import payload_hash
from ..sources.docfiles import RefusedDocument, read_document
from ..storage import Store
from .existing import Inventory, event_key, note_key, opportunity_fields
from .ledger import IdMap
from .updates import opportunity_text, update_in_place

__all__ = ["CrmWriter"]


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


H = TypeVar("H", bound=_HasId)  # what a create returns: an opportunity, event, note or media file


class CrmWriter:
    """Methods of ``ShardWriter`` for crm.py's payloads (``self`` is the ShardWriter)."""

    client: Client
    schema: Any
    ids: IdMap
    uncertain: set[str]
    result: Any
    inventory: Inventory
    open_sealed: Any

    if TYPE_CHECKING:  # ShardWriter's (writer.py), which this half calls
        def _op(self, obj: str, key: str, source_id: str, hl_id: str | None, op: str, outcome: str,
                **kw: Any) -> None: ...

        def _fail(self, obj: str, key: str, source_id: str, exc: Exception, payload: Any,
                  parent: str | None = None
                  ) -> None: ...

        def adopt(self, obj: str, key: str, source_id: str, found: dict[str, Any],
                  expected: dict[str, Any] | None,
                  update: Any = None, *, parent: str | None = None, detail: str | None = None) -> str: ...

        def children(self, kind: str, contact_id: str) -> dict[str, str]: ...

    def write_crm(self, plan: CrmPlan, source: Store | None = None) -> None:
        for o in plan.opportunities:
            self._opportunity(o)
        for n in plan.notes:
            self._note(n.object, n.stable_key, n.source_id, n.parent_key, n.body)
        for f in plan.files:
            self._file(f, source)

    def _parent(self, obj: str, key: str, source_id: str, parent_key: str, rows: int = 1) -> str | None:
        contact_id = self.ids.get(parent_key)
        if contact_id is None:
            self._op(obj, key, source_id, None, "create", "held", parent=parent_key,
                     error="the patient's contact was not written")
            self.result.held[obj] += rows
        return contact_id

    def _done(self, obj: str, key: str, source_id: str, hl_id: str, outcome: str, payload: Any,
              parent: str | None, detail: str | None = None) -> None:
        self._op(obj, key, source_id, hl_id, "create" if outcome != "verified-existing" else "lookup",
                 outcome, payload_hash=payload_hash(payload), parent=parent, detail=detail)
        self.ids.apply({"stable_key": key, "op": "create", "outcome": outcome, "hl_id": hl_id,
                        "detail": detail})
        self.result.created[obj] += outcome == "created"

    def _write(self, obj: str, key: str, source_id: str, parent: str | None, payload: Any,
               create: Callable[[Lookup[H]], Written[H]], lookup: Lookup[H], rows: int = 1,
               detail: Callable[[H], str | None] | None = None) -> str | None:
        """create (or find an earlier unrecorded attempt), ledger it; the new id, or None when it failed."""
        if key in self.uncertain:
            found = lookup()
            if found is not None:
                self._done(obj, key, source_id, found.id, "verified-existing", payload, parent,
                           detail(found) if detail else None)
                return found.id
        try:
            w = create(lookup)
        except HighLevelError as exc:
            self._fail(obj, key, source_id, exc, payload, parent=parent)
            if rows > 1:
                self.result.failed[obj] += rows - 1
            return None
        self._done(obj, key, source_id, w.value.id, w.outcome, payload, parent,
                   detail(w.value) if detail else None)
        return w.value.id

    # ---- opportunities and calendar events ----------------------------------------------------------------
    def _opportunity(self, o: OpportunityPayload) -> None:
        contact_id = self._parent(o.object, o.stable_key, o.source_id, o.parent_key, o.rows)
        if contact_id is None:
            return
        opp_id = self.ids.get(o.stable_key)
        if opp_id is None:
            pipeline_id, stage_id = self.schema.pipeline(o.pipeline, o.stage)
            owner = self.schema.users.get(o.owner_provider or "") or self.schema.users.get("")
            custom = [CustomFieldInput(id=self.schema.field_id(k), field_value=opportunity_text(v))
                      for k, v in o.custom.items()]
            body = OpportunityCreate(pipelineId=pipeline_id, name=o.name, status=o.status,
                                     contactId=contact_id, pipelineStageId=stage_id, monetaryValue=o.monetary,
                                     assignedTo=owner, customFields=custom or None)
            found = self.inventory.opportunities.get(
                Inventory.opportunity_key(contact_id, pipeline_id, o.name)
            )
            if found is not None:
                expected = opportunity_fields({"name": o.name, "status": o.status,
                                               "pipelineStageId": stage_id,
                                               "monetaryValue": o.monetary, "assignedTo": owner},
                                              {k: opportunity_text(v) for k, v in o.custom.items()},
                                              open_sealed=self.open_sealed, record=o.stable_key)
                opp_id = self.adopt(
                    o.object,
                    o.stable_key,
                    o.source_id,
                    found,
                    expected,
                    lambda hl_id, keep: update_in_place(
                        self.client, self.schema, o.object, hl_id, o, keep=keep
                    ),
                    parent=o.parent_key,
                )
        if opp_id is None:
            lookup = self.client.opportunity_lookup(contact_id, pipeline_id, o.name)
            opp_id = self._write(
                o.object,
                o.stable_key,
                o.source_id,
                o.parent_key,
                {**vars(o), "event": None},
                lambda lk: self.client.create_opportunity(body, stable_key=o.stable_key, lookup=lk),
                lookup,
                o.rows,
            )
            if opp_id is None:
                if o.event is not None:  # its event waits for it
                    self._op("appointment_event", o.event.stable_key, o.source_id, None, "create", "held",
                             parent=o.stable_key, error="the appointment's opportunity was not written")
                return
        if o.event_problem:
            self.result.notices[o.event_problem] += 1
        if o.event is not None and self.ids.get(o.event.stable_key) is None:
            if not self._event(o, contact_id):
                self.result.failed[o.object] += 1
                return
        self.result.written[o.object] += o.rows

    def _event(self, o: OpportunityPayload, contact_id: str) -> bool:
        e = o.event
        assert e is not None
        if not self.schema.calendar_id:
            from ..errors import ConfigError

            raise ConfigError(f"location {self.schema.location_id} has no calendar for appointments: create "
                              f"one "
                              "(or name it as calendar: in locations.yaml)")
        owner = self.schema.users.get(o.owner_provider or "") or self.schema.users.get("")
        if owner not in self.schema.calendar_team:  # HighLevel refuses a user outside the calendar's team
            owner = None
            self.result.notices["calendar event not assigned: its provider is not on the calendar's "
                                "team"] += 1
        # a historical import: never the practice's slot rules, never a text or email to the patient
        body = AppointmentCreate(calendarId=self.schema.calendar_id, contactId=contact_id, startTime=e.start,
                                 endTime=e.end, title=e.title, appointmentStatus=e.status,
                                 assignedUserId=owner, ignoreDateRange=True, ignoreFreeSlotValidation=True,
                                 toNotify=False)
        if self.ids.adopted(o.parent_key):
            there = self.children("events", contact_id).get(event_key(self.schema.calendar_id, e.start))
            if there is not None:
                self.adopt("appointment_event", e.stable_key, o.source_id, {"id": there}, None,
                           parent=o.stable_key)
                return True
        lookup = self.client.appointment_lookup(contact_id, self.schema.calendar_id, e.start)
        got = self._write(
            "appointment_event",
            e.stable_key,
            o.source_id,
            o.stable_key,
            vars(e),
            lambda lk: self.client.create_appointment(body, stable_key=e.stable_key, lookup=lk),
            lookup,
        )
        return got is not None

    # ---- notes and files -----------------------------------------------------------------------------------
    def _note(self, obj: str, key: str, source_id: str, parent_key: str, body: str, *,
              count: bool = True) -> bool:
        contact_id = self._parent(obj, key, source_id, parent_key)
        if contact_id is None:
            return False
        there = self.children("notes", contact_id).get(note_key(body)) \
            if self.ids.get(key) is None and self.ids.adopted(parent_key) else None
        if there is not None:
            self.adopt(obj, key, source_id, {"id": there}, None, parent=parent_key, detail=contact_id)
        elif self.ids.get(key) is None:
            lookup = self.client.note_lookup(contact_id, body)
            got = self._write(obj, key, source_id, parent_key, {"body": body},
                              lambda lk: self.client.create_note(contact_id, NoteCreate(body=body),
                                                                 stable_key=key, lookup=lk), lookup,
                              detail=lambda _n: contact_id)  # a note is deleted through its contact
            if got is None:
                return False
        if count:
            self.result.written[obj] += 1
        return True

    def _file(self, f: FilePayload, source: Store | None) -> None:
        """Upload, then link it to the contact with a note; the upload's URL is kept in the ledger
        (``before``) so a resumed run links it without uploading again."""
        contact_id = self._parent(f.object, f.stable_key, f.source_id, f.parent_key)
        if contact_id is None:
            return
        url = self.ids.detail(f.stable_key) if self.ids.get(f.stable_key) else None
        # uploaded, its link not kept: find it before uploading again
        if url is None and self.ids.get(f.stable_key):
            found = self.client.media_lookup(f.name)()
            url = found.url if found is not None else None
        there = self.inventory.media.get(f.name) if url is None and not self.ids.get(f.stable_key) else None
        if there is not None:
            url = there.get("url") or ""
            self.adopt(f.object, f.stable_key, f.source_id, there, None, parent=f.parent_key, detail=url)
        if url is None:
            try:
                if f.data is not None:
                    data = f.data
                else:  # planned with its key only when the run has the export's store (plan.py)
                    assert f.key is not None and source is not None
                    data = read_document(source, f.key)
            except (OSError, KeyError, RefusedDocument) as exc:  # re-checked at read time: no link, no FIFO
                self._fail(f.object, f.stable_key, f.source_id, exc, {"name": f.name}, parent=f.parent_key)
                return
            lookup = self.client.media_lookup(f.name)
            got = self._write(
                f.object,
                f.stable_key,
                f.source_id,
                f.parent_key,
                {"name": f.name, "size": f.size},
                lambda lk: self.client.upload_media(
                    data,
                    filename=f.name,
                    content_type=f.mime,
                    name=f.name,
                    stable_key=f.stable_key,
                    lookup=lk,
                ),
                lookup,
                detail=lambda m: m.url,
            )
            if got is None:
                return
            url = self.ids.detail(f.stable_key)
        note = NotePayload("file_link", f.stable_key + "/link", f.source_id, f.parent_key,
                           link_note_body(f, url or ""))
        if self._note(note.object, note.stable_key, note.source_id, note.parent_key, note.body, count=False):
            self.result.written[f.object] += 1
        else:
            self.result.failed[f.object] += 1
