"""Emulation of HighLevel's UI CSV importers, at ``POST /_sandbox/imports``.

Not part of HighLevel's API (NOTES.md §3: the importers exist only in its web UI), so it lives
under ``/_sandbox/`` and is not counted against the API rate limits. The bearer token picks the
location, as everywhere. Query parameters:

* ``object=contacts|opportunities|custom_objects.<name>`` (the three UI importers);
* ``mode=create|update|create_update`` (the UI's three modes);
* ``dedupe=...``: how a row finds an existing record —
  contacts: ``email`` (default), ``phone``, ``id`` or a contact custom field key;
  opportunities: ``contact`` (default: the same contact in the same pipeline, HighLevel's one
  open opportunity per contact and pipeline) or ``id``;
  custom object records: ``id`` (default) or a field key of the object (its unique field).

The body is the CSV (UTF-8, header row, at most 30 MB; larger -> 413). Columns:

* contacts: contact fields by their API names (``firstName``, ``email``, ...), ``tags``
  (comma-separated), ``id``, and custom fields by key (``contact.patient_id``);
* opportunities: ``id``, ``name``, ``pipeline`` (name or id; ``pipelineId`` too), ``stage`` (name
  or id; ``pipelineStageId`` too, defaults to the first stage), ``contactId`` or ``email`` (the
  contact must exist), ``monetaryValue``, ``status`` (open, won, lost, abandoned), ``assignedTo``,
  ``source``, and opportunity custom fields by key (``opportunity.x``);
* custom object records: ``id`` and properties by field key, short (``name``) or full
  (``custom_objects.pet.name``); NUMERICAL and MONETORY cells are numbers, MULTIPLE_OPTIONS and
  CHECKBOX cells comma-separated, TEXTBOX_LIST one column per option (``list.option``).

Every row goes through the same business rules as the API (duplicate contacts, pipelines,
property types); a row the API would refuse is an ``error`` row, the others still import. The
answer is the per-row result file the UI offers for download: CSV ``row,status,<id column>,error``
(``contactId``, ``opportunityId`` or ``recordId``) with status ``created``, ``updated``,
``skipped`` or ``error``; ``row`` counts data rows from 1.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..highlevel.contract import operation_by_id
from .core import ApiError, Ctx, Settings, read_body
from .endpoints import contacts as c
from .endpoints import objects as o
from .endpoints import opportunities as opps
from .store import Store

__all__ = ["import_endpoint", "MAX_IMPORT_BYTES"]

MAX_IMPORT_BYTES = 30 * 1024 * 1024
_MODES = ("create", "update", "create_update")
_STATUSES = ("open", "won", "lost", "abandoned")
_ID_COLUMN = {"contacts": "contactId", "opportunities": "opportunityId"}
_DEFAULT_DEDUPE = {"contacts": "email", "opportunities": "contact"}


def _bad(message: str, status: int = 400) -> Response:
    return JSONResponse({"statusCode": status, "message": message}, status_code=status)


async def import_endpoint(request: Request, store: Store, clock: Callable[[], float]) -> Response:
    auth = request.headers.get("authorization", "")
    found = store.token(auth[7:].strip()) if auth[:7].lower() == "bearer " else None
    if found is None:
        return _bad("Invalid JWT", 401)
    q = request.query_params
    obj, mode = q.get("object", "contacts"), q.get("mode", "create")
    if mode not in _MODES:
        return _bad(f"mode must be one of {', '.join(_MODES)}")
    ctx = Ctx(store, Settings(), operation_by_id("contacts", "create-contact"), found[0], clock(), {})
    if obj not in ("contacts", "opportunities"):
        try:
            obj = o.custom_schema(ctx, obj)["key"]
        except ApiError:
            return _bad("object must be contacts, opportunities or the key of one of this location's "
                        f"custom objects (custom_objects.<name>), not {obj}")
    dedupe = q.get("dedupe", _DEFAULT_DEDUPE.get(obj, "id"))
    if obj == "opportunities" and dedupe not in ("contact", "id"):
        return _bad("dedupe must be contact or id for opportunities")
    try:
        body = await read_body(request, MAX_IMPORT_BYTES)  # after the token; never more than 30 MB + 1
    except ApiError:
        return _bad("The file is larger than 30 MB", 413)
    importer = {"contacts": _import_contact, "opportunities": _import_opportunity}.get(obj, _import_record)
    text = body.decode("utf-8-sig", "replace")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "status", _ID_COLUMN.get(obj, "recordId"), "error"])
    for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=1):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        ctx.body, ctx.params = None, {}
        try:
            with store.tx():  # a row imports whole or not at all
                status, doc_id = importer(ctx, row, mode, dedupe, obj)
            writer.writerow([i, status, doc_id, ""])
        except ApiError as exc:
            message = exc.message if isinstance(exc.message, str) else "; ".join(exc.message)
            writer.writerow([i, "error", "", message])
        ctx.now = clock() if clock is not time.time else time.time()
    return Response(out.getvalue(), media_type="text/csv")


def _row_error(message: str) -> ApiError:
    return ApiError(400, message, error="Bad Request")


# -- contacts ------------------------------------------------------------------------------------
def _contact_body(row: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    custom = []
    for key, value in row.items():
        if value == "":
            continue
        if key == "tags":
            body["tags"] = [t.strip() for t in value.split(",") if t.strip()]
        elif "." in key:
            custom.append({"key": key, "field_value": value})
        elif key in c._COPY:
            body[key] = value
    if custom:
        body["customFields"] = custom
    return body


class _Index:
    """The oldest document per key among a location's documents of one kind, built once per import file
    and kept current as its rows write (each row reading every document was N^2 decodes: a 1,200-row
    file decoded 2.7 M contacts). ``keys(doc)``: the keys a document answers to."""

    def __init__(self, kind: str, keys: Callable[[dict[str, Any]], Iterable[Any]],
                 docs: Iterable[dict[str, Any]]) -> None:
        self.kind, self.keys = kind, keys
        self.ids: dict[Any, str] = {}
        for doc in docs:
            self.add(doc)

    def add(self, doc: dict[str, Any]) -> None:
        for k in self.keys(doc):
            self.ids.setdefault(k, doc["id"])  # the oldest first, as a scan in order finds it

    def find(self, ctx: Ctx, key: Any) -> dict[str, Any] | None:
        doc_id = self.ids.get(key)
        return None if doc_id is None else _live(ctx, self.kind, doc_id)


def _index(ctx: Ctx, name: tuple[Any, ...], kind: str,
           keys: Callable[[dict[str, Any]], Iterable[Any]]) -> _Index:
    """The import's index ``name`` (built from the store at its first use)."""
    found = ctx.memo.get(name)
    if found is None:
        found = ctx.memo[name] = _Index(kind, keys, ctx.store.list(kind, ctx.location_id))
    return found  # type: ignore[no-any-return]


