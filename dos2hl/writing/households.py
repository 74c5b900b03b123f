"""Households: family members often share one email or phone, and a location that refuses duplicate
contacts would refuse (or merge, under upsert) the second. Per location, before any shard writes
(families span shards), the driver decides which patients leave a channel to a household member;
the writers (API and bulk) read that decision back from the run's storage."""

from __future__ import annotations

import json
from typing import Any

from ..mapping.model import Mapping as FieldMap
from ..planning.keys import stable_key
from ..planning.plan import read_staged, rows_of
from ..planning.transform import Transformer
from ..storage import Store, open_store

__all__ = ["household_channels", "households", "read_households", "write_households"]


def households(contacts: list[tuple[str, bool, str | None, str | None]]) -> dict[str, list[str]]:
    """(source id, is guarantor, email, phone) per patient -> per source id the channels it must not
    carry because a household member holds them: a guarantor sharing the value, else the lowest id."""
    holders: dict[tuple[str, str], str] = {}
    for sid, _g, email, phone in sorted(contacts, key=lambda c: (not c[1], _num(c[0]))):
        for name, v in (("email", email), ("phone", phone)):
            if v:
                holders.setdefault((name, str(v).lower()), sid)
    out: dict[str, list[str]] = {}
    for sid, _g, email, phone in contacts:
        for name, v in (("email", email), ("phone", phone)):
            if v and holders[(name, str(v).lower())] != sid:
                out.setdefault(sid, []).append(name)
    return out


def _num(sid: str) -> tuple[int, str]:
    return (int(sid), "") if sid.isdigit() else (1 << 62, sid)


def household_channels(staged_uri: str, mapping: dict[str, Any], location: str) -> dict[str, list[str]]:
    """Which patients of a location must leave their email/phone to a household member (``households``);
    computed over the whole location before any shard writes, since families span shards."""
    tf = Transformer(FieldMap.model_validate(mapping), location=location, key=stable_key,
                     seal=lambda text, _f, _r: text)  # only email and phone are read here
    rows = rows_of(read_staged(open_store(staged_uri), "patient", location))
    people = []
    for r in rows:
        if tf.excluded_patient(r):
            continue
        body = tf.contact(r).body
        people.append((str(r["pat_id"]), r.get("guar_id") == r["pat_id"], body.get("email"),
                       body.get("phone")))
    return households(people)


def write_households(run: Store, location: str, shared: dict[str, list[str]]) -> None:
    run.write_bytes(f"households/{location}.json", json.dumps(shared).encode())


def read_households(run: Store, location: str) -> dict[str, list[str]]:
    """Written by the driver only when the location refuses duplicate contacts; else empty."""
    key = f"households/{location}.json"
    return json.loads(run.read_bytes(key)) if run.exists(key) else {}
