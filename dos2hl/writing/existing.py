"""What a sub-account already holds under our keys: HighLevel is the truth about what exists.

Before a phase writes, each location is read by **search pages** (contacts and custom-object records
500 a page, opportunities 100 a page per pipeline, media files 100 a page), never one lookup per
record, and what carries one of our keys is kept as an inventory in the run's storage
(``inventory/<LOC>.json``): contacts by ``Source_System_ID``, records by ``source_id``, opportunities
by contact + pipeline + the id stamped in their name, files by their id-only name. A contact found
there is *adopted*: its notes, calendar events and relations are read once per adopted contact (the
API has no location-wide search for them), when its first child is about to be written.

The inventory holds ids and salted digests of each field's normalised value (the same normalisation
the field diff uses), never a value: the writer compares its payload with them, leaves an equal record
alone and updates one that differs, its before-image in the ledger. So a second run of the same export
under a new run id (lost storage, another machine) creates nothing and changes nothing.

A sealed value opens only for its record (the envelope binds the record's stable key): contacts and
records are opened while the inventory is taken (their key is known from the id they carry); an
opportunity's key is known only when the writer matches it, so its sealed values are kept sealed
(``"s"``) and opened then.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..highlevel.protocols import Client
from ..phi import PREFIX
from ..planning.keys import stable_key
from ..planning.transform import CONTACT_STANDARD, OBJECT_NAMES
from ..storage import Store
from .verify import comparable

__all__ = ["Inventory", "event_key", "note_key", "note_stamp", "opportunity_stamp", "take_inventory",
           "load_inventory", "save_inventory"]

Opener = Callable[[str, str, str], str]  # (sealed value, field, record's stable key) -> plain
_NOTE_STAMP = re.compile(r"(log|referral|document|clinical note) #([\w:-]+)(?: · image (\d+))?")
_OPP_STAMP = re.compile(r"\(#[\w:-]+\)\s*$")


def note_stamp(body: str | None) -> str | None:
    """The id a note of ours carries in its first line (``log #12``, ``document #7``, ``clinical note #3 ·
    image 2``): the key a note is found by, whatever else its text says."""
    first = (body or "").split("\n", 1)[0]
    if not first.startswith("[Dent-O-Soft"):
        return None
    m = _NOTE_STAMP.search(first)
    return None if m is None else " ".join(x for x in m.groups() if x)


def opportunity_stamp(name: str | None) -> str:
    """An appointment's opportunity is keyed by the ``(#id)`` that ends its name (its date may change);
    a recall's name (type + patient id) is its key."""
    name = (name or "").strip()
    m = _OPP_STAMP.search(name)
    return m.group(0).strip() if m else name


def note_key(body: str | None) -> str:
    """How a note is found on its contact: its stamp, else its exact text (hashed)."""
    return note_stamp(body) or "body:" + _fp(body or "")


def event_key(calendar_id: str | None, start: str | None) -> str:
    """How a calendar event is found on its contact: calendar + start instant (UTC)."""
    import datetime as dt

    try:
        instant = dt.datetime.fromisoformat(str(start).replace("Z",
                                                               "+00:00")).astimezone(dt.timezone.utc).isoformat()
    except ValueError:
        instant = str(start)
    return f"{calendar_id}|{instant}"


