"""Just enough multipart/form-data parsing for media and custom-field uploads (stdlib only)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

__all__ = ["parse_form"]


def parse_form(body: bytes, content_type: str) -> dict[str, Any]:
    """``{"fields": {name: str}, "files": {name: {"filename", "content_type", "size", "data"}}}``."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    files: dict[str, dict[str, Any]] = {}
    if not message.is_multipart():
        return {"fields": fields, "files": files}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = {"filename": filename, "content_type": part.get_content_type(),
                           "size": len(data), "data": data}
        else:
            fields[name] = data.decode("utf-8", "replace")
    return {"fields": fields, "files": files}
