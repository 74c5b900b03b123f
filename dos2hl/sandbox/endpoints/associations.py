"""Associations (definitions between two object types) and relations (between two records).

* An association joins two object keys (``contact``, ``opportunity``, ``business`` or one of the
  location's ``custom_objects.<name>``); its ``key`` is unique in the location; at most 10
  association labels between any two objects (NOTES.md §2.5).
* A relation's ``firstRecordId`` must be a record of the association's first object and
  ``secondRecordId`` one of its second object, both live in the caller's location; otherwise 400.
  The same pair cannot be related twice under one association: 400 with HighLevel's own text
  (``DUPLICATE_RELATION``).
* Deleting an association deletes its relations; deleting a record (objects.py) deletes its own.
"""

from __future__ import annotations

from typing import Any

from ..core import ApiError, Ctx, handler, new_id
from .objects import object_exists, object_key

MAX_LABELS_PER_PAIR = 10
#: HighLevel's answer to the same pair related twice under one association (400; highlevel-api-docs#73,
#: docs/highlevel-errors.md): its association id follows the text.
DUPLICATE_RELATION = ("Could not create relation: duplicate relation of object Ids for given association "
                      "{association_id}")


def _record_in_location(ctx: Ctx, object_key_: str, record_id: str) -> bool:
    if object_key_ in ("contact", "opportunity"):
        found = ctx.store.get(object_key_, record_id)
        return found is not None and found[0] == ctx.location_id
    if object_key_ == "business":
        return False  # businesses are not emulated
    found = ctx.store.get("record", record_id)
    return found is not None and found[0] == ctx.location_id and found[1].get("objectKey") == object_key_


@handler("associations:create-association")
def create_association(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    first, second = object_key(body["firstObjectKey"]), object_key(body["secondObjectKey"])
    for k in (first, second):
        if not object_exists(ctx, k):
            raise ApiError(400, f"Object {k} not found in this location", error="Bad Request")
    existing = ctx.store.list("association", ctx.location_id)
    if any(a["key"] == body["key"] for a in existing):
        raise ApiError(400, f"Association with key {body['key']} already exists", error="Bad Request")
    pair = {first, second}
    if sum(1 for a in existing if {a["firstObjectKey"], a["secondObjectKey"]} == pair) >= MAX_LABELS_PER_PAIR:
        raise ApiError(400, f"A maximum of {MAX_LABELS_PER_PAIR} associations is allowed between two objects",
                       error="Bad Request")
    assoc = {"id": new_id(), "locationId": ctx.location_id, "key": body["key"],
             "firstObjectKey": first, "firstObjectLabel": body["firstObjectLabel"],
             "secondObjectKey": second, "secondObjectLabel": body["secondObjectLabel"],
             "associationType": "USER_DEFINED"}
    ctx.save("association", assoc)
    return 201, assoc


@handler("associations:find-associations")
def find_associations(ctx: Ctx) -> tuple[int, Any]:
    items = ctx.store.list("association", ctx.location_id)
    skip, limit = int(ctx.q("skip", "0") or 0), int(ctx.q("limit", "100") or 100)
    return 200, {"associations": items[skip:skip + limit], "total": len(items)}


@handler("associations:get-association-by-ID")
def get_association(ctx: Ctx) -> tuple[int, Any]:
    return 200, ctx.own("association", ctx.params["associationId"], "Association")


@handler("associations:delete-association")
def delete_association(ctx: Ctx) -> tuple[int, Any]:
    assoc = ctx.own("association", ctx.params["associationId"], "Association")
    for rel in ctx.store.list("relation", ctx.location_id):
        if rel["associationId"] == assoc["id"]:
            ctx.remove("relation", rel["id"])
    ctx.remove("association", assoc["id"])
    return 200, {"deleted": True, "id": assoc["id"], "message": "Association deleted successfully"}


@handler("associations:create-relation")
def create_relation(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    found = ctx.store.get("association", body["associationId"])
    if found is None or found[0] != ctx.location_id:
        raise ApiError(400, "Association not found", error="Bad Request")
    assoc = found[1]
    for side in ("first", "second"):
        rid, okey = body[f"{side}RecordId"], assoc[f"{side}ObjectKey"]
        if not _record_in_location(ctx, okey, rid):
            raise ApiError(400, f"{side}RecordId {rid} is not a {okey} record of this location",
                           error="Bad Request")
    for rel in ctx.store.relations_of(ctx.location_id, [body["firstRecordId"]]):
        if (rel["associationId"], rel["firstRecordId"], rel["secondRecordId"]) == \
                (assoc["id"], body["firstRecordId"], body["secondRecordId"]):
            raise ApiError(400, DUPLICATE_RELATION.format(association_id=assoc["id"]), error="Bad Request")
    rel = {"id": new_id(), "associationId": assoc["id"], "firstRecordId": body["firstRecordId"],
           "secondRecordId": body["secondRecordId"], "locationId": ctx.location_id,
           "firstObjectKey": assoc["firstObjectKey"], "secondObjectKey": assoc["secondObjectKey"],
           "createdAt": ctx.iso()}
    ctx.save("relation", rel)
    return 201, rel


@handler("associations:get-relations-by-record-id")
def list_relations(ctx: Ctx) -> tuple[int, Any]:
    rid = ctx.params["recordId"]
    wanted = set(ctx.query.get("associationIds") or [])
    items = [r for r in ctx.store.relations_of(ctx.location_id, [rid])
             if not wanted or r["associationId"] in wanted]
    skip, limit = int(ctx.q("skip", "0") or 0), int(ctx.q("limit", "100") or 100)
    return 200, {"relations": items[skip:skip + limit], "total": len(items)}


@handler("associations:delete-relation")
def delete_relation(ctx: Ctx) -> tuple[int, Any]:
    rel = ctx.own("relation", ctx.params["relationId"], "Relation")
    ctx.remove("relation", rel["id"])
    return 200, rel
