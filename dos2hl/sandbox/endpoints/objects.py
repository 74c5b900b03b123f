"""Custom objects: schemas, records CRUD and record search (objects.json).

* Schema keys are ``custom_objects.<name>`` (``custom_objects.`` is added when a client sends the
  bare name, as the spec says). At most 10 custom objects per location (NOTES.md §2.5); the 11th
  create answers 400. Creating an object also creates its primary display field (TEXT or
  NUMERICAL) in a default folder, so the field shows up in custom-fields v2 like in HighLevel.
* ``GET /objects/`` lists the standard objects (contact, opportunity, business) too.
* Record ``properties`` use short field keys (``name`` for ``custom_objects.pet.name``; the full
  key is accepted and shortened). Every key must be a field of the object (custom-fields v2), and
  the value must suit the field type; otherwise 422 with a NestJS message list. TEXTBOX_LIST values
  are written one key per option (``my_list.option_a``).
* Search: ``query`` is ``<property>:<value>`` (equality, case-insensitive) or free text, both over
  the object's ``searchableProperties`` only (the primary display property by default; change them
  with ``PUT /objects/{key}``). Pages by ``page``/``pageLimit`` or ``searchAfter`` (the last
  record's cursor). The index lags writes by the configured delay.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ..core import ApiError, Ctx, handler, new_id
from ..search import field_value, paginate

MAX_CUSTOM_OBJECTS = 10  # per location, all plans (NOTES.md §2.5)
PREFIX = "custom_objects."
STANDARD = {"contact": ("Contact", "Contacts", "contact.name"),
            "opportunity": ("Opportunity", "Opportunities", "opportunity.name"),
            "business": ("Company", "Companies", "business.name")}
_PICKLISTS = ("SINGLE_OPTIONS", "MULTIPLE_OPTIONS", "CHECKBOX", "RADIO", "TEXTBOX_LIST")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _unprocessable(messages: list[str]) -> ApiError:
    return ApiError(422, messages, error="Unprocessable Entity")


def object_key(key: str) -> str:
    """``pet`` / ``custom_object.pet`` / ``custom_objects.pet`` -> ``custom_objects.pet``."""
    key = key.strip()
    if key in STANDARD or key.startswith(PREFIX):
        return key
    if key.startswith("custom_object."):
        return PREFIX + key[len("custom_object."):]
    return PREFIX + key


def custom_schema(ctx: Ctx, key: str) -> dict[str, Any]:
    """This location's custom object with ``key``: 404 when there is none."""
    key = object_key(key)
    for schema in ctx.store.list_where("object_schema", ctx.location_id, "key", key):
        return schema
    raise ApiError(404, f"Custom object {key} not found", error="Not Found")


def object_exists(ctx: Ctx, key: str) -> bool:
    """Whether ``key`` names a standard object or one of this location's custom objects."""
    if key in STANDARD:
        return True
    return any(s["key"] == key for s in ctx.store.list("object_schema", ctx.location_id))


def object_fields(ctx: Ctx, key: str) -> list[dict[str, Any]]:
    return ctx.store.list_where("cf2_field", ctx.location_id, "objectKey", key)


def _standard(ctx: Ctx, key: str) -> dict[str, Any]:
    singular, plural, primary = STANDARD[key]
    when = ctx.location.get("dateAdded") or "2024-01-01T00:00:00.000Z"
    return {"id": f"{key}_{ctx.location_id}", "standard": True, "key": key,
            "labels": {"singular": singular, "plural": plural}, "locationId": ctx.location_id,
            "primaryDisplayProperty": primary, "dateAdded": when, "dateUpdated": when}


# -- schemas -----------------------------------------------------------------------------------
@handler("objects:get-object-by-location-id")
def list_schemas(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"objects": [_standard(ctx, k) for k in STANDARD]
                 + ctx.store.list("object_schema", ctx.location_id)}


