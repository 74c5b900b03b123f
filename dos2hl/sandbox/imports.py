"""Emulation of HighLevel's UI CSV import for contacts, at ``POST /_sandbox/imports``.

Not part of HighLevel's API (NOTES.md §3: the importers exist only in its web UI), so it lives
under ``/_sandbox/`` and is not counted against the API rate limits. The bearer token picks the
location, as everywhere. Query parameters:

* ``object=contacts`` (the only object emulated so far);
* ``mode=create|update|create_update`` (the UI's three modes);
* ``dedupe=email|phone|id|<custom field key>`` (how a row finds an existing contact).

The body is the CSV (UTF-8, header row, at most 30 MB). Columns: contact fields by their API names
(``firstName``, ``email``, ...), ``tags`` (comma-separated), ``id``, and custom fields by key
(``contact.patient_id``). The answer is the per-row result file the UI offers for download:
CSV ``row,status,contactId,error`` with status ``created``, ``updated``, ``skipped`` or ``error``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..highlevel.contract import operation_by_id
from .core import ApiError, Ctx, Settings
from .endpoints import contacts as c
from .store import Store

__all__ = ["import_endpoint", "MAX_IMPORT_BYTES"]

MAX_IMPORT_BYTES = 30 * 1024 * 1024
_MODES = ("create", "update", "create_update")


async def import_endpoint(request: Request, store: Store, clock: Callable[[], float]) -> Response:
    auth = request.headers.get("authorization", "")
    found = store.token(auth[7:].strip()) if auth[:7].lower() == "bearer " else None
    if found is None:
        return JSONResponse({"statusCode": 401, "message": "Invalid token"}, status_code=401)
    q = request.query_params
    mode, dedupe, obj = q.get("mode", "create"), q.get("dedupe", "email"), q.get("object", "contacts")
    if obj != "contacts" or mode not in _MODES:
        return JSONResponse({"statusCode": 400, "message": f"object must be contacts and mode one of {_MODES}"},
                            status_code=400)
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        return JSONResponse({"statusCode": 413, "message": "The file is larger than 30 MB"}, status_code=413)
    ctx = Ctx(store, Settings(), operation_by_id("contacts", "create-contact"), found[0], clock(), {})
    text = body.decode("utf-8-sig", "replace")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "status", "contactId", "error"])
    for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=1):
        try:
            status, cid = _import_row(ctx, row, mode, dedupe)
            writer.writerow([i, status, cid, ""])
        except ApiError as exc:
            message = exc.message if isinstance(exc.message, str) else "; ".join(exc.message)
            writer.writerow([i, "error", "", message])
        ctx.now = clock() if clock is not time.time else time.time()
    return Response(out.getvalue(), media_type="text/csv")


def _row_body(ctx: Ctx, row: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    custom = []
    for key, value in row.items():
        if key is None or value is None or value == "":
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


def _existing(ctx: Ctx, row: dict[str, str], dedupe: str) -> dict[str, Any] | None:
    contacts = ctx.store.list("contact", ctx.location_id)
    if dedupe == "id":
        return next((x for x in contacts if x["id"] == row.get("id")), None)
    if dedupe == "email":
        email = (row.get("email") or "").lower()
        return next((x for x in contacts if email and (x.get("email") or "").lower() == email), None)
    if dedupe == "phone":
        phone = c.normalise_phone(row.get("phone"))
        return next((x for x in contacts if phone and x.get("phone") == phone), None)
    value = row.get(dedupe)
    if not value:
        return None
    field_id = next(iter(c._custom_fields(ctx, [{"key": dedupe, "field_value": value}])))
    return next((x for x in contacts if any(f["id"] == field_id and str(f["value"]) == value
                                             for f in x.get("customFields", []))), None)


def _import_row(ctx: Ctx, row: dict[str, str], mode: str, dedupe: str) -> tuple[str, str]:
    body = _row_body(ctx, row)
    existing = _existing(ctx, row, dedupe)
    if existing is not None:
        if mode == "create":
            return "skipped", existing["id"]
        c._apply(ctx, existing, body)
        ctx.save("contact", existing)
        return "updated", existing["id"]
    if mode == "update":
        return "skipped", ""
    return "created", c._new_contact(ctx, body)["id"]
