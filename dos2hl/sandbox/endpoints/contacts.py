"""Contacts: create / upsert / get / update / delete / search, tags, notes, tasks (contacts.json).

Duplicate rule (NOTES.md §2.2), per location setting ``settings.allowDuplicateContact``:
* create, duplicates not allowed: an existing contact with the same email (checked first) or
  phone -> 400 ``{"message": "This location does not allow duplicated contacts.", "meta":
  {"contactId", "contactName", "matchingField"}}``;
* upsert: matches by email first, then phone; the matched contact is *updated* (tags overwritten).
  When the email matches one contact and the phone another, the phone is silently dropped. So two
  family members sharing an email collapse into one contact: the second upsert rewrites the first
  person's name. ``createNewIfDuplicateAllowed`` creates anyway only when the location allows it.

Delete cascades: the contact's notes, tasks, appointments and opportunities go with it (an
opportunity or appointment cannot outlive its contact in HighLevel), and so does every association
relation of the contact or of those opportunities.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from ..core import ApiError, Ctx, handler, new_id
from ..search import field_value, matches, paginate

_COPY = ("firstName", "lastName", "name", "email", "phone", "gender", "address1", "city", "state",
         "postalCode", "country", "website", "timezone", "companyName", "source", "dateOfBirth",
         "assignedTo", "dnd", "dndSettings")
DUPLICATE_MESSAGE = "This location does not allow duplicated contacts."


def normalise_phone(phone: str | None) -> str | None:
    """E.164-ish, as HighLevel stores phones: digits, +1 for ten-digit North American numbers."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 10:
        return "+1" + digits
    return "+" + digits if digits else None


def _custom_fields(ctx: Ctx, items: list[dict[str, Any]], model: str = "contact") -> dict[str, Any]:
    """Resolve written custom fields (id or key; field_value or value) to {field id: value}."""
    fields = [f for f in ctx.store.list("custom_field",
                                        ctx.location_id) if f.get("model", "contact") == model]
    by_id = {f["id"]: f for f in fields}
    by_key = {f["fieldKey"]: f for f in fields}
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        field = by_id.get(item.get("id") or "") or by_key.get(item.get("key") or "") \
            or by_key.get(f"{model}.{item.get('key')}")
        if field is None:
            raise ApiError(400, f"customFields.{i}: unknown custom field {item.get('id') or item.get('key')}",
                           error="Bad Request")
        value = item.get("field_value", item.get("value"))
        kind = field["dataType"]
        if value is not None:
            if kind in ("NUMERICAL", "MONETORY") and not isinstance(value, (int, float)):
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise ApiError(422, [f"customFields.{i}.field_value must be a number"],
                                   error="Unprocessable Entity") from None
            if kind in ("CHECKBOX", "MULTIPLE_OPTIONS") and not isinstance(value, list):
                value = [value]
            options = field.get("picklistOptions") or []
            if kind in ("SINGLE_OPTIONS", "RADIO", "CHECKBOX", "MULTIPLE_OPTIONS") and options:
                bad = [v for v in (value if isinstance(value, list) else [value]) if v not in options]
                if bad:
                    raise ApiError(422,
                                   [f"customFields.{i}.field_value must be one of: {', '.join(options)}"],
                                   error="Unprocessable Entity")
        out[field["id"]] = value
    return out


def _apply(ctx: Ctx, contact: dict[str, Any], body: dict[str, Any], *, tags_overwrite: bool = True) -> None:
    for key in _COPY:
        if key in body:
            contact[key] = body[key]
    if "phone" in body:
        contact["phone"] = normalise_phone(body["phone"])
    if "tags" in body and tags_overwrite:
        contact["tags"] = _tags(ctx, body["tags"])
    if "customFields" in body:
        values = {c["id"]: c["value"] for c in contact.get("customFields") or []}
        values.update(_custom_fields(ctx, body["customFields"]))
        contact["customFields"] = [{"id": k,
                                    "value": v} for k, v in values.items() if v not in (None, "", [])]
    first, last = contact.get("firstName"), contact.get("lastName")
    if "name" not in body and (first or last):
        contact["name"] = " ".join(p for p in (first, last) if p)
    for src, dst in (("firstName", "firstNameLowerCase"), ("lastName", "lastNameLowerCase"),
                     ("name", "fullNameLowerCase"), ("email", "emailLowerCase")):
        if contact.get(src):
            contact[dst] = contact[src].lower()
    contact["dateUpdated"] = ctx.iso()


def _tags(ctx: Ctx, tags: list[str]) -> list[str]:
    """HighLevel lower-cases tags and adds unknown ones to the location's tag list."""
    out = list(dict.fromkeys(t.strip().lower() for t in tags if t and t.strip()))
    known = {t["name"] for t in ctx.store.list("tag", ctx.location_id)}
    for t in out:
        if t not in known:
            ctx.save("tag", {"id": new_id(), "name": t, "locationId": ctx.location_id})
    return out


