"""Undo a run from its ledger: delete what it wrote, children before parents, every delete in the ledger.

A run only creates (it never updates a record it did not create), so undoing it is deleting, in
reverse dependency order: notes (activities, outgoing referrals, file links), files, calendar events,
opportunities, custom-object records (their contact relations go with them), then contacts. A record already gone (404) counts as undone. A second rollback finds every delete in the
ledger and sends nothing. What could not be deleted is listed with its error class. Rolling back a
sample the reviewer rejected is rolling back its run (the sample is a phase of the run).

Issue 8 extends this to updates (restoring before-images) once delta runs update records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from ..errors import HighLevelError, NotFoundError
from ..storage import open_store
from .ledger import LedgerWriter, Op, read_ledger
from .transform import OBJECT_NAMES

__all__ = ["rollback"]

_KEYS = {name: key for key, name in OBJECT_NAMES.items()}
_WROTE = {"created", "verified-existing"}


def rollback(run_uri: str, run_id: str, client_factory: Callable[[str], Any], *,
             location: str | None = None) -> dict[str, Any]:
    """Delete everything run ``run_id`` wrote (optionally one export location); idempotent."""
    store = open_store(run_uri)
    rows = read_ledger(store, location=location).to_pylist()
    alive: dict[tuple[str, str], dict[str, Any]] = {}  # (location, stable key) -> the row that wrote it
    for r in rows:
        k = (r["location"], r["stable_key"])
        if r["op"] in ("create", "lookup", "import") and r["outcome"] in _WROTE and r["hl_id"]:
            alive[k] = r
        elif r["op"] == "delete" and r["outcome"] in ("deleted", "gone"):
            alive.pop(k, None)
    ledger = LedgerWriter(store, run_id, writer=f"rollback-{_uid()}")
    deleted: Counter[str] = Counter()
    failed: list[dict[str, Any]] = []
    clients: dict[str, Any] = {}
    # children first: notes, files, events, opportunities, records (their relations go with them), contacts
    ids = {k: r["hl_id"] for k, r in alive.items()}
    order = sorted(alive.values(), key=lambda r: (_RANK.get(r["object"], 4), r["location"], -r["ts"]))
    for r in order:
        loc = r["location"]
        client = clients.get(loc) or clients.setdefault(loc, client_factory(loc))
        try:
            _delete(client, r, r.get("detail") or ids.get((loc, _contact_key(r, alive))))
            outcome = "deleted"
        except NotFoundError:
            outcome = "gone"  # deleted by someone else, or with its contact
        except HighLevelError as exc:
            failed.append({"location": loc, "object": r["object"], "stable_key": r["stable_key"],
                           "error_class": type(exc).__name__})
            continue
        ledger.add(Op(run_id, loc, r["location_id"], r["object"], r["stable_key"], r["source_id"], r["hl_id"],
                      "delete", outcome))
        deleted[r["object"]] += 1
    ledger.close()
    for c in clients.values():
        c.close()
    return {"run_id": run_id, "deleted": dict(deleted), "not_undone": failed,
            "status": "rolled back" if not failed else "incomplete"}


# deletion order (lower first); custom-object records are 4, contacts last
_RANK = {"activity": 0, "referral": 0, "file_link": 0, "document": 1, "note_image": 1, "appointment_event": 2,
         "appointment": 3, "recall": 3, "patient": 9}
_NOTES = {"activity", "referral", "file_link"}


def _contact_key(r: dict[str, Any], alive: dict[tuple[str, str], dict[str, Any]]) -> str:
    """The stable key of the contact a note hangs on (its parent, or its file's parent)."""
    parent = r.get("parent") or ""
    up = alive.get((r["location"], parent))
    return (up.get("parent") or parent) if up is not None and up["object"] != "patient" else parent


def _delete(client: Any, r: dict[str, Any], contact_id: str | None) -> None:
    obj, hl_id = r["object"], r["hl_id"]
    if obj == "patient":
        client.delete_contact(hl_id)
    elif obj in _NOTES:
        if contact_id is None:
            raise NotFoundError("the note's contact is not in the ledger")
        client.delete_note(contact_id, hl_id)
    elif obj in ("document", "note_image"):
        client.delete_media(hl_id)
    elif obj == "appointment_event":
        client.delete_event(hl_id)
    elif obj in ("appointment", "recall"):
        client.delete_opportunity(hl_id)
    else:
        client.delete_record(_KEYS[obj], hl_id)


def _uid() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
