"""The governor's usage, durable in the run's state store (a local path or ``s3://bucket/prefix/...``).

One JSON object (``RateGovernor.snapshot``): per key the daily usage of today and later days and the
grant times of the last interval. A local write is atomic (temp file + rename) and so is an S3 PUT, so
a crash leaves the previous snapshot. Restarted governors still wait one interval first (fail-safe).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..storage import Store, open_store

__all__ = ["load_snapshot", "save_snapshot", "snapshot_store"]


def snapshot_store(uri: str | Path) -> tuple[Store, str]:
    """The store and key for a snapshot URI: ``runs/state/governor.json`` or ``s3://b/p/governor.json``."""
    text = str(uri).rstrip("/")
    head, _, name = text.rpartition("/")
    if not name.endswith(".json"):
        raise ValueError(f"governor state {text!r} must name a .json object")
    return open_store(head or "."), name


def save_snapshot(snapshot: Mapping[str, Any], uri: str | Path) -> None:
    store, key = snapshot_store(uri)
    store.write_bytes(key, json.dumps(snapshot, separators=(",", ":")).encode())


def load_snapshot(uri: str | Path) -> dict[str, Any] | None:
    store, key = snapshot_store(uri)
    return json.loads(store.read_bytes(key)) if store.exists(key) else None
