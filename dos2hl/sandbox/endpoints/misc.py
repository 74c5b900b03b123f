"""Users (list, search, get), workflows (list) and media uploads (users/workflows/medias.json)."""

from __future__ import annotations

from typing import Any

from ..core import ApiError, Ctx, handler, new_id

MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # NOTES.md §2.10


@handler("users:get-user-by-location")
def list_users(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"users": ctx.store.list("user", ctx.location_id)}


@handler("users:search-users")
def search_users(ctx: Ctx) -> tuple[int, Any]:
    if ctx.q("companyId") != ctx.location.get("companyId"):
        raise ApiError(403, "The token does not have access to this company.")
    users = ctx.store.list("user", ctx.location_id)
    query = (ctx.q("query") or "").lower()
    if query:
        users = [u for u in users if any(query in (u.get(k) or "").lower()
                                         for k in ("name", "email", "phone"))]
    skip, limit = int(ctx.q("skip", "0") or 0), int(ctx.q("limit", "25") or 25)
    return 200, {"users": users[skip:skip + limit], "count": len(users)}


@handler("users:get-user")
def get_user(ctx: Ctx) -> tuple[int, Any]:
    return 200, ctx.own("user", ctx.params["userId"], "User")


@handler("workflows:get-workflow")
def list_workflows(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"workflows": ctx.store.list("workflow", ctx.location_id)}


@handler("medias:upload-media-content")
def upload(ctx: Ctx) -> tuple[int, Any]:
    form = ctx.body if isinstance(ctx.body, dict) and "files" in ctx.body else {"fields": {}, "files": {}}
    fields, files = form["fields"], form["files"]
    item = files.get("file")
    if item is None and fields.get("hosted") != "true":
        raise ApiError(400, "file or hosted fileUrl is required", error="Bad Request")
    if item is not None and item["size"] > MAX_UPLOAD_BYTES:
        raise ApiError(413, "File size exceeds the 25 MB limit", error="Payload Too Large")
    file_id = new_id()
    name = fields.get("name") or (item["filename"] if item else fields.get("fileUrl", "file"))
    url = fields.get("fileUrl") if item is None else f"https://storage.sandbox.invalid/{ctx.location_id}/{file_id}"
    doc = {"id": file_id, "altId": ctx.location_id, "altType": "location", "name": name,
           "parentId": fields.get("parentId"), "url": url, "type": "file",
           "contentType": item["content_type"] if item else None,
           "size": item["size"] if item else None, "createdAt": ctx.iso()}
    ctx.save("file", {k: v for k, v in doc.items() if v is not None})
    return 200, {"fileId": file_id, "url": url}


@handler("medias:fetch-media-content")
def list_files(ctx: Ctx) -> tuple[int, Any]:
    """``query`` matches the file name (case-insensitive substring); ``offset``/``limit`` page (limit 100)."""
    files = ctx.store.list("file", ctx.location_id)
    query = (ctx.q("query") or "").lower()
    if query:
        files = [f for f in files if query in str(f.get("name") or "").lower()]
    offset, limit = int(ctx.q("offset") or 0), int(ctx.q("limit") or 100)
    return 200, {"files": files[offset:offset + limit]}


@handler("medias:delete-media-content")
def delete_file(ctx: Ctx) -> tuple[int, Any]:
    ctx.remove("file", ctx.own("file", ctx.params["id"], "File")["id"])
    return 200, {"success": True}