def _wrote(ctx: Ctx, kind: str, doc_id: str) -> str:
    """A row created or updated ``doc_id``: the import's indexes of its kind learn it. Returns the id."""
    indexes = [i for i in ctx.memo.values() if isinstance(i, _Index) and i.kind == kind]
    doc = _live(ctx, kind, doc_id) if indexes else None
    for i in indexes:
        if doc is not None:
            i.add(doc)
    return doc_id


def _live(ctx: Ctx, kind: str, doc_id: str) -> dict[str, Any] | None:
    """This location's live document ``doc_id`` of ``kind``, or None."""
    found = ctx.store.get(kind, doc_id)
    return found[1] if found is not None and found[0] == ctx.location_id else None


def _existing_contact(ctx: Ctx, row: dict[str, str], dedupe: str) -> dict[str, Any] | None:
    key = {"id": "id", "email": "email", "phone": "phone"}.get(dedupe, dedupe)
    if not row.get(key):
        return None  # nothing to match on: a new contact (no need to read them all)
    if dedupe == "id":
        return _live(ctx, "contact", row["id"])
    if dedupe == "email":
        return _index(ctx, ("contact", "email"), "contact",
                      lambda x: [(x.get("email") or "").lower()]).find(ctx, row["email"].lower())
    if dedupe == "phone":
        phone = c.normalise_phone(row.get("phone"))
        if not phone:
            return None
        return _index(ctx, ("contact", "phone"), "contact", lambda x: [x.get("phone")]).find(ctx, phone)
    value = row[dedupe]
    field_id = next(iter(c._custom_fields(ctx, [{"key": dedupe, "field_value": value}])))
    return _index(ctx, ("contact", "field", field_id), "contact",
                  lambda x: [str(f["value"]) for f in x.get("customFields", []) if f["id"] == field_id]
                  ).find(ctx, value)