def _fp(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


@dataclass
class Inventory:
    """One location's inventory: key -> {"id": HighLevel id, "d": field -> digest} (``media``: name ->
    {"id", "url"}); ``salt`` makes the digests of this inventory its own."""

    location: str
    salt: str = field(default_factory=lambda: secrets.token_hex(16))
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0  # the pages this inventory cost

    # ---- digests ---------------------------------------------------------------------------------------
    def digest(self, name: str, value: Any) -> str | None:
        if value is None or value == "" or value == []:
            return None
        return hashlib.sha256(f"{self.salt}\x1f{name}\x1f{comparable(value)}".encode()).hexdigest()[:16]

    def digests(self, values: Mapping[str, Any]) -> dict[str, str]:
        return {k: d for k, v in values.items() if (d := self.digest(k, v)) is not None}

    def differs(self, found: Mapping[str, Any], expected: Mapping[str, Any], *,
                open_sealed: Opener | None = None,
                record: str = "") -> list[str]:
        """The fields of ``expected`` (plain values) that HighLevel holds otherwise (names only); values kept
        sealed in the inventory are opened for ``record``."""
        have = dict(found.get("d") or {})
        for k, sealed in (found.get("s") or {}).items():
            plain = _plain(sealed, k, open_sealed, record)
            if plain is not sealed and (d := self.digest(k, plain)) is not None:
                have[k] = d
        return sorted(
            k for k, v in expected.items() if (d := self.digest(k, v)) is not None and have.get(k) != d
        )

    @staticmethod
    def opportunity_key(contact_id: str, pipeline_id: str, name: str) -> str:
        return _fp(contact_id, pipeline_id, opportunity_stamp(name))

    def to_json(self) -> bytes:
        return json.dumps({"location": self.location, "salt": self.salt, "contacts": self.contacts,
                           "records": self.records, "opportunities": self.opportunities, "media": self.media,
                           "requests": self.requests}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Inventory:
        return cls(**json.loads(data))

    def __len__(self) -> int:
        return len(self.contacts) + len(self.records) + len(self.opportunities) + len(self.media)


def _plain(value: Any, key: str, open_sealed: Opener | None, record: str) -> Any:
    if open_sealed is not None and isinstance(value, str) and value.startswith(PREFIX):
        try:
            return open_sealed(value, key, record)
        except Exception:  # noqa: BLE001 - another key, another record's value: compares as different
            return value
    return value


def contact_fields(data: Mapping[str, Any], custom: Mapping[str, Any], *, open_sealed: Opener | None = None,
                   record: str = "") -> dict[str, Any]:
    """A contact's comparable fields (standard names, custom fields by key, owner), plain (sealed values
    opened for ``record``, the contact's stable key)."""
    out = {k: data.get(k) for k in CONTACT_STANDARD if data.get(k) is not None}
    out.update({k: _plain(v, k, open_sealed, record) for k, v in custom.items()})
    if data.get("assignedTo"):
        out["assignedTo"] = data["assignedTo"]
    return out


def record_fields(object_key: str, props: Mapping[str, Any], *, open_sealed: Opener | None = None,
                  record: str = "") -> dict[str, Any]:
    return {k: _plain(v, f"{object_key}.{k}", open_sealed, record) for k, v in props.items()}


def opportunity_fields(o: Any, custom: Mapping[str, Any], *, open_sealed: Opener | None = None,
                       record: str = "") -> dict[str, Any]:
    data = o.model_dump() if hasattr(o, "model_dump") else dict(o)
    out = {k: data.get(k) for k in ("name", "status", "pipelineStageId", "monetaryValue", "assignedTo")}
    out.update({k: _plain(v, k, open_sealed, record) for k, v in custom.items()})
    return {k: v for k, v in out.items() if v is not None}


def take_inventory(client: Client, *, location: str, contact_fields_ids: Mapping[str, str],
                   opportunity_fields_ids: Mapping[str, str] | None = None, object_keys: Iterable[str] = (),
                   pipeline_ids: Iterable[str] = (), media: bool = False,
                   open_sealed: Opener | None = None) -> Inventory:
    """Read the location by search pages and keep what carries our keys (see the module's text)."""
    inv = Inventory(location)
    sent0 = _sent(client)
    sid_field = contact_fields_ids.get("contact.source_system_id")
    by_id = {v: k for k, v in contact_fields_ids.items()}
    if sid_field:
        for c in client.search_contacts_all(page_limit=500):
            sid = c.custom_value(sid_field)
            if sid is None or str(sid) == "":
                continue
            custom = {by_id[cf.id]: (cf.value if cf.value is not None else cf.fieldValue)
                      for cf in c.customFields if cf.id in by_id}
            sk = stable_key(location, "patient", str(sid))
            inv.contacts[sk] = {
                "id": c.id,
                "d": inv.digests(contact_fields(c.model_dump(), custom, open_sealed=open_sealed, record=sk)),
            }
    for key in sorted(set(object_keys)):
        obj = OBJECT_NAMES.get(key)
        if obj is None:
            continue
        for r in client.search_records_all(key, page_limit=500):
            props = r.properties or {}
            sid = props.get("source_id")
            if sid is None or str(sid) == "":
                continue
            sk = stable_key(location, obj, _sid(sid))
            inv.records[sk] = {
                "id": r.id,
                "d": inv.digests(record_fields(key, props, open_sealed=open_sealed, record=sk)),
            }
    opp_by_id = {v: k for k, v in (opportunity_fields_ids or {}).items()}
    for pid in sorted(set(pipeline_ids)):
        page = 1
        while page <= 10_000:  # bounded: 1M opportunities per pipeline
            got = client.search_opportunities(pipeline_id=pid, limit=100, page=page).opportunities
            for o in got:
                if not o.contactId:
                    continue
                custom = {opp_by_id[cf.id]: (cf.fieldValue if cf.fieldValue is not None else cf.value)
                          for cf in o.customFields if cf.id in opp_by_id}
                sealed = {k: v for k, v in custom.items() if isinstance(v, str) and v.startswith(PREFIX)}
                plain = {k: v for k, v in custom.items() if k not in sealed}
                entry: dict[str, Any] = {"id": o.id, "d": inv.digests(opportunity_fields(o, plain))}
                if sealed:  # opened by the writer, which knows the opportunity's stable key
                    entry["s"] = sealed
                inv.opportunities[Inventory.opportunity_key(o.contactId, pid, o.name or "")] = entry
            if len(got) < 100:
                break
            page += 1
    if media:
        offset = 0
        while offset < 10_000_000:  # bounded
            files = client.list_media(offset=offset, limit=100)
            for f in files:
                if f.name:
                    inv.media.setdefault(f.name, {"id": f.id, "url": f.url})
            if len(files) < 100:
                break
            offset += 100
    inv.requests = _sent(client) - sent0
    return inv


def _sid(v: Any) -> str:
    """A source id as the payloads carry it (``12``, not ``12.0``)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _sent(client: Client) -> int:
    return int((getattr(client, "stats", None) or {}).get("sent", 0))


def inventory_key(location: str) -> str:
    return f"inventory/{location}.json"


def save_inventory(run: Store, inv: Inventory) -> None:
    run.write_bytes(inventory_key(inv.location), inv.to_json())


def load_inventory(run: Store, location: str) -> Inventory:
    key = inventory_key(location)
    return Inventory.from_json(run.read_bytes(key)) if run.exists(key) else Inventory(location)
