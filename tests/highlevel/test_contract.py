"""Every request the client builds validates against HighLevel's specs (plus our overlay).

Uses ``dos2hl.highlevel.contract`` (the sandbox's validators): openapi-core per spec file, and the
NestJS-style rejection of unknown properties the real API applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.highlevel import HighLevelClient
from dos2hl.highlevel.contract import validate_httpx_request
from dos2hl.highlevel.models import (
    AppointmentCreate,
    AssociationCreate,
    ContactCreate,
    ContactSearch,
    ContactUpdate,
    ContactUpsert,
    CustomFieldFolderCreate,
    CustomFieldInput,
    FilterGroup,
    LocationCustomFieldCreate,
    NoteCreate,
    ObjectFieldCreate,
    ObjectLabels,
    ObjectSchemaCreate,
    OpportunityCreate,
    OpportunityUpdate,
    PrimaryDisplayProperty,
    RecordCreate,
    RecordSearch,
    RecordUpdate,
    RelationCreate,
    SearchFilter,
    TaskCreate,
)

XRAY = "custom_objects.xray"
SRC = CustomFieldInput(id="fld-src", field_value="P-1")

OPERATIONS: dict[str, Callable[[HighLevelClient], Any]] = {
    "create-contact": lambda c: c.create_contact(ContactCreate(
        firstName="Ann", lastName="Lee", email="a@example.com", phone="+15555550100",
        dateOfBirth="1990-01-02",
        tags=["dos2hl"], customFields=[SRC, CustomFieldInput(key="contact.balance", field_value=12.5)])),
    "upsert-contact": lambda c: c.upsert_contact(ContactUpsert(firstName="Ann",
                                                               createNewIfDuplicateAllowed=True)),
    "get-contact": lambda c: c.get_contact("c1"),
    "update-contact": lambda c: c.update_contact("c1", ContactUpdate(lastName="Lee", customFields=[SRC])),
    "delete-contact": lambda c: c.delete_contact("c1"),
    "search-contacts": lambda c: c.search_contacts(ContactSearch(
        pageLimit=500, searchAfter=[1, "c1"], filters=[
        SearchFilter(field="customFields.fld-src", operator="eq", value="P-1"),
        FilterGroup(group="OR", filters=[SearchFilter(field="email", operator="exists")])])),
    "add-tags": lambda c: c.add_contact_tags("c1", ["a"]),
    "remove-tags": lambda c: c.remove_contact_tags("c1", ["a"]),
    "create-note": lambda c: c.create_note("c1", NoteCreate(body="Recall 2019-03-04")),
    "list-notes": lambda c: c.list_notes("c1"),
    "create-task": lambda c: c.create_task("c1", TaskCreate(title="Call", dueDate="2024-01-01T00:00:00Z",
                                                            completed=False)),
    "get-location": lambda c: c.get_location(),
    "list-custom-fields": lambda c: c.list_custom_fields("contact"),
    "create-custom-field": lambda c: c.create_custom_field(LocationCustomFieldCreate(
        name="Source System ID", dataType="TEXT", model="contact")),
    "create-picklist-field": lambda c: c.create_custom_field(LocationCustomFieldCreate(
        name="Insurance", dataType="SINGLE_OPTIONS", model="contact", options=["Delta", "Cigna"])),
    "list-location-tags": lambda c: c.list_location_tags(),
    "create-location-tag": lambda c: c.create_location_tag("dos2hl"),
    "create-field-folder": lambda c: c.create_field_folder(CustomFieldFolderCreate(objectKey=XRAY, name="X")),
    "create-object-field": lambda c: c.create_object_field(ObjectFieldCreate(
        fieldKey=f"{XRAY}.source_key", objectKey=XRAY, parentId="fold1", dataType="TEXT", name="Source key")),
    "list-object-fields": lambda c: c.list_object_fields(XRAY),
    "list-object-schemas": lambda c: c.list_object_schemas(),
    "create-object-schema": lambda c: c.create_object_schema(ObjectSchemaCreate(
        key=XRAY, labels=ObjectLabels(singular="X-ray", plural="X-rays"),
        primaryDisplayPropertyDetails=PrimaryDisplayProperty(key=f"{XRAY}.name", name="Name",
                                                             dataType="TEXT"))),
    "create-record": lambda c: c.create_record(XRAY, RecordCreate(properties={"name": "a", "size": 3},
                                                                  owner=["u1"])),
    "get-record": lambda c: c.get_record(XRAY, "r1"),
    "update-record": lambda c: c.update_record(XRAY, "r1", RecordUpdate(properties={"name": "b"})),
    "delete-record": lambda c: c.delete_record(XRAY, "r1"),
    "search-records": lambda c: c.search_records(XRAY, RecordSearch(pageLimit=10, query="source_key:k1")),
    "list-associations": lambda c: c.list_associations(),
    "create-association": lambda c: c.create_association(AssociationCreate(
        key="patient_xray", firstObjectKey="contact", firstObjectLabel="Patient", secondObjectKey=XRAY,
        secondObjectLabel="X-ray")),
    "create-relation": lambda c: c.create_relation(RelationCreate(associationId="a1", firstRecordId="c1",
                                                                  secondRecordId="r1")),
    "list-pipelines": lambda c: c.list_pipelines(),
    "create-opportunity": lambda c: c.create_opportunity(OpportunityCreate(
        pipelineId="p1", name="Recall", status="open", contactId="c1", monetaryValue=120.0,
        customFields=[CustomFieldInput(key="opportunity.src", field_value="x")])),
    "update-opportunity": lambda c: c.update_opportunity("o1", OpportunityUpdate(status="won")),
    "delete-opportunity": lambda c: c.delete_opportunity("o1"),
    "search-opportunities": lambda c: c.search_opportunities(contact_id="c1", pipeline_id="p1"),
    "list-calendars": lambda c: c.list_calendars(),
    "create-appointment": lambda c: c.create_appointment(AppointmentCreate(
        calendarId="cal1", contactId="c1", startTime="2019-03-04T10:00:00-05:00",
        endTime="2019-03-04T10:30:00-05:00", appointmentStatus="showed", ignoreDateRange=True,
        ignoreFreeSlotValidation=True, toNotify=False)),
    "get-appointment": lambda c: c.get_appointment("e1"),
    "delete-event": lambda c: c.delete_event("e1"),
    "list-contact-appointments": lambda c: c.list_contact_appointments("c1"),
    "list-users": lambda c: c.list_users(),
    "search-users": lambda c: c.search_users("co1", "dr@example.com"),
    "list-workflows": lambda c: c.list_workflows(),
    "upload-media": lambda c: c.upload_media(b"%PDF-1.4", filename="a.pdf", content_type="application/pdf",
                                             name="a"),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_request_validates_against_the_spec(name: str) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    with HighLevelClient("https://services.leadconnectorhq.com", SecretStr("t"), "loc1",
                         transport=httpx.MockTransport(handler)) as client:
        try:
            OPERATIONS[name](client)
        except Exception:  # noqa: BLE001 - the empty reply may not parse; only the request matters
            pass
    assert len(sent) == 1
    assert validate_httpx_request(sent[0]) == []
