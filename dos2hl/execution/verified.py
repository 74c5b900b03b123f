"""The read-back's units as they survive a pause (issue 17): each (location, shard) verified is kept in the
run's storage, a location whose day runs out (or whose token is refused) mid-read pauses alone, and a
resumed run reads back only what was not verified yet.

``verify_unit(spec, client, reader, keep=WHAT)`` is what both executors run for a shard (``WHAT``: the
phase read back, ``sample``, ``full`` or ``verify``): it looks for the shard's kept diff under
``<run>/verify/WHAT/<LOC>/s<shard>.json`` first; one kept for the same records (its ``stamp``: the shard's
ID map and its sampled patients, read from the ledger, no request) is answered as it is, with no
request and an empty tally. Else it reads the shard back (``shard.verify_shard``) and keeps its diff.
A spent day (``DailyLimitError``, ``QuotaExhausted``) or a systemic refusal (``highlevel.systemic``)
during the reads ends the unit as ``paused`` (with ``resume_at`` for a spent day), keeping nothing: the
shard is read back whole once resumed. The diff holds counts and stable keys, never a value.

``verify_progress(result)`` turns a unit's result into the counts ``progress.ProgressTracker.add``
takes: records read back as ``written`` (the display's ``verified``), not found as ``failed`` (``not
found``), per-object field mismatches (and fields left blank) as ``mismatches``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from ..highlevel.protocols import Client
from ..highlevel.tally import Tally, snapshot
from ..planning.plan import ShardSpec
from ..storage import open_store

__all__ = ["KEPT", "kept_key", "not_verified", "stamp", "to_verify", "verify_progress", "verify_unit"]

KEPT = "verify"  # <run>/verify/<phase read back>/<LOC>/s<shard>.json


def kept_key(what: str, spec: ShardSpec) -> str:
    return f"{KEPT}/{what}/{spec.location}/s{spec.shard:03d}.json"


def stamp(ids: Any, patients: list[int] | None) -> str:
    """What a shard's verification was of: its ID map (stable key -> HighLevel id) and its sampled
    patients. A record written since (a resumed write, a retry) changes it: the shard is read again."""
    h = hashlib.sha256()
    h.update(json.dumps([sorted(ids.items()), None if patients is None else sorted(patients)]).encode())
    return h.hexdigest()


def _empty(spec: ShardSpec) -> dict[str, Any]:
    return {"location": spec.location, "shard": spec.shard, "read_back": {}, "not_found": {}, "fields": {},
            "examples": {}, "mismatches": 0, "tally": {}}


def not_verified(spec: ShardSpec, reason: str, resume_at: float | None = None,
                 tally: dict[str, Any] | None = None) -> dict[str, Any]:
    """A unit not verified because its location paused (before it, or during it): nothing of it kept."""
    return {**_empty(spec), "paused": reason, "resume_at": resume_at, "tally": tally or {}}


def verify_unit(spec: ShardSpec, client: Client, reader: Any = None, *, keep: str | None = None
                ) -> dict[str, Any]:
    """The shard's diff: kept from an earlier attempt for the same records, else read back (and kept when
    ``keep`` names the phase read back); a spent day or a systemic refusal pauses it (``not_verified``)."""
    import logging

    from .shard import paused_by, shard_ids, verify_shard

    run = open_store(spec.run_uri)
    ids = shard_ids(run, spec)
    mark = stamp(ids, spec.patients)
    key = kept_key(keep, spec) if keep else None
    if key is not None and run.exists(key):
        try:
            kept = json.loads(run.read_bytes(key))
        except ValueError:  # a torn write: read it again
            kept = {}
        if kept.get("stamp") == mark:
            return {**_empty(spec), **kept["diff"], "tally": {}, "kept": True}
    before = snapshot(client)
    try:
        diff = verify_shard(spec, client, reader, ids=ids)
    except Exception as exc:
        why = paused_by(exc, spec.location)
        if why is None:
            raise
        logging.getLogger("dos2hl.migrate").warning("location %s: read-back paused (shard %s): %s",
                                                    spec.location, spec.name, why[0])
        return not_verified(spec, why[0], why[1], (snapshot(client) - before).to_dict())
    if key is not None:
        body = {k: v for k, v in diff.items() if k != "tally"}
        run.write_bytes(key, json.dumps({"stamp": mark, "diff": body}).encode())
    return {**diff, "location": spec.location, "shard": spec.shard}


def _per_object(fields: dict[str, dict[str, dict[str, int]]]) -> dict[str, int]:
    return {obj: n for obj, fs in fields.items()
            if (n := sum(int(c.get("mismatch", 0)) + int(c.get("missing", 0)) for c in fs.values()))}


def verify_progress(r: dict[str, Any]) -> dict[str, Any]:
    """A unit's result as progress counts (``ProgressTracker.add``): verified, not found, mismatches."""
    out: dict[str, Any] = {"written": dict(r.get("read_back") or {}),
                           "failed": dict(r.get("not_found") or {}),
                           "mismatches": _per_object(r.get("fields") or {}),
                           "requests": Tally.from_dict(r.get("tally") or {}).total}
    if r.get("paused"):
        out["paused"], out["resume_at"] = r["paused"], r.get("resume_at")
    return out


def to_verify(result: Any, locations: list[str]) -> dict[str, Counter[str]]:
    """LOC -> object -> records to read back: what the phase read back (``WriteResult``) wrote there. A
    read-back of a sample the phase did not write (the full run's, sampled afterwards) has none: its
    locations' totals come in as their shards end."""
    totals = result.totals()
    return {loc: Counter(+totals[loc]["written"]) for loc in locations if loc in totals}