def _import_contact(ctx: Ctx, row: dict[str, str], mode: str, dedupe: str, _obj: str) -> tuple[str, str]:
    body = _contact_body(row)
    existing = _existing_contact(ctx, row, dedupe)
    if existing is not None:
        if mode == "create":
            return "skipped", existing["id"]
        c._apply(ctx, existing, body)
        ctx.save("contact", existing, indexed=True)
        return "updated", _wrote(ctx, "contact", existing["id"])
    if mode == "update":
        return "skipped", ""
    return "created", _wrote(ctx, "contact", c._new_contact(ctx, body)["id"])


# -- opportunities -------------------------------------------------------------------------------
def _pick(row: dict[str, str], *names: str) -> str:
    return next((row[n] for n in names if row.get(n)), "")


def _pipeline(ctx: Ctx, ident: str) -> dict[str, Any]:
    for pipeline in ctx.store.list("pipeline", ctx.location_id):
        if ident in (pipeline["id"], pipeline["name"]) or ident.lower() == pipeline["name"].lower():
            return pipeline
    raise _row_error(f"Pipeline {ident} not found")


def _stage(pipeline: dict[str, Any], ident: str) -> str:
    for stage in pipeline["stages"]:
        if ident == stage["id"] or ident.lower() == stage["name"].lower():
            return stage["id"]
    raise _row_error(f"Stage {ident} not found in pipeline {pipeline['name']}")


def _contact_id(ctx: Ctx, row: dict[str, str]) -> str:
    cid = row.get("contactId")
    if cid:
        if _live(ctx, "contact", cid) is None:
            raise _row_error(f"Contact {cid} not found")
        return cid
    email = _pick(row, "email", "contactEmail").lower()
    if not email:
        raise _row_error("contactId or email is required")
    found = _index(ctx, ("contact", "email"), "contact", lambda x: [(x.get("email") or "").lower()]
                   ).find(ctx, email)
    if found is None:
        raise _row_error(f"No contact with email {email}")
    return found["id"]  # type: ignore[no-any-return]


