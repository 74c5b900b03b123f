"""Custom fields v2 for custom objects: folders and fields (custom-fields.json).

"Only supports Custom Objects and Company (Business) today" (the spec): here, custom objects only;
contact and opportunity fields go through ``/locations/{id}/customFields``. A field's key is
``custom_objects.<object>.<field>`` (``custom_object.`` as in the spec's examples is accepted and
normalised), its ``parentId`` is a folder of the same object, picklist types need ``options``
(``[{key, label}]``), and ``PUT`` replaces the whole option list but cannot drop an option that
exists (removing options is unsupported, NOTES.md §2.4). MONETORY is spelled as in the spec.
"""

from __future__ import annotations

import re
from typing import Any

from ..core import ApiError, Ctx, handler, new_id
from .objects import _PICKLISTS, custom_schema, object_key

_FIELD = re.compile(r"^[a-z][a-z0-9_]*$")


def _field(ctx: Ctx) -> dict[str, Any]:
    return ctx.own("cf2_field", ctx.params["id"], "Custom field")


@handler("custom-fields:create-custom-field-folder")
def create_folder(ctx: Ctx) -> tuple[int, Any]:
    schema = custom_schema(ctx, ctx.body["objectKey"])
    name = ctx.body["name"].strip()
    if any(f["objectKey"] == schema["key"] and f["name"].lower() == name.lower()
           for f in ctx.store.list("cf2_folder", ctx.location_id)):
        raise ApiError(400, f"A folder named {name} already exists for {schema['key']}", error="Bad Request")
    now = ctx.iso()
    folder = {"id": new_id(), "objectKey": schema["key"], "locationId": ctx.location_id, "name": name,
              "dateAdded": now, "dateUpdated": now}
    ctx.save("cf2_folder", folder)
    return 201, folder


@handler("custom-fields:create-custom-field")
def create_field(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    missing = [f"{k} should not be empty" for k in ("dataType", "fieldKey", "objectKey", "parentId")
               if not body.get(k)]
    if missing:
        raise ApiError(422, missing, error="Unprocessable Entity")
    schema = custom_schema(ctx, body["objectKey"])
    key = schema["key"]
    field_key = object_key(body["fieldKey"])  # custom_object.x.y -> custom_objects.x.y
    short = field_key[len(key) + 1:] if field_key.startswith(key + ".") else ""
    if not _FIELD.match(short):
        raise ApiError(422, [f"fieldKey must be {key}.<snake_case name>"], error="Unprocessable Entity")
    folder = next((f for f in ctx.store.list("cf2_folder", ctx.location_id) if f["id"] == body["parentId"]),
                  None)
    if folder is None or folder["objectKey"] != key:
        raise ApiError(400, f"parentId must be a folder of {key}", error="Bad Request")
    if any(f["fieldKey"] == field_key for f in ctx.store.list("cf2_field", ctx.location_id)):
        raise ApiError(400, f"A custom field with the key {field_key} already exists", error="Bad Request")
    options = body.get("options") or []
    if body["dataType"] in _PICKLISTS and not options:
        raise ApiError(422, ["options should not be empty"], error="Unprocessable Entity")
    now = ctx.iso()
    field: dict[str, Any] = {"id": new_id(), "name": body.get("name") or short, "fieldKey": field_key,
                             "objectKey": key, "parentId": folder["id"], "dataType": body["dataType"],
                             "showInForms": body["showInForms"], "locationId": ctx.location_id,
                             "dateAdded": now, "dateUpdated": now}
    for name in ("description", "placeholder", "acceptedFormats", "maxFileLimit", "allowCustomOption"):
        if body.get(name) is not None:
            field[name] = body[name]
    if options:
        field["options"] = [dict(o) for o in options]
    ctx.save("cf2_field", field)
    return 201, {"field": field}


@handler("custom-fields:get-custom-fields-by-object-key")
def list_fields(ctx: Ctx) -> tuple[int, Any]:
    key = custom_schema(ctx, ctx.params["objectKey"])["key"]
    return 200, {"fields": [f for f in ctx.store.list("cf2_field", ctx.location_id) if f["objectKey"] == key],
                 "folders": [f for f in ctx.store.list("cf2_folder",
                                                       ctx.location_id) if f["objectKey"] == key]}


@handler("custom-fields:get-custom-field-by-id")
def get_field(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"field": _field(ctx)}


@handler("custom-fields:update-custom-field")
def update_field(ctx: Ctx) -> tuple[int, Any]:
    field = _field(ctx)
    body = ctx.body
    if "options" in body:
        new_keys = {o.get("key") or o["label"] for o in body["options"] or []}
        dropped = [o["key"] for o in field.get("options") or [] if o["key"] not in new_keys]
        if dropped:
            raise ApiError(400, f"Removing options is not supported: {', '.join(dropped)}",
                           error="Bad Request")
        field["options"] = [{"key": o.get("key") or o["label"], **{k: v for k, v in o.items() if k != "key"}}
                            for o in body["options"]]
    for name in ("name", "description", "placeholder", "showInForms", "acceptedFormats", "maxFileLimit",
                 "allowCustomOption"):
        if name in body:
            field[name] = body[name]
    field["dateUpdated"] = ctx.iso()
    ctx.save("cf2_field", field)
    return 200, {"field": field}


@handler("custom-fields:delete-custom-field")
def delete_field(ctx: Ctx) -> tuple[int, Any]:
    field = _field(ctx)
    schema = custom_schema(ctx, field["objectKey"])
    if field["fieldKey"] == schema["primaryDisplayProperty"]:
        raise ApiError(400, "The primary display property cannot be deleted", error="Bad Request")
    ctx.remove("cf2_field", field["id"])
    return 200, {"succeded": True, "id": field["id"], "key": field["fieldKey"]}
