"""Undo a run from its ledger: delete what it wrote, children before parents, every delete in the ledger.

A run only creates (it never updates a record it did not create), so undoing it is deleting, in
reverse dependency order: notes (activities, outgoing referrals, file links), files, calendar events,
opportunities, custom-object records (their contact relations go with them), then contacts. A record already
gone (404) counts as undone. A second rollback finds every delete in the ledger and sends nothing. What could
not be deleted is listed with its error class. Rolling back a sample the reviewer rejected is rolling back
its run (the sample is a phase of the run).

Updates (a delta's, or a run's update of a record it adopted) are undone first, latest first, by
putting back the before-image the ledger kept: sealed, written before the update was sent (so one whose
``updated`` row a crash lost is put back too; one whose update failed is not), opened with the PHI key.
The "deleted in source" tags a delta added are taken off. A ledger file that cannot be read is named in
the result (``unreadable_ledger_files``, status incomplete): what it recorded is not known here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import Dos2hlError, HighLevelError, NotFoundError
from ..highlevel.protocols import Client, ClientFactory
from ..storage import open_store
from .ledger import LedgerWriter, Op, open_before, read_ledger
from .removal import DELETED_TAG, delete_object

__all__ = ["RollbackWatcher", "rollback"]

_WROTE = {"created", "verified-existing"}


class RollbackWatcher(Protocol):
    """Who hears of a rollback's progress (``execution.progress.ProgressTracker``): the deletions to do
    per location and object, then each one's outcome as it comes."""

    def begin_counts(self, totals: dict[str, Counter[str]], location_ids: dict[str, str]) -> None: ...

    def add(self, loc: str, r: dict[str, Any], *, unit_done: bool = False) -> None: ...


def rollback(run_uri: str, run_id: str, client_factory: ClientFactory, *,
             location: str | None = None, phi_key_file: str | None = None,
             watcher: RollbackWatcher | None = None) -> dict[str, Any]:
    """Delete everything run ``run_id`` wrote (optionally one export location); idempotent. Sealed
    before-images open with ``phi_key_file`` (default DOS2HL_PHI_KEY_FILE); ``watcher`` hears of every
    deletion."""
    store = open_store(run_uri)
    unreadable: list[str] = []
    rows = read_ledger(store, location=location, unreadable=unreadable).to_pylist()
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
    restored = _restore(rows, ledger, run_id, clients, client_factory, failed, _opener(phi_key_file))
    # children first: notes, files, events, opportunities, records (their relations go with them), contacts
    ids = {k: r["hl_id"] for k, r in alive.items()}
    order = sorted(alive.values(), key=lambda r: (_RANK.get(r["object"], 4), r["location"], -r["ts"]))
    if watcher is not None and order:
        totals: dict[str, Counter[str]] = {}
        for r in order:
            totals.setdefault(r["location"], Counter())[r["object"]] += 1
        watcher.begin_counts(totals, {r["location"]: str(r["location_id"] or "") for r in order})
    for r in order:
        loc = r["location"]
        client = clients.get(loc) or clients.setdefault(loc, client_factory(loc))
        try:
            delete_object(client, r["object"], r["hl_id"],
                          r.get("detail") or ids.get((loc, _contact_key(r, alive))))
            outcome = "deleted"
        except NotFoundError:
            outcome = "gone"  # deleted by someone else, or with its contact
        except HighLevelError as exc:
            failed.append({"location": loc, "object": r["object"], "stable_key": r["stable_key"],
                           "error_class": type(exc).__name__})
            if watcher is not None:
                watcher.add(loc, {"failed": {r["object"]: 1}, "requests": 1})
            continue
        ledger.add(Op(run_id, loc, r["location_id"], r["object"], r["stable_key"], r["source_id"], r["hl_id"],
                      "delete", outcome))
        deleted[r["object"]] += 1
        if watcher is not None:
            watcher.add(loc, {"written": {r["object"]: 1}, "requests": 1})
    ledger.close()
    for c in clients.values():
        c.close()
    return {"run_id": run_id, "deleted": dict(deleted), "restored": dict(restored), "not_undone": failed,
            "unreadable_ledger_files": unreadable,
            "status": "rolled back" if not failed and not unreadable else "incomplete"}


