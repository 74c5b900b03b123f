"""The provision ledger: which fields dos2hl created in a sub-account (ids, keys, types; no values).

HighLevel does not say who created a custom field, and cannot change a field's dataType in place.
So that ``provision`` may repair a type conflict it caused itself (a field created as TEXT that the
map now needs as SINGLE_OPTIONS: the export gained its options, a user-defined field changed type,
the map was edited), every field it creates is recorded here, by HighLevel id, at creation. A field
with the same key that is not in the ledger (made by hand, or by dos2hl before the ledger existed,
or deleted and made again by someone) is not ours, and a conflict on it stays the admin's.

One JSON file per sub-account: ``<storage>/provision/<location id>.json`` in the runs storage
(``DOS2HL_STORAGE``, a folder or s3://), so every machine that provisions the practice shares it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

__all__ = ["ProvisionLedger"]


class ProvisionLedger:
    def __init__(self, store: Any, location_id: str) -> None:
        self.store = store
        self.key = f"provision/{location_id}.json"

    @classmethod
    def open(cls, storage: str, location_id: str, s3: Any = None) -> ProvisionLedger:
        from ..storage import open_store

        return cls(open_store(storage, s3), location_id)

    def fields(self) -> dict[str, dict[str, str]]:
        """field id -> {key, data_type, model, at}."""
        if not self.store.exists(self.key):
            return {}
        return dict(json.loads(self.store.read_bytes(self.key)).get("fields", {}))

    def owned(self) -> frozenset[str]:
        return frozenset(self.fields())

    def _write(self, fields: dict[str, dict[str, str]]) -> None:
        self.store.write_bytes(self.key, json.dumps({"version": 1, "fields": fields}, indent=1,
                                                    sort_keys=True).encode())

    def record(self, field_id: str, key: str, data_type: str, model: str) -> None:
        """Right after a create (so a crash later in the apply does not lose it)."""
        fields = self.fields()
        fields[field_id] = {"key": key, "data_type": data_type, "model": model,
                            "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        self._write(fields)

    def forget(self, field_id: str) -> None:
        fields = self.fields()
        if fields.pop(field_id, None) is not None:
            self._write(fields)
