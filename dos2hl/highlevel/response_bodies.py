"""HighLevel response bodies (extra fields kept: HighLevel adds them freely)."""

from __future__ import annotations

from typing import Any

from ._bodies import Response

__all__ = ["CustomFieldValue", "Contact", "ContactSearchPage", "Note", "Task", "Location",
           "LocationCustomField", "Tag", "CustomFieldFolder", "ObjectField", "ObjectFields", "ObjectSchema",
           "Record", "RecordSearchPage", "Association", "Relation", "Pipeline", "Opportunity",
           "OpportunitySearchPage", "Calendar", "Appointment", "User", "MediaFile", "MediaItem", "Workflow"]


class CustomFieldValue(Response):
    """A custom-field value as read back: ``{id, value}`` (opportunities: ``fieldValue``)."""

    id: str
    value: Any = None
    fieldValue: Any = None


class Contact(Response):
    id: str
    locationId: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    phone: str | None = None
    tags: list[str] = []
    customFields: list[CustomFieldValue] = []
    dateAdded: str | None = None
    searchAfter: list[Any] | None = None

    def custom_value(self, field_id: str) -> Any:
        """The value of custom field ``field_id``, or None."""
        return next((f.value if f.value is not None else f.fieldValue
                     for f in self.customFields if f.id == field_id), None)


class ContactSearchPage(Response):
    contacts: list[Contact] = []
    total: int | None = None


class Note(Response):
    id: str
    body: str | None = None
    dateAdded: str | None = None


class Task(Response):
    id: str
    title: str | None = None
    dueDate: str | None = None
    completed: bool | None = None


class Location(Response):
    id: str
    companyId: str | None = None
    name: str | None = None
    timezone: str | None = None


class LocationCustomField(Response):
    id: str
    name: str | None = None
    fieldKey: str | None = None
    dataType: str | None = None
    model: str | None = None
    picklistOptions: list[Any] | None = None


class Tag(Response):
    id: str
    name: str


class CustomFieldFolder(Response):
    id: str
    name: str | None = None
    objectKey: str | None = None


class ObjectField(Response):
    id: str
    fieldKey: str | None = None
    name: str | None = None
    dataType: str | None = None
    parentId: str | None = None


class ObjectFields(Response):
    fields: list[ObjectField] = []
    folders: list[CustomFieldFolder] = []


class ObjectSchema(Response):
    id: str
    key: str
    labels: dict[str, Any] | None = None
    searchableProperties: list[str] | None = None


class Record(Response):
    id: str
    properties: dict[str, Any] = {}
    searchAfter: list[Any] | None = None


class RecordSearchPage(Response):
    records: list[Record] = []
    total: int | None = None


class Association(Response):
    id: str
    key: str | None = None
    firstObjectKey: Any = None
    secondObjectKey: Any = None


class Relation(Response):
    id: str
    associationId: str | None = None
    firstRecordId: str | None = None
    secondRecordId: str | None = None


class Pipeline(Response):
    id: str
    name: str | None = None
    stages: list[Any] = []


class Opportunity(Response):
    id: str
    name: str | None = None
    pipelineId: str | None = None
    pipelineStageId: str | None = None
    contactId: str | None = None
    status: str | None = None
    customFields: list[CustomFieldValue] = []


class OpportunitySearchPage(Response):
    opportunities: list[Opportunity] = []
    meta: dict[str, Any] = {}


class Calendar(Response):
    id: str
    name: str | None = None
    teamMembers: list[Any] = []


class Appointment(Response):
    id: str
    calendarId: str | None = None
    contactId: str | None = None
    startTime: str | None = None
    appointmentStatus: str | None = None


class User(Response):
    id: str
    name: str | None = None
    email: str | None = None
    roles: dict[str, Any] | None = None


class MediaFile(Response):
    fileId: str
    url: str | None = None

    @property
    def id(self) -> str:  # the writer treats every written thing alike
        return self.fileId


class MediaItem(Response):
    """A file of the media library as listed (GET /medias/files)."""

    id: str
    name: str | None = None
    url: str | None = None


class Workflow(Response):
    id: str
    name: str | None = None
    status: str | None = None
