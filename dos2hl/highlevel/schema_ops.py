"""The schema side of the HighLevel client: what provisioning reads and creates in a sub-account (its
custom fields and tags, custom-field folders, custom-object schemas and fields, associations).
``HighLevelClient`` adds the records (contacts, notes, custom-object records, relations, opportunities,
calendar events, media) on top of these."""

from __future__ import annotations

from typing import Any, Literal

from ._core import Lookup, Written, _Call, _Core
from .models import (
    Association,
    AssociationCreate,
    CustomFieldFolder,
    CustomFieldFolderCreate,
    Location,
    LocationCustomField,
    LocationCustomFieldCreate,
    ObjectField,
    ObjectFieldCreate,
    ObjectFields,
    ObjectSchema,
    ObjectSchemaCreate,
    ObjectSchemaUpdate,
    Request,
    Tag,
)

__all__ = ["SchemaOperations"]


class SchemaOperations(_Core):
    """Operations on a location's schema (provisioning's half of ``HighLevelClient``)."""

    def _body(self, model: Request, *, with_location: bool = True) -> dict[str, Any]:
        body = model.payload()
        if with_location and "locationId" in type(model).model_fields:
            body.setdefault("locationId", self.location_id)
        return body

    def get_location(self) -> Location:
        call = _Call("GET", "/locations/{locationId}", {"locationId": self.location_id})
        return self._parse(Location, self._request(call), call, "location")

    def list_custom_fields(self, model: Literal["contact", "opportunity", "all"] = "all"
                           ) -> list[LocationCustomField]:
        call = _Call("GET", "/locations/{locationId}/customFields", {"locationId": self.location_id},
                     params={"model": model})
        return self._parse_list(LocationCustomField, self._request(call), call, "customFields")

    def create_custom_field(self, custom_field: LocationCustomFieldCreate, *,
                            lookup: Lookup[LocationCustomField] | None = None
                            ) -> Written[LocationCustomField]:
        """POST /locations/{locationId}/customFields; picklists: ``options=[...]``."""
        call = _Call("POST", "/locations/{locationId}/customFields", {"locationId": self.location_id},
                     json=self._body(custom_field))
        return self._write(call, lambda b: (self._parse(LocationCustomField, b, call, "customField"),
                                            "created"), lookup)

    def delete_custom_field(self, field_id: str) -> None:
        """DELETE /locations/{locationId}/customFields/{id}: a contact/opportunity field and its values
        (HighLevel cannot change a field's dataType in place)."""
        self._request(_Call("DELETE", "/locations/{locationId}/customFields/{id}",
                            {"locationId": self.location_id, "id": field_id}))

    def custom_field_lookup(self, name: str, model: Literal["contact", "opportunity"] = "contact"
                            ) -> Lookup[LocationCustomField]:
        return lambda: next((f for f in self.list_custom_fields(model) if f.name == name), None)

    def list_location_tags(self) -> list[Tag]:
        call = _Call("GET", "/locations/{locationId}/tags", {"locationId": self.location_id})
        return self._parse_list(Tag, self._request(call), call, "tags")

    def create_location_tag(self, name: str) -> Written[Tag]:
        call = _Call("POST", "/locations/{locationId}/tags", {"locationId": self.location_id},
                     json={"name": name})
        lookup: Lookup[Tag] = lambda: next((t for t in self.list_location_tags() if t.name == name), None)  # noqa: E731
        return self._write(call, lambda b: (self._parse(Tag, b, call, "tag"), "created"), lookup)

    def create_field_folder(self, folder: CustomFieldFolderCreate) -> Written[CustomFieldFolder]:
        call = _Call("POST", "/custom-fields/folder", json=self._body(folder))
        return self._write(call, lambda b: (self._parse(CustomFieldFolder, b, call), "created"), None)

    def create_object_field(self, object_field: ObjectFieldCreate, *,
                            lookup: Lookup[ObjectField] | None = None) -> Written[ObjectField]:
        call = _Call("POST", "/custom-fields/", json=self._body(object_field))
        return self._write(call, lambda b: (self._parse(ObjectField, b, call, "field"), "created"), lookup)

    def delete_object_field(self, field_id: str) -> None:
        """DELETE /custom-fields/{id}: a custom object's field (not its primary display property)."""
        self._request(_Call("DELETE", "/custom-fields/{id}", {"id": field_id}))

    def list_object_fields(self, object_key: str) -> ObjectFields:
        call = _Call("GET", "/custom-fields/object-key/{objectKey}", {"objectKey": object_key},
                     params={"locationId": self.location_id})
        return self._parse(ObjectFields, self._request(call), call)

    def list_object_schemas(self) -> list[ObjectSchema]:
        call = _Call("GET", "/objects/", params={"locationId": self.location_id})
        return self._parse_list(ObjectSchema, self._request(call), call, "objects")

    def create_object_schema(self, schema: ObjectSchemaCreate) -> Written[ObjectSchema]:
        call = _Call("POST", "/objects/", json=self._body(schema))
        lookup: Lookup[ObjectSchema] = lambda: next(  # noqa: E731
            (o for o in self.list_object_schemas() if o.key == schema.key), None)
        return self._write(call, lambda b: (self._parse(ObjectSchema, b, call, "object"), "created"), lookup)

    def update_object_schema(self, schema_key: str, update: ObjectSchemaUpdate) -> ObjectSchema:
        """PUT /objects/{key} (idempotent: the same body twice leaves the same schema)."""
        call = _Call("PUT", "/objects/{key}", {"key": schema_key}, json=self._body(update))
        return self._parse(ObjectSchema, self._request(call), call, "object")

    def list_associations(self, *, skip: int = 0, limit: int = 100) -> list[Association]:
        call = _Call("GET", "/associations/", params={"locationId": self.location_id, "skip": skip,
                                                      "limit": limit})
        body = self._request(call)
        items = body if isinstance(body, list) else (body or {}).get("associations", [])
        return [self._parse(Association, a, call) for a in items]

    def create_association(self, association: AssociationCreate) -> Written[Association]:
        call = _Call("POST", "/associations/", json=self._body(association))
        lookup: Lookup[Association] = lambda: next(  # noqa: E731
            (a for a in self.list_associations() if a.key == association.key), None)
        return self._write(call, lambda b: (self._parse(Association, b, call), "created"), lookup)
