"""``dump(state_dir)``: the whole sandbox state as one JSON-able dict, for tests and debugging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .store import Store

__all__ = ["dump"]

_LISTS = {"contacts": "contact", "notes": "note", "tasks": "task", "opportunities": "opportunity",
          "appointments": "appointment", "custom_fields": "custom_field",
          "custom_values": "custom_value", "tags": "tag",
          "associations": "association", "relations": "relation", "files": "file", "users": "user",
          "pipelines": "pipeline", "calendars": "calendar", "workflows": "workflow",
          "object_schemas": "object_schema", "custom_fields_v2": "cf2_field",
          "custom_field_folders": "cf2_folder"}


def dump(state_dir: Path) -> dict[str, Any]:
    """``{"locations": {id: {"contacts": [...], ..., "objects": {schema key: [records]}}}}``.

    Records are shaped as the API returns them. Tokens are not included.
    """
    store = Store(Path(state_dir))
    try:
        out: dict[str, Any] = {}
        for loc in store.locations():
            lid = loc["id"]
            entry: dict[str, Any] = {"location": loc}
            entry.update({name: store.list(kind, lid) for name, kind in _LISTS.items()})
            objects: dict[str, list[dict[str, Any]]] = {}
            for record in store.list("record", lid):
                objects.setdefault(record.get("objectKey", "?"), []).append(record)
            entry["objects"] = objects
            out[lid] = entry
        return {"locations": out}
    finally:
        store.close()
