"""HighLevel request bodies (unknown fields are an error, so a typo fails before a permit is spent)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ._bodies import DataType, Request

__all__ = ["CustomFieldInput", "ContactCreate", "ContactUpsert", "ContactUpdate", "SearchFilter",
           "FilterGroup", "SearchSort", "ContactSearch", "NoteCreate", "TaskCreate", "TextBoxListOption",
           "LocationCustomFieldCreate", "CustomFieldFolderCreate", "FieldOption", "ObjectFieldCreate",
           "ObjectLabels", "PrimaryDisplayProperty", "ObjectSchemaCreate", "ObjectSchemaUpdate",
           "RecordCreate", "RecordUpdate", "RecordSearch", "AssociationCreate", "RelationCreate",
           "OpportunityCreate", "OpportunityUpdate", "AppointmentCreate"]


class CustomFieldInput(Request):
    """One custom-field value on write: ``id`` (or ``key``, e.g. ``contact.source_system_id``) + value."""

    id: str | None = None
    key: str | None = None
    field_value: Any = None

    @model_validator(mode="after")
    def _id_or_key(self) -> CustomFieldInput:
        if not (self.id or self.key):
            raise ValueError("a custom field value needs its id or its key")
        return self


class _ContactFields(Request):
    firstName: str | None = None
    lastName: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postalCode: str | None = None
    country: str | None = None
    website: str | None = None
    timezone: str | None = None
    dnd: bool | None = None
    dndSettings: dict[str, Any] | None = None
    inboundDndSettings: dict[str, Any] | None = None
    tags: list[str] | None = None  # overwrites all tags on upsert/update
    customFields: list[CustomFieldInput] | None = None
    source: str | None = None
    dateOfBirth: str | None = None  # YYYY-MM-DD (the spec's "object" type is a defect)
    assignedTo: str | None = None  # user id


class ContactCreate(_ContactFields):
    locationId: str | None = None
    gender: str | None = None
    companyName: str | None = None


class ContactUpsert(ContactCreate):
    createNewIfDuplicateAllowed: bool | None = None


class ContactUpdate(_ContactFields):
    pass


class SearchFilter(Request):
    """``{field, operator, value}``; a custom field is ``customFields.<customFieldId>``."""

    field: str
    operator: Literal["eq", "not_eq", "contains", "not_contains", "exists", "not_exists", "range"]
    value: Any = None


class FilterGroup(Request):
    group: Literal["AND", "OR"]
    filters: list[SearchFilter | FilterGroup]


class SearchSort(Request):
    field: str
    direction: Literal["asc", "desc"]


class ContactSearch(Request):
    """POST /contacts/search. Page with ``searchAfter`` (the last contact's), never with ``page`` too."""

    locationId: str | None = None
    pageLimit: int = Field(100, ge=1, le=500)
    page: int | None = Field(None, ge=1)
    searchAfter: list[Any] | None = None
    filters: list[SearchFilter | FilterGroup] | None = None
    sort: list[SearchSort] | None = None
    query: str | None = Field(None, max_length=75)

    @model_validator(mode="after")
    def _one_paging_mode(self) -> ContactSearch:
        if self.page is not None and self.searchAfter is not None:
            raise ValueError("send page or searchAfter, not both")
        return self


class NoteCreate(Request):
    body: str
    userId: str | None = None
    title: str | None = None
    color: str | None = None
    pinned: bool | None = None


class TaskCreate(Request):
    title: str
    dueDate: str  # ISO 8601
    completed: bool
    body: str | None = None
    assignedTo: str | None = None


class TextBoxListOption(Request):
    label: str
    prefillValue: str | None = None


class LocationCustomFieldCreate(Request):
    """POST /locations/{locationId}/customFields (contact and opportunity fields)."""

    name: str
    dataType: DataType
    placeholder: str | None = None
    acceptedFormat: list[str] | None = None
    isMultipleFile: bool | None = None
    maxNumberOfFiles: int | None = None
    textBoxListOptions: list[TextBoxListOption] | None = None
    position: int | None = None
    model: Literal["contact", "opportunity"] | None = None
    options: list[str] | None = None  # picklist options (undocumented; read back as picklistOptions)


class CustomFieldFolderCreate(Request):
    objectKey: str
    name: str
    locationId: str | None = None


class FieldOption(Request):
    key: str
    label: str
    url: str | None = None


class ObjectFieldCreate(Request):
    """POST /custom-fields/ (custom-object fields). ``parentId`` is the folder id."""

    fieldKey: str  # custom_objects.<object>.<field>
    objectKey: str
    parentId: str
    dataType: DataType
    showInForms: bool = True
    locationId: str | None = None
    name: str | None = None
    description: str | None = None
    placeholder: str | None = None
    options: list[FieldOption] | None = None
    acceptedFormats: str | None = None
    maxFileLimit: int | None = None
    allowCustomOption: bool | None = None


class ObjectLabels(Request):
    singular: str
    plural: str


class PrimaryDisplayProperty(Request):
    key: str
    name: str
    dataType: Literal["TEXT", "NUMERICAL"]


class ObjectSchemaCreate(Request):
    key: str  # custom_objects.<name>
    labels: ObjectLabels
    primaryDisplayPropertyDetails: PrimaryDisplayProperty
    description: str | None = None
    locationId: str | None = None


class ObjectSchemaUpdate(Request):
    """PUT /objects/{key}: which properties record search looks at (and labels, description)."""

    searchableProperties: list[str]  # full field keys, custom_objects.<object>.<field>
    locationId: str | None = None
    labels: ObjectLabels | None = None
    description: str | None = None


class RecordCreate(Request):
    properties: dict[str, Any]  # short field key -> value
    locationId: str | None = None
    owner: list[str] | None = Field(None, max_length=1)
    followers: list[str] | None = Field(None, max_length=10)


class RecordUpdate(Request):
    properties: dict[str, Any] | None = None
    owner: list[str] | None = Field(None, max_length=1)
    followers: list[str] | None = Field(None, max_length=10)


class RecordSearch(Request):
    locationId: str | None = None
    pageLimit: int = Field(100, ge=1, le=500)
    page: int | None = None
    query: str | None = None  # "<searchable property>:<value>"
    searchAfter: list[Any] | None = None


class AssociationCreate(Request):
    key: str
    firstObjectKey: str
    firstObjectLabel: str
    secondObjectKey: str
    secondObjectLabel: str
    locationId: str | None = None


class RelationCreate(Request):
    """Record order follows the association's first/second object keys."""

    associationId: str
    firstRecordId: str
    secondRecordId: str
    locationId: str | None = None


OpportunityStatus = Literal["open", "won", "lost", "abandoned"]


class OpportunityCreate(Request):
    pipelineId: str
    name: str
    status: OpportunityStatus
    contactId: str
    locationId: str | None = None
    pipelineStageId: str | None = None
    monetaryValue: float | None = None
    assignedTo: str | None = None
    customFields: list[CustomFieldInput] | None = None


class OpportunityUpdate(Request):
    pipelineId: str | None = None
    name: str | None = None
    pipelineStageId: str | None = None
    status: OpportunityStatus | None = None
    monetaryValue: float | None = None
    assignedTo: str | None = None
    customFields: list[CustomFieldInput] | None = None


class AppointmentCreate(Request):
    """POST /calendars/events/appointments. Historical import: ignore* True, toNotify False."""

    calendarId: str
    contactId: str
    startTime: str  # ISO 8601 with offset
    locationId: str | None = None
    endTime: str | None = None
    title: str | None = None
    appointmentStatus: Literal["new", "confirmed", "cancelled", "showed", "noshow", "invalid"] | None = None
    assignedUserId: str | None = None
    address: str | None = None
    description: str | None = None
    meetingLocationType: Literal["custom", "zoom", "gmeet", "phone", "address", "ms_teams",
                                 "google"] | None = None
    meetingLocationId: str | None = None
    overrideLocationConfig: bool | None = None
    ignoreDateRange: bool | None = None
    ignoreFreeSlotValidation: bool | None = None
    toNotify: bool | None = None
    rrule: str | None = None


