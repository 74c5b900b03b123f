"""Locations: get, tags, contact/opportunity custom fields, custom values (locations.json).

Field keys are named as HighLevel names them: ``<model>.<snake_case name>`` (``Patient ID`` ->
``contact.patient_id``). Picklist options are written as ``options`` and read as
``picklistOptions``. A custom field may be addressed by id or by field key. Custom values are
location-wide merge variables keyed ``{{ custom_values.<snake_case name> }}`` (unique per
location; the key keeps its first name, like a field key).
"""

from __future__ import annotations

import re
from typing import Any

from ..core import ApiError, Ctx, handler, new_id

_PICKLISTS = ("SINGLE_OPTIONS", "MULTIPLE_OPTIONS", "CHECKBOX", "RADIO")
DATA_TYPES = ("TEXT", "LARGE_TEXT", "NUMERICAL", "PHONE", "MONETORY", "CHECKBOX", "SINGLE_OPTIONS",
              "MULTIPLE_OPTIONS", "DATE", "TEXTBOX_LIST", "FILE_UPLOAD", "RADIO", "EMAIL")


def snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@handler("locations:get-location")
def get_location(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"location": ctx.location}


@handler("locations:get-location-tags")
def list_tags(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"tags": ctx.store.list("tag", ctx.location_id)}


@handler("locations:create-tag")
def create_tag(ctx: Ctx) -> tuple[int, Any]:
    name = ctx.body["name"].strip().lower()
    for tag in ctx.store.list("tag", ctx.location_id):
        if tag["name"] == name:
            raise ApiError(400, "Tag with this name already exists", error="Bad Request")
    tag = {"id": new_id(), "name": name, "locationId": ctx.location_id}
    ctx.save("tag", tag)
    return 200, {"tag": tag}


@handler("locations:get-tag-by-id")
def get_tag(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"tag": ctx.own("tag", ctx.params["tagId"], "Tag")}


@handler("locations:delete-tag")
def delete_tag(ctx: Ctx) -> tuple[int, Any]:
    ctx.remove("tag", ctx.own("tag", ctx.params["tagId"], "Tag")["id"])
    return 200, {"succeded": True}


def _field(ctx: Ctx, ident: str) -> dict[str, Any]:
    for field in ctx.store.list("custom_field", ctx.location_id):
        if ident in (field["id"], field["fieldKey"]):
            return field
    found = ctx.store.get("custom_field", ident)
    if found is not None:
        raise ApiError(403, "The token does not have access to this location.")
    raise ApiError(404, "Custom field not found", error="Not Found")


@handler("locations:get-custom-fields")
def list_fields(ctx: Ctx) -> tuple[int, Any]:
    model = ctx.q("model", "all")
    fields = [f for f in ctx.store.list("custom_field",
                                        ctx.location_id) if model == "all" or f["model"] == model]
    return 200, {"customFields": fields}


@handler("locations:create-custom-field")
def create_field(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    data_type = body["dataType"].upper()
    if data_type not in DATA_TYPES:
        raise ApiError(422, [f"dataType must be one of the following values: {', '.join(DATA_TYPES)}"],
                       error="Unprocessable Entity")
    model = body.get("model", "contact")
    if model not in ("contact", "opportunity"):
        raise ApiError(422, ["model must be one of the following values: contact, opportunity"],
                       error="Unprocessable Entity")
    key = f"{model}.{snake(body['name'])}"
    if any(f["fieldKey"] == key for f in ctx.store.list("custom_field", ctx.location_id)):
        raise ApiError(400, f"A custom field with the key {key} already exists", error="Bad Request")
    options = body.get("options") or []
    if data_type in _PICKLISTS and not options:
        raise ApiError(422, ["options should not be empty"], error="Unprocessable Entity")
    existing = ctx.store.count("custom_field", ctx.location_id)
    field = {"id": new_id(), "name": body["name"], "fieldKey": key,
             "placeholder": body.get("placeholder", ""),
             "dataType": data_type, "position": body.get("position", existing * 50),
             "picklistOptions": list(options), "isAllowedCustomOption": False,
             "isMultiFileAllowed": bool(body.get("isMultipleFile", False)),
             "maxFileLimit": body.get("maxNumberOfFiles", 1), "locationId": ctx.location_id, "model": model}
    ctx.save("custom_field", field)
    return 201, {"customField": field}


@handler("locations:get-custom-field")
def get_field(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"customField": _field(ctx, ctx.params["id"])}


@handler("locations:update-custom-field")
def update_field(ctx: Ctx) -> tuple[int, Any]:
    field = _field(ctx, ctx.params["id"])
    body = ctx.body
    for src, dst in (("name", "name"), ("placeholder", "placeholder"), ("position", "position"),
                     ("options", "picklistOptions"), ("maxNumberOfFiles", "maxFileLimit"),
                     ("isMultipleFile", "isMultiFileAllowed")):
        if src in body:
            field[dst] = body[src]
    ctx.save("custom_field", field)  # the field key never changes, as in HighLevel
    return 200, {"customField": field}


@handler("locations:delete-custom-field")
def delete_field(ctx: Ctx) -> tuple[int, Any]:
    ctx.remove("custom_field", _field(ctx, ctx.params["id"])["id"])
    return 200, {"succeded": True}


# -- custom values (location-wide merge variables, not per-contact data) -----------------------
def _value(ctx: Ctx, ident: str) -> dict[str, Any]:
    return ctx.own("custom_value", ident, "Custom value")


@handler("locations:get-custom-values")
def list_values(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"customValues": ctx.store.list("custom_value", ctx.location_id)}


@handler("locations:create-custom-value")
def create_value(ctx: Ctx) -> tuple[int, Any]:
    name = ctx.body["name"].strip()
    key = "{{ custom_values.%s }}" % snake(name)
    if any(v["fieldKey"] == key for v in ctx.store.list("custom_value", ctx.location_id)):
        raise ApiError(400, f"A custom value with the key {key} already exists", error="Bad Request")
    value = {"id": new_id(), "name": name, "fieldKey": key, "value": ctx.body["value"],
             "locationId": ctx.location_id}
    ctx.save("custom_value", value)
    return 201, {"customValue": value}


@handler("locations:get-custom-value")
def get_value(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"customValue": _value(ctx, ctx.params["id"])}


@handler("locations:update-custom-value")
def update_value(ctx: Ctx) -> tuple[int, Any]:
    value = _value(ctx, ctx.params["id"])
    value.update(name=ctx.body["name"].strip(), value=ctx.body["value"])  # the key never changes
    ctx.save("custom_value", value)
    return 200, {"customValue": value}


@handler("locations:delete-custom-value")
def delete_value(ctx: Ctx) -> tuple[int, Any]:
    ctx.remove("custom_value", _value(ctx, ctx.params["id"])["id"])
    return 200, {"succeded": True}