def _opportunity_body(ctx: Ctx, row: dict[str, str], *, creating: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    pipeline_ref = _pick(row, "pipeline", "pipelineId")
    if pipeline_ref:
        pipeline = _pipeline(ctx, pipeline_ref)
        body["pipelineId"] = pipeline["id"]
        stage_ref = _pick(row, "stage", "pipelineStageId")
        if stage_ref:
            body["pipelineStageId"] = _stage(pipeline, stage_ref)
    elif creating:
        raise _row_error("pipeline is required")
    if row.get("contactId") or _pick(row, "email", "contactEmail") or creating:
        body["contactId"] = _contact_id(ctx, row)
    for name in ("name", "assignedTo", "source"):
        if row.get(name):
            body[name] = row[name]
    if creating and not body.get("name"):
        raise _row_error("name is required")
    if row.get("status"):
        status = row["status"].lower()
        if status not in _STATUSES:
            raise _row_error(f"status must be one of {', '.join(_STATUSES)}")
        body["status"] = status
    elif creating:
        body["status"] = "open"
    if row.get("monetaryValue"):
        try:
            body["monetaryValue"] = float(row["monetaryValue"].replace(",", "").lstrip("$"))
        except ValueError:
            raise _row_error("monetaryValue must be a number") from None
    types = {f.get("fieldKey"): f.get("dataType") for f in ctx.store.list("custom_field", ctx.location_id)}
    custom = [{"key": k, "field_value": _split(v) if types.get(k) in ("MULTIPLE_OPTIONS", "CHECKBOX") else v}
              for k, v in row.items() if k.startswith("opportunity.") and v]
    if custom:
        body["customFields"] = custom
    return body


def _split(cell: str) -> list[str]:
    """A multi-value cell: comma-separated, as the UI importer reads it."""
    return [v.strip() for v in cell.split(",") if v.strip()]


def _existing_opportunity(ctx: Ctx, row: dict[str, str], dedupe: str) -> dict[str, Any] | None:
    if dedupe == "id":
        return _live(ctx, "opportunity", row["id"]) if row.get("id") else None
    ref = _pick(row, "pipeline", "pipelineId")
    if not ref:
        return None
    pipeline_id, contact_id = _pipeline(ctx, ref)["id"], _contact_id(ctx, row)
    return _index(ctx, ("opportunity", "contact"), "opportunity",
                  lambda x: [(x["pipelineId"], x["contactId"])]).find(ctx, (pipeline_id, contact_id))


def _import_opportunity(ctx: Ctx, row: dict[str, str], mode: str, dedupe: str, _obj: str) -> tuple[str, str]:
    existing = _existing_opportunity(ctx, row, dedupe)
    if existing is not None:
        if mode == "create":
            return "skipped", existing["id"]
        ctx.body, ctx.params = _opportunity_body(ctx, row, creating=False), {"id": existing["id"]}
        ctx.body.pop("contactId", None)  # the contact of an opportunity does not change on import
        opps.update(ctx)
        return "updated", _wrote(ctx, "opportunity", existing["id"])
    if mode == "update":
        return "skipped", ""
    ctx.body = {"locationId": ctx.location_id, **_opportunity_body(ctx, row, creating=True)}
    return "created", _wrote(ctx, "opportunity", opps.create(ctx)[1]["opportunity"]["id"])


# -- custom object records -----------------------------------------------------------------------
def _short(key: str, name: str) -> str:
    return name[len(key) + 1:] if name.startswith(key + ".") else name


def _cell(field: dict[str, Any] | None, value: str) -> Any:
    """A CSV cell as the API value for ``field`` (unknown fields pass through; the API rules decide)."""
    kind = (field or {}).get("dataType")
    if kind in ("NUMERICAL", "MONETORY"):
        try:
            number = float(value.replace(",", "").lstrip("$"))
        except ValueError:
            return value  # check_properties names the problem
        return int(number) if number.is_integer() else number
    if kind in ("MULTIPLE_OPTIONS", "CHECKBOX"):
        return [v.strip() for v in value.split(",") if v.strip()]
    if kind == "FILE_UPLOAD":
        return [{"url": v.strip()} for v in value.split(",") if v.strip()]
    return value


def _record_properties(ctx: Ctx, schema: dict[str, Any], row: dict[str, str]) -> dict[str, Any]:
    key = schema["key"]
    fields = {_short(key, f["fieldKey"]): f for f in o.object_fields(ctx, key)}
    props = {}
    for name, value in row.items():
        if name == "id" or value == "":
            continue
        props[_short(key, name)] = _cell(fields.get(_short(key, name)), value)
    return o.check_properties(ctx, schema, props)


def _existing_record(ctx: Ctx, schema: dict[str, Any], row: dict[str, str], dedupe: str,
                     props: dict[str, Any]) -> dict[str, Any] | None:
    key = schema["key"]
    if dedupe == "id":
        if not row.get("id"):
            return None  # a row without an id is new: no need to read the object's records
        found = _live(ctx, "record", row["id"])
        return found if found is not None and found["objectKey"] == key else None
    short = _short(key, dedupe)
    if not any(_short(schema["key"], f["fieldKey"]) == short for f in o.object_fields(ctx, schema["key"])):
        raise _row_error(f"dedupe field {dedupe} is not a field of {schema['key']}")
    value = props.get(short)
    if value in (None, ""):
        return None
    return _index(ctx, ("record", key, short), "record",
                  lambda r: [str(r["properties"].get(short)).lower()] if r["objectKey"] == key else []
                  ).find(ctx, str(value).lower())


def _import_record(ctx: Ctx, row: dict[str, str], mode: str, dedupe: str, obj: str) -> tuple[str, str]:
    schema = o.custom_schema(ctx, obj)
    props = _record_properties(ctx, schema, row)
    existing = _existing_record(ctx, schema, row, dedupe, props)
    ctx.params = {"schemaKey": schema["key"]}
    if existing is not None:
        if mode == "create":
            return "skipped", existing["id"]
        ctx.params["id"], ctx.body = existing["id"], {"properties": props}
        o.update_record(ctx)
        return "updated", _wrote(ctx, "record", existing["id"])
    if mode == "update":
        return "skipped", ""
    if not props:
        raise _row_error("the row has no properties")
    ctx.body = {"properties": props}
    return "created", _wrote(ctx, "record", o.create_record(ctx)[1]["record"]["id"])
