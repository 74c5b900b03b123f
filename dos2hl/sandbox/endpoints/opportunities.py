"""Opportunities: pipelines, create / get / update / status / delete, search (opportunities.json).

``GET /opportunities/search`` takes snake_case query parameters (``location_id``, ``pipeline_id``,
``contact_id``), like the real API.
"""

from __future__ import annotations

from typing import Any

from ..core import ApiError, Ctx, handler, new_id

_FIELDS = ("name", "pipelineId", "pipelineStageId", "status", "monetaryValue", "assignedTo", "source",
           "lostReasonId")


@handler("opportunities:get-pipelines")
def pipelines(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"pipelines": ctx.store.list("pipeline", ctx.location_id)}


def _check_pipeline(ctx: Ctx, opp: dict[str, Any]) -> None:
    pipeline = next((p for p in ctx.store.list("pipeline", ctx.location_id) if p["id"] == opp["pipelineId"]),
                    None)
    if pipeline is None:
        raise ApiError(400, "Pipeline not found", error="Bad Request")
    stages = [s["id"] for s in pipeline["stages"]]
    if not opp.get("pipelineStageId"):
        opp["pipelineStageId"] = stages[0]
    elif opp["pipelineStageId"] not in stages:
        raise ApiError(400, "Pipeline stage not found in this pipeline", error="Bad Request")


def _custom_fields(ctx: Ctx, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from .contacts import _custom_fields as resolve

    return [{"id": k, "fieldValue": v} for k, v in resolve(ctx, items, model="opportunity").items()]


def _contact_summary(ctx: Ctx, contact_id: str) -> dict[str, Any]:
    c = ctx.own("contact", contact_id, "Contact")
    return {"id": c["id"], "name": c.get("name") or "", "companyName": c.get("companyName") or "",
            "email": c.get("email") or "", "phone": c.get("phone") or "", "tags": c.get("tags", [])}


@handler("opportunities:create-opportunity")
def create(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body
    opp: dict[str, Any] = {"id": new_id(), "locationId": ctx.location_id, "contactId": body["contactId"],
                           "contact": _contact_summary(ctx, body["contactId"]), "createdAt": ctx.iso(),
                           "updatedAt": ctx.iso(), "lastStatusChangeAt": ctx.iso(), "customFields": [],
                           "followers": []}
    opp.update({k: body[k] for k in _FIELDS if k in body})
    _check_pipeline(ctx, opp)
    if "customFields" in body:
        opp["customFields"] = _custom_fields(ctx, body["customFields"])
    ctx.save("opportunity", opp, indexed=True)
    return 201, {"opportunity": opp}


@handler("opportunities:get-opportunity")
def get(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"opportunity": ctx.own("opportunity", ctx.params["id"], "Opportunity")}


@handler("opportunities:update-opportunity")
def update(ctx: Ctx) -> tuple[int, Any]:
    opp = ctx.own("opportunity", ctx.params["id"], "Opportunity")
    body = ctx.body
    if body.get("status") and body["status"] != opp.get("status"):
        opp["lastStatusChangeAt"] = ctx.iso()
    opp.update({k: body[k] for k in _FIELDS if k in body})
    if "pipelineId" in body and "pipelineStageId" not in body:
        opp["pipelineStageId"] = None
    _check_pipeline(ctx, opp)
    if "customFields" in body:
        values = {c["id"]: c["fieldValue"] for c in opp.get("customFields", [])}
        values.update({c["id"]: c["fieldValue"] for c in _custom_fields(ctx, body["customFields"])})
        opp["customFields"] = [{"id": k, "fieldValue": v} for k, v in values.items()]
    opp["updatedAt"] = ctx.iso()
    ctx.save("opportunity", opp, indexed=True)
    return 200, {"opportunity": opp}


@handler("opportunities:update-opportunity-status")
def update_status(ctx: Ctx) -> tuple[int, Any]:
    opp = ctx.own("opportunity", ctx.params["id"], "Opportunity")
    opp.update({k: ctx.body[k] for k in ("status", "lostReasonId") if k in ctx.body})
    opp["lastStatusChangeAt"] = opp["updatedAt"] = ctx.iso()
    ctx.save("opportunity", opp, indexed=True)
    return 200, {"succeded": True}


@handler("opportunities:delete-opportunity")
def delete(ctx: Ctx) -> tuple[int, Any]:
    from .contacts import remove_relations

    opp = ctx.own("opportunity", ctx.params["id"], "Opportunity")
    remove_relations(ctx, {opp["id"]})
    ctx.remove("opportunity", opp["id"], indexed=True)
    return 200, {"succeded": True}


@handler("opportunities:search-opportunity")
def search(ctx: Ctx) -> tuple[int, Any]:
    docs = ctx.store.indexed("opportunity", ctx.location_id, ctx.now)
    for param, field in (("pipeline_id", "pipelineId"), ("pipeline_stage_id", "pipelineStageId"),
                         ("contact_id", "contactId"), ("assigned_to", "assignedTo"), ("id", "id")):
        value = ctx.q(param)
        if value:
            docs = [d for d in docs if d.get(field) == value]
    status = ctx.q("status")
    if status and status != "all":
        docs = [d for d in docs if d.get("status") == status]
    q = (ctx.q("q") or "").lower()
    if q:
        docs = [d for d in docs if q in (d.get("name") or "").lower()]
    limit = int(float(ctx.q("limit", "20") or 20))
    if limit > 100:
        raise ApiError(422, ["limit must not be greater than 100"], error="Unprocessable Entity")
    start = 0
    after_id = ctx.q("startAfterId")
    if after_id:
        start = next((i + 1 for i, d in enumerate(docs) if d["id"] == after_id), len(docs))
    elif ctx.q("page"):
        start = (int(float(ctx.q("page") or 1)) - 1) * limit
    window = docs[start:start + limit]
    meta: dict[str, Any] = {"total": len(docs), "currentPage": start // max(limit, 1) + 1}
    if start + limit < len(docs) and window:
        meta.update({"startAfterId": window[-1]["id"], "startAfter": start + limit,
                     "nextPage": meta["currentPage"] + 1})
    return 200, {"opportunities": window, "meta": meta}