def _opener(phi_key_file: str | None) -> Callable[[], Any]:
    """The PHI key's ``open``, loaded on first use (a rollback without sealed before-images needs no key)."""
    got: list[Any] = []

    def get() -> Any:
        if not got:
            from ..phi import load_sealer
            from ..settings import Dos2hlSettings

            got.append(load_sealer(phi_key_file or Dos2hlSettings().phi_key_file).open)
        return got[0]

    return get


def _before_images(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger rows holding a before-image to put back: written before their update was sent, kept
    unless that update is recorded as failed (a crash after the PUT leaves no outcome: kept). Ledgers
    written before before-images had rows of their own carry it on the ``updated`` row."""
    out: dict[int, dict[str, Any]] = {}
    pending: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):  # by time
        if r["op"] != "update":
            continue
        k = (r["location"], r["stable_key"])
        if r["outcome"] == "before-image" and r.get("before"):
            out[i] = r
            pending[k] = i
        elif r["outcome"] == "updated" and r.get("before"):  # an older ledger's row
            out[i] = r
        elif r["outcome"] == "failed" and k in pending:  # nothing was changed: nothing to put back
            out.pop(pending.pop(k), None)
        elif r["outcome"] == "updated":
            pending.pop(k, None)
    return list(out.values())


def _restore(rows: list[dict[str, Any]], ledger: LedgerWriter, run_id: str, clients: dict[str, Any],
             client_factory: ClientFactory, failed: list[dict[str, Any]], opener: Callable[[], Any]
             ) -> Counter[str]:
    """Put back the before-image of every update (latest first) and take off the tags a delta added;
    each undo is a ledger row naming the op it undid (``detail``), so a second rollback skips it."""
    done = {r["detail"] for r in rows if r["op"] in ("restore", "untag") and r.get("detail")}
    out: Counter[str] = Counter()
    todo = _before_images(rows) + [r for r in rows if r["op"] == "tag" and r["outcome"] == "tagged"]
    for r in sorted(todo, key=lambda r: -r["ts"]):
        mark = f"{r['op']}@{r['ts']!r}:{r['stable_key']}"
        if mark in done:
            continue
        loc = r["location"]
        client = clients.get(loc) or clients.setdefault(loc, client_factory(loc))
        try:
            if r["op"] == "tag":
                client.remove_contact_tags(r["hl_id"], [DELETED_TAG])
            else:
                _put_back(client, r["hl_id"], open_before(opener, r["before"], r["stable_key"]))
        except (HighLevelError, Dos2hlError) as exc:  # a ConfigError: no PHI key to open the before-image
            failed.append({"location": loc, "object": r["object"], "stable_key": r["stable_key"],
                           "error_class": type(exc).__name__})
            continue
        op = "untag" if r["op"] == "tag" else "restore"
        ledger.add(Op(run_id, loc, r["location_id"], r["object"], r["stable_key"], r["source_id"],
                      r["hl_id"], op,
                      "restored", detail=mark))
        out[r["object"]] += 1
    return out


def _put_back(client: Client, hl_id: str, before: dict[str, Any]) -> None:
    from ..highlevel.models import ContactUpdate, CustomFieldInput, OpportunityUpdate, RecordUpdate

    kind = before.pop("kind")
    if kind == "contact":
        custom = [CustomFieldInput(id=c["id"],
                                   field_value=c["field_value"]) for c in before.pop("customFields", [])]
        client.update_contact(hl_id, ContactUpdate(**before, customFields=custom or None))
    elif kind == "opportunity":
        custom = [CustomFieldInput(id=c["id"], field_value=c.get("fieldValue", c.get("value")))
                  for c in before.pop("customFields", None) or []]
        client.update_opportunity(hl_id, OpportunityUpdate(**before, customFields=custom or None))
    else:
        client.update_record(before["object_key"], hl_id, RecordUpdate(properties=before["properties"]))


# deletion order (lower first); custom-object records are 4, contacts last
_RANK = {"activity": 0, "referral": 0, "file_link": 0, "document": 1, "note_image": 1, "appointment_event": 2,
         "appointment": 3, "recall": 3, "patient": 9}


def _contact_key(r: dict[str, Any], alive: dict[tuple[str, str], dict[str, Any]]) -> str:
    """The stable key of the contact a note hangs on (its parent, or its file's parent)."""
    parent = r.get("parent") or ""
    up = alive.get((r["location"], parent))
    return (up.get("parent") or parent) if up is not None and up["object"] != "patient" else parent


def _uid() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