@handler("objects:create-custom-object-schema")
def create_schema(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    key = object_key(body["key"])
    name = key[len(PREFIX):]
    if not _NAME.match(name):
        raise _unprocessable(["key must be lowercase letters, digits and underscores "
                              "(custom_objects.<name>)"])
    existing = ctx.store.list("object_schema", ctx.location_id)
    if any(s["key"] == key for s in existing):
        raise ApiError(400, f"Custom object with key {key} already exists", error="Bad Request")
    if len(existing) >= MAX_CUSTOM_OBJECTS:
        raise ApiError(400, f"You can create a maximum of {MAX_CUSTOM_OBJECTS} custom objects per location",
                       error="Bad Request")
    primary = body["primaryDisplayPropertyDetails"]
    if primary["dataType"] not in ("TEXT", "NUMERICAL"):
        raise _unprocessable(["primaryDisplayPropertyDetails.dataType must be one of the following values: "
                              "TEXT, NUMERICAL"])
    short = primary["key"][len(key) + 1:] if primary["key"].startswith(key + ".") else primary["key"]
    if not _NAME.match(short):
        raise _unprocessable(["primaryDisplayPropertyDetails.key must be <object key>.<snake_case name>"])
    now = ctx.iso()
    schema = {"id": new_id(), "standard": False, "key": key, "labels": dict(body["labels"]),
              "locationId": ctx.location_id, "primaryDisplayProperty": f"{key}.{short}",
              "searchableProperties": [f"{key}.{short}"], "dateAdded": now, "dateUpdated": now}
    if body.get("description") is not None:
        schema["description"] = body["description"]
    ctx.save("object_schema", schema)
    folder = {"id": new_id(), "objectKey": key, "locationId": ctx.location_id,
              "name": f"{body['labels']['singular']} Details", "dateAdded": now, "dateUpdated": now}
    ctx.save("cf2_folder", folder)
    ctx.save("cf2_field", {"id": new_id(), "name": primary["name"], "fieldKey": f"{key}.{short}",
                           "objectKey": key, "parentId": folder["id"], "dataType": primary["dataType"],
                           "showInForms": True, "locationId": ctx.location_id, "dateAdded": now,
                           "dateUpdated": now})
    return 201, {"object": schema}


@handler("objects:get-object-schema-by-key")
def get_schema(ctx: Ctx) -> tuple[int, Any]:
    key = object_key(ctx.params["key"])
    schema = _standard(ctx, key) if key in STANDARD else custom_schema(ctx, key)
    out: dict[str, Any] = {"object": schema, "cache": False}
    if (ctx.q("fetchProperties") or "").lower() == "true":
        out["fields"] = object_fields(ctx, key)
    return 200, out


@handler("objects:update-custom-object")
def update_schema(ctx: Ctx) -> tuple[int, Any]:
    schema = custom_schema(ctx, ctx.params["key"])
    body = ctx.body
    known = {f["fieldKey"] for f in object_fields(ctx, schema["key"])}
    searchable = [k if k.startswith(schema["key"] + ".") else f"{schema['key']}.{k}"
                  for k in body["searchableProperties"]]
    unknown = [k for k in searchable if k not in known]
    if unknown:
        raise ApiError(400, f"Invalid searchable properties: {', '.join(unknown)}", error="Bad Request")
    schema["searchableProperties"] = searchable
    if body.get("labels"):
        schema["labels"] = {**schema["labels"], **body["labels"]}
    if "description" in body:
        schema["description"] = body["description"]
    schema["dateUpdated"] = ctx.iso()
    ctx.save("object_schema", schema)
    return 200, {"object": schema}


# -- record properties -------------------------------------------------------------------------
def _option_keys(field: dict[str, Any]) -> list[str]:
    return [o["key"] for o in field.get("options") or []]


def _value_problem(field: dict[str, Any], value: Any) -> str | None:
    """Why ``value`` does not suit ``field`` (None when it does; None values clear a property)."""
    if value is None:
        return None
    t = field["dataType"]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if t in ("TEXT", "LARGE_TEXT", "PHONE", "EMAIL"):
        return None if isinstance(value, str) else "must be a string"
    if t == "NUMERICAL":
        return None if number else "must be a number"
    if t == "MONETORY":
        if number or (isinstance(value, dict) and set(value) <= {"currency", "value"}
                      and isinstance(value.get("value"),
                                     (int, float)) and not isinstance(value.get("value"), bool)):
            return None
        return "must be a number or {currency, value}"
    if t == "DATE":
        try:
            dt.date.fromisoformat(str(value)[:10])
            return None
        except ValueError:
            return "must be a date (YYYY-MM-DD)"
    if t in ("SINGLE_OPTIONS", "RADIO"):
        if not isinstance(value, str):
            return "must be a string"
        if value in _option_keys(field) or (t == "RADIO" and field.get("allowCustomOption")):
            return None
        return f"must be one of the following values: {', '.join(_option_keys(field))}"
    if t in ("MULTIPLE_OPTIONS", "CHECKBOX"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "must be an array of strings"
        bad = [v for v in value if v not in _option_keys(field)]
        return f"must contain only the following values: {', '.join(_option_keys(field))}" if bad else None
    if t == "FILE_UPLOAD":
        ok = isinstance(value,
                        list) and all(isinstance(v, dict) and isinstance(v.get("url"), str) for v in value)
        return None if ok else "must be an array of {url}"
    if t == "TEXTBOX_LIST":
        ok = isinstance(value, dict) and set(value) <= set(_option_keys(field))
        return None if ok else "must be written one key per option (<field>.<option>)"
    return None


def check_properties(ctx: Ctx, schema: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """``props`` with short keys, or 422 naming every unknown key and unsuitable value."""
    key = schema["key"]
    fields = {f["fieldKey"][len(key) + 1:]: f for f in object_fields(ctx, key)}
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name, value in props.items():
        short = name[len(key) + 1:] if name.startswith(key + ".") else name
        field = fields.get(short)
        if field is None and "." in short:  # TEXTBOX_LIST: one key per option
            base, option = short.split(".", 1)
            parent = fields.get(base)
            if parent is not None and parent["dataType"] == "TEXTBOX_LIST" and option in _option_keys(parent):
                if value is not None and not isinstance(value, str):
                    problems.append(f"properties.{name} must be a string")
                out[short] = value
                continue
        if field is None:
            problems.append(f"properties.{name} is not a field of {key}")
            continue
        problem = _value_problem(field, value)
        if problem:
            problems.append(f"properties.{name} {problem}")
        out[short] = value
    if problems:
        raise _unprocessable(problems)
    return out


def _check_users(ctx: Ctx, ids: list[str], what: str) -> None:
    users = {u["id"] for u in ctx.store.list("user", ctx.location_id)}
    bad = [u for u in ids if u not in users]
    if bad:
        raise ApiError(400, f"{what} must be users of this location: {', '.join(bad)}", error="Bad Request")


def _by(ctx: Ctx) -> dict[str, str]:
    return {"channel": "API", "createdAt": ctx.iso(), "source": "PUBLIC_API", "sourceId": ctx.location_id}


# -- records -----------------------------------------------------------------------------------
@handler("objects:create-object-record")
def create_record(ctx: Ctx) -> tuple[int, Any]:
    schema = custom_schema(ctx, ctx.params["schemaKey"])
    body = ctx.body
    props = check_properties(ctx, schema, body["properties"])
    owner, followers = body.get("owner") or [], body.get("followers") or []
    _check_users(ctx, owner, "owner")
    _check_users(ctx, followers, "followers")
    now = ctx.iso()
    record = {"id": new_id(), "owner": owner, "followers": followers, "properties": props,
              "dateAdded": now, "dateUpdated": now, "createdAt": now, "updatedAt": now,
              "locationId": ctx.location_id, "objectId": schema["id"], "objectKey": schema["key"],
              "createdBy": _by(ctx), "lastUpdatedBy": _by(ctx)}
    ctx.save("record", record, indexed=True)
    return 201, {"record": record}


def _record(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    record = ctx.own("record", ctx.params["id"], "Record")
    schema = custom_schema(ctx, ctx.params["schemaKey"])
    if record["objectKey"] != schema["key"]:
        raise ApiError(404, "Record not found", error="Not Found")
    return schema, record


@handler("objects:get-record-by-id")
def get_record(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"record": _record(ctx)[1]}


@handler("objects:update-object-record")
def update_record(ctx: Ctx) -> tuple[int, Any]:
    schema, record = _record(ctx)
    body = ctx.body or {}
    if "properties" in body:
        record["properties"] = {**record["properties"], **check_properties(ctx, schema, body["properties"])}
    for name in ("owner", "followers"):
        if name in body:
            _check_users(ctx, body[name] or [], name)
            record[name] = body[name] or []
    record["dateUpdated"] = record["updatedAt"] = ctx.iso()
    record["lastUpdatedBy"] = _by(ctx)
    ctx.save("record", record, indexed=True)
    return 200, {"record": record}


@handler("objects:delete-object-record")
def delete_record(ctx: Ctx) -> tuple[int, Any]:
    _, record = _record(ctx)
    ctx.remove("record", record["id"], indexed=True)
    for rel in ctx.store.relations_of(ctx.location_id, [record["id"]]):  # they go with their record
        ctx.remove("relation", rel["id"])
    return 200, {"id": record["id"], "success": True}


@handler("objects:search-object-records")
def search_records(ctx: Ctx) -> tuple[int, Any]:
    schema = custom_schema(ctx, ctx.params["schemaKey"])
    key = schema["key"]
    body = ctx.body
    searchable = [k[len(key) + 1:] for k in schema.get("searchableProperties") or []]
    docs = [d for d in ctx.store.indexed("record", ctx.location_id, ctx.now) if d.get("objectKey") == key]
    query = (body.get("query") or "").strip()
    if query:
        prop, sep, value = query.partition(":")
        if sep:
            prop = prop.strip()
            short = prop[len(key) + 1:] if prop.startswith(key + ".") else prop
            if short not in searchable:
                raise ApiError(400, f"{prop} is not a searchable property of {key}", error="Bad Request")
            want = value.strip().lower()
            docs = [d for d in docs if str(d["properties"].get(short, "")).lower() == want]
        else:
            text = query.lower()
            docs = [d for d in docs if any(text in str(d["properties"].get(p,
                                                                           "")).lower() for p in searchable)]
    page_limit = int(body["pageLimit"])
    if page_limit < 1:
        raise _unprocessable(["pageLimit must not be less than 1"])
    after = body.get("searchAfter") or None
    page = None if after else int(body.get("page") or 1)
    hits, total = paginate(docs, sort=[{"field": "createdAt", "direction": "desc"}], getter=field_value,
                           page_limit=page_limit, page=page, search_after=after)
    return 200, {"records": [{**d, "searchAfter": cursor} for d, cursor in hits], "total": total}
