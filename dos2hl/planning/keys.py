"""The keys a run's identity rests on (DESIGN.md, identity and the ledger): a record's stable key, the
same in every run and delta, and the digest of a payload that says whether a source row changed."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

__all__ = ["payload_hash", "stable_key"]


@functools.lru_cache(maxsize=1 << 16, typed=True)
def stable_key(location: str, obj: str, source_id: object) -> str:
    """sha256 of (source location, object, source primary key): the same in every run and delta.
    Cached: a patient's key is asked for by each of their records (typed: ``1`` and ``1.0`` differ)."""
    return hashlib.sha256(f"{location}\x1f{obj}\x1f{source_id}".encode()).hexdigest()[:32]


def payload_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str, separators=(",", ":")).encode()
                          ).hexdigest()[:16]
