"""Creating sub-accounts (locations) and their tokens in a sandbox state folder.

``init_locations`` is idempotent on an existing state: it adds locations only up to ``n`` and
never replaces a token, so restarting ``serve`` on the same ``--state`` keeps every id a client
(or a ledger) has recorded.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from .core import iso
from .store import Store, new_id

__all__ = ["MIGRATION_SCOPES", "SANDBOX_APP", "init_locations", "add_token", "add_oauth_app",
           "write_tokens_file"]

SANDBOX_APP = "dos2hl-sandbox"  # the one Marketplace app every sandbox token belongs to
# What a migration needs (NOTES.md §7), per Scopes.md; a write scope does not imply readonly.
MIGRATION_SCOPES = (
    "contacts.readonly", "contacts.write", "locations.readonly",
    "locations/customFields.readonly", "locations/customFields.write",
    "locations/customValues.readonly", "locations/customValues.write",
    "locations/tags.readonly", "locations/tags.write",
    "objects/schema.readonly", "objects/schema.write", "objects/record.readonly", "objects/record.write",
    "associations.readonly", "associations.write",
    "associations/relation.readonly", "associations/relation.write",
    "opportunities.readonly", "opportunities.write",
    "calendars.readonly", "calendars/events.readonly", "calendars/events.write",
    "users.readonly", "medias.readonly", "medias.write", "workflows.readonly",
)
_USERS = (("Dana", "Molar", "admin"), ("Sam", "Hygienist", "user"), ("Alex", "Frontdesk", "user"))
_PIPELINES = {"Appointments": ("Scheduled", "Confirmed", "Completed", "No show"),
              "Recall": ("Due", "Contacted", "Booked", "Lost")}


def add_token(state_dir: Path, location_id: str, scopes: tuple[str, ...] | list[str] = MIGRATION_SCOPES,
              *, app: str = SANDBOX_APP) -> str:
    """Issue one more token for a location (tests use it for narrow scopes)."""
    store = Store(state_dir)
    try:
        if store.location(location_id) is None:
            raise ValueError(f"unknown location {location_id!r}")
        token = "pit-" + secrets.token_urlsafe(24)
        store.add_token(token, location_id, app, list(scopes))
        return token
    finally:
        store.close()


def add_oauth_app(state_dir: Path, location_id: str,
                  scopes: tuple[str, ...] | list[str] = MIGRATION_SCOPES) -> dict[str, str]:
    """Install an OAuth app on a location: ``{client_id, client_secret, refresh_token, code}``
    (also ``POST /_sandbox/oauth`` on a running sandbox)."""
    from .oauth import register

    store = Store(state_dir)
    try:
        return register(store, location_id, list(scopes))
    finally:
        store.close()


def init_locations(state_dir: Path, n: int, *, allow_duplicates: bool = False,
                   clock: Any = time.time) -> dict[str, str]:
    """Make sure the state holds at least ``n`` locations; return ``{locationId: token}`` for all."""
    store = Store(state_dir)
    try:
        existing = store.locations()
        company_id = store.meta("company_id")
        if company_id is None:
            company_id = new_id()
            store.set_meta("company_id", company_id)
        for i in range(len(existing), n):
            _create_location(store, company_id, i + 1, allow_duplicates, clock())
        return store.tokens()
    finally:
        store.close()


def add_user(state_dir: Path, location_id: str, first: str, last: str, email: str, *,
             clock: Any = time.time, calendars: bool = False) -> str:
    """Add a user to a sandbox location (HighLevel's public API cannot create users; an agency adds
    them in its UI), and with ``calendars`` to the team of each of its calendars. Returns the user id."""
    store = Store(state_dir)
    try:
        uid = new_id()
        store.put("user", location_id, {
            "id": uid, "name": f"{first} {last}", "firstName": first, "lastName": last, "email": email,
            "permissions": {}, "roles": {"type": "account", "role": "user", "locationIds": [location_id]},
            "deleted": False,
        }, now=clock())
        for cal in store.list("calendar", location_id) if calendars else ():
            cal["teamMembers"] = [*cal.get("teamMembers", []),
                                  {"userId": uid, "priority": 0.5, "meetingLocationType": "custom"}]
            store.put("calendar", location_id, cal, now=clock())
        return uid
    finally:
        store.close()


def add_pipeline(state_dir: Path, location_id: str, name: str, stages: tuple[str, ...] | list[str]) -> str:
    """What an admin does by hand in HighLevel's UI (the API cannot): create a pipeline, or add the
    missing stages to the one of that name. Returns its id."""
    store = Store(state_dir)
    try:
        now = time.time()
        for p in store.list("pipeline", location_id):
            if str(p.get("name", "")).strip().lower() == name.strip().lower():
                have = {str(s["name"]).lower() for s in p["stages"]}
                p["stages"] += [{"id": new_id(), "name": s, "position": len(p["stages"]) + i}
                                for i, s in enumerate(x for x in stages if x.lower() not in have)]
                store.put("pipeline", location_id, p, now=now)
                return str(p["id"])
        pid = new_id()
        store.put("pipeline", location_id, {
            "id": pid, "name": name, "locationId": location_id, "showInFunnel": True, "showInPieChart": True,
            "stages": [{"id": new_id(), "name": s, "position": i} for i, s in enumerate(stages)]}, now=now)
        return pid
    finally:
        store.close()


def write_tokens_file(path: Path, tokens: dict[str, str]) -> None:
    """Write ``{"locations": {id: token}}`` readable only by its owner (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"locations": tokens}, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def _create_location(store: Store, company_id: str, number: int, allow_duplicates: bool, now: float) -> str:
    loc_id = new_id()
    name = f"Sandbox Dental {number}"
    store.put_location({
        "id": loc_id, "companyId": company_id, "name": name, "address": f"{number} Enamel Street",
        "city": "Springfield", "state": "IL", "country": "US", "postalCode": "62701",
        "timezone": "America/Chicago", "email": f"office{number}@sandbox-dental.example",
        "phone": f"+1555010{number:04d}"[:12],
        "business": {"name": name, "address": f"{number} Enamel Street", "city": "Springfield",
                     "state": "IL", "country": "US", "postalCode": "62701", "timezone": "America/Chicago"},
        "settings": {"allowDuplicateContact": allow_duplicates, "allowDuplicateOpportunity": True,
                     "allowFacebookNameMerge": False, "disableContactTimezone": False},
    })
    users = []
    for first, last, role in _USERS:
        uid = new_id()
        users.append(uid)
        store.put("user", loc_id, {
            "id": uid, "name": f"{first} {last}", "firstName": first, "lastName": last,
            "email": f"{first.lower()}.{last.lower()}+{number}@sandbox-dental.example",
            "permissions": {},
            "roles": {"type": "account", "role": role, "locationIds": [loc_id]}, "deleted": False,
        }, now=now)
    for pname, stages in _PIPELINES.items():
        store.put("pipeline", loc_id, {
            "id": new_id(), "name": pname, "locationId": loc_id, "showInFunnel": True,
            "showInPieChart": True,
            "stages": [{"id": new_id(), "name": s, "position": i} for i, s in enumerate(stages)],
        }, now=now)
    store.put("calendar", loc_id, {
        "id": new_id(), "locationId": loc_id, "name": "Hygiene", "calendarType": "round_robin",
        "isActive": True, "slotDuration": 60, "slotDurationUnit": "mins",
        "teamMembers": [{"userId": u, "priority": 0.5, "meetingLocationType": "custom"} for u in users],
    }, now=now)
    store.put("workflow", loc_id, {
        "id": new_id(), "name": "New patient welcome", "status": "published", "version": 1,
        "createdAt": iso(now), "updatedAt": iso(now), "locationId": loc_id,
    }, now=now)
    store.add_token("pit-" + secrets.token_urlsafe(24), loc_id, SANDBOX_APP, list(MIGRATION_SCOPES))
    return loc_id