def _find_duplicate(ctx: Ctx, email: str | None, phone: str | None,
                    exclude: str | None = None) -> tuple[dict[str, Any], str] | None:
    contacts = [c for c in ctx.store.list("contact", ctx.location_id) if c["id"] != exclude]
    if email:
        for c in contacts:
            if (c.get("email") or "").lower() == email.lower():
                return c, "email"
    if phone:
        for c in contacts:
            if c.get("phone") and c["phone"] == phone:
                return c, "phone"
    return None


def _duplicate_error(found: tuple[dict[str, Any], str]) -> ApiError:
    contact, field = found
    return ApiError(400, DUPLICATE_MESSAGE, meta={"contactId": contact["id"],
                                                  "contactName": contact.get("name") or "",
                                                  "matchingField": field})


def _allow_duplicates(ctx: Ctx) -> bool:
    return bool(ctx.location.get("settings", {}).get("allowDuplicateContact", ctx.settings.allow_duplicates))


def _new_contact(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    contact: dict[str, Any] = {"id": new_id(), "locationId": ctx.location_id, "type": "lead",
                               "dateAdded": ctx.iso(), "tags": [], "customFields": []}
    _apply(ctx, contact, body)
    ctx.save("contact", contact, indexed=True)
    return contact


@handler("contacts:create-contact")
def create_contact(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    if not _allow_duplicates(ctx):
        found = _find_duplicate(ctx, body.get("email"), normalise_phone(body.get("phone")))
        if found:
            raise _duplicate_error(found)
    return 201, {"contact": _new_contact(ctx, body)}


@handler("contacts:upsert-contact")
def upsert_contact(ctx: Ctx) -> tuple[int, Any]:
    body = dict(ctx.body)
    create_anyway = body.pop("createNewIfDuplicateAllowed", False) and _allow_duplicates(ctx)
    found = None if create_anyway else _find_duplicate(ctx, body.get("email"),
                                                       normalise_phone(body.get("phone")))
    trace = str(uuid.uuid4())
    if found is None:
        return 200, {"new": True, "contact": _new_contact(ctx, body), "traceId": trace}
    contact, field = found
    if field == "email" and body.get("phone"):
        other = _find_duplicate(ctx, None, normalise_phone(body["phone"]), exclude=contact["id"])
        if other is not None:
            body.pop("phone")  # issue #37: the second identifier is silently ignored
    _apply(ctx, contact, body)
    ctx.save("contact", contact, indexed=True)
    return 200, {"new": False, "contact": contact, "traceId": trace}


@handler("contacts:get-contact")
def get_contact(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"contact": ctx.own("contact", ctx.params["contactId"], "Contact")}


@handler("contacts:update-contact")
def update_contact(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    body = ctx.body
    if not _allow_duplicates(ctx) and ("email" in body or "phone" in body):
        found = _find_duplicate(ctx, body.get("email"), normalise_phone(body.get("phone")),
                                exclude=contact["id"])
        if found:
            raise _duplicate_error(found)
    _apply(ctx, contact, body)
    ctx.save("contact", contact, indexed=True)
    return 200, {"succeded": True, "contact": contact}


@handler("contacts:delete-contact")
def delete_contact(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    with ctx.store.tx():
        gone = {contact["id"]}
        for kind in ("note", "task", "appointment", "opportunity"):
            for doc in ctx.store.list(kind, ctx.location_id):
                if doc.get("contactId") == contact["id"]:
                    ctx.remove(kind, doc["id"], indexed=kind == "opportunity")
                    gone.add(doc["id"])
        remove_relations(ctx, gone)
        ctx.remove("contact", contact["id"], indexed=True)
    return 200, {"succeded": True}


def remove_relations(ctx: Ctx, record_ids: set[str]) -> None:
    """Delete every relation one of ``record_ids`` is a side of (they go with their records)."""
    for rel in ctx.store.relations_of(ctx.location_id, record_ids):
        ctx.remove("relation", rel["id"])


@handler("contacts:search-contacts-advanced")
def search_contacts(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    docs = ctx.store.indexed("contact", ctx.location_id, ctx.now)
    filters = body.get("filters") or []
    query = (body.get("query") or "").lower()
    hits = [d for d in docs if all(matches(d, f) for f in filters)
            and (not query or any(query in str(d.get(k) or "").lower()
                                  for k in ("name", "email", "phone", "companyName")))]
    page, total = paginate(hits, sort=body.get("sort") or [], getter=field_value,
                           page_limit=body["pageLimit"], page=body.get("page"),
                           search_after=body.get("searchAfter"))
    return 200, {"contacts": [{**d, "searchAfter": cursor} for d, cursor in page], "total": total}


@handler("contacts:get-duplicate-contact")
def get_duplicate(ctx: Ctx) -> tuple[int, Any]:
    found = _find_duplicate(ctx, ctx.q("email"), normalise_phone(ctx.q("number")))
    return 200, {"contact": found[0] if found else None}


@handler("contacts:add-tags")
def add_tags(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    contact["tags"] = list(dict.fromkeys([*contact.get("tags", []), *_tags(ctx, ctx.body["tags"])]))
    contact["dateUpdated"] = ctx.iso()
    ctx.save("contact", contact, indexed=True)
    return 201, {"tags": contact["tags"]}


@handler("contacts:remove-tags")
def remove_tags(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    drop = {t.strip().lower() for t in ctx.body["tags"]}
    contact["tags"] = [t for t in contact.get("tags", []) if t not in drop]
    contact["dateUpdated"] = ctx.iso()
    ctx.save("contact", contact, indexed=True)
    return 200, {"tags": contact["tags"]}


@handler("contacts:create-association")  # sic: bulk tags add/remove
def bulk_tags(ctx: Ctx) -> tuple[int, Any]:
    kind = ctx.params["type"]
    if kind not in ("add", "remove"):
        raise ApiError(400, "type must be add or remove", error="Bad Request")
    errors, responses = 0, []
    for cid in ctx.body["contacts"]:
        found = ctx.store.get("contact", cid)
        if found is None or found[0] != ctx.location_id:
            errors += 1
            responses.append(f"{cid}: not found")
            continue
        contact = found[1]
        tags = _tags(ctx, ctx.body["tags"]) if kind == "add" else [t.lower() for t in ctx.body["tags"]]
        if kind == "add":
            contact["tags"] = list(dict.fromkeys([*contact.get("tags", []), *tags]))
        elif ctx.body.get("removeAllTags"):
            contact["tags"] = []
        else:
            contact["tags"] = [t for t in contact.get("tags", []) if t not in tags]
        ctx.save("contact", contact, indexed=True)
        responses.append(f"{cid}: ok")
    return 201, {"succeded": errors == 0, "errorCount": errors, "responses": responses}


# -- notes -------------------------------------------------------------------------------------
@handler("contacts:create-note")
def create_note(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    note = {"id": new_id(), "contactId": contact["id"], "dateAdded": ctx.iso(), **ctx.body}
    ctx.save("note", note)
    return 201, {"note": note}


@handler("contacts:get-all-notes")
def list_notes(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    return 200, {"notes": [n for n in ctx.store.list("note", ctx.location_id)
                           if n["contactId"] == contact["id"]]}


def _note(ctx: Ctx) -> dict[str, Any]:
    ctx.own("contact", ctx.params["contactId"], "Contact")
    note = ctx.own("note", ctx.params["id"], "Note")
    if note["contactId"] != ctx.params["contactId"]:
        raise ApiError(404, "Note not found", error="Not Found")
    return note


@handler("contacts:get-note")
def get_note(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"note": _note(ctx)}


@handler("contacts:update-note")
def update_note(ctx: Ctx) -> tuple[int, Any]:
    note = {**_note(ctx), **ctx.body}
    ctx.save("note", note)
    return 200, {"note": note}


@handler("contacts:delete-note")
def delete_note(ctx: Ctx) -> tuple[int, Any]:
    ctx.remove("note", _note(ctx)["id"])
    return 200, {"succeded": True}


# -- tasks -------------------------------------------------------------------------------------
@handler("contacts:create-task")
def create_task(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    task = {"id": new_id(), "contactId": contact["id"], **ctx.body}
    ctx.save("task", task)
    return 201, {"task": task}


@handler("contacts:get-all-tasks")
def list_tasks(ctx: Ctx) -> tuple[int, Any]:
    contact = ctx.own("contact", ctx.params["contactId"], "Contact")
    return 200, {"tasks": [t for t in ctx.store.list("task", ctx.location_id)
                           if t["contactId"] == contact["id"]]}


def _task(ctx: Ctx) -> dict[str, Any]:
    ctx.own("contact", ctx.params["contactId"], "Contact")
    task = ctx.own("task", ctx.params["taskId"], "Task")
    if task["contactId"] != ctx.params["contactId"]:
        raise ApiError(404, "Task not found", error="Not Found")
    return task


@handler("contacts:get-task")
def get_task(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"task": _task(ctx)}


@handler("contacts:update-task", "contacts:update-task-completed")
def update_task(ctx: Ctx) -> tuple[int, Any]:
    task = {**_task(ctx), **ctx.body}
    ctx.save("task", task)
    return 200, {"task": task}


@handler("contacts:delete-task")
def delete_task(ctx: Ctx) -> tuple[int, Any]:
    ctx.remove("task", _task(ctx)["id"])
    return 200, {"succeded": True}
