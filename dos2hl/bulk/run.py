"""The bulk phase: record sets above ``bulk_threshold`` go by HighLevel's UI CSV importers, not the API.

Per location, before the full run: every shard is planned (the same payloads the API path would
send); each object whose not-yet-written count exceeds the threshold gets a CSV package under
``<run>/bulk/<LOC>/<object>/`` with ``checklist.md``. Round 1 is contacts and custom-object records
(independent of each other); round 2 opportunities (their CSV needs the contacts' ids). After each
round the run waits until the operator says the files are imported (a Prefect pause, a CLI prompt or
``--imported``); against the sandbox it imports them itself through the emulated importer. Then
reconciliation reads the location back by search pages (500 contacts or records, 100
opportunities a page), matches on our own keys (Source_System_ID, ``source_id``, opportunity name +
contact) and writes the ledger: found rows as ``import``/``created``, the rest as ``failed`` with the
importer's row error (dead letters). The full run that follows skips what is in the ID map, sends
what CSV cannot do (relations, calendar events, notes, files) and writes the refused rows through the
API, looking them up first.

A package is written once and imported once: ``state.json`` beside it records ``written`` ->
``imported`` -> ``reconciled``, so a resumed run never imports twice.

A systemic failure (issue 17: a 401/403 about the token, its scope or the location, or HighLevel down
past the client's retries) pauses the location here as on the API path: its discovery or
reconciliation stops, nothing is marked failed, the other locations go on, ``paused`` says why, and the
full run leaves it alone until the run is resumed (its packages' ``state.json`` say where it stopped).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from ..errors import HighLevelError
from ..execution import discover
from ..highlevel.imports import is_sandbox
from ..highlevel.protocols import Client, ClientFactory
from ..highlevel.systemic import is_outage, is_systemic, pause_reason
from ..planning import OBJECT_NAMES, ContactPayload, OpportunityPayload, RecordPayload, plan_shard
from ..storage import Store, open_store
from ..writing import (
    SHARED_FIELDS,
    IdMap,
    Inventory,
    LedgerWriter,
    LocationSchema,
    Op,
    load_inventory,
    opportunity_text,
    read_households,
    read_ledger,
)
from .packages import (
    Package,
    checklist,
    contact_row,
    opportunity_row,
    read_package,
    record_row,
    risky_row,
    write_package,
)

__all__ = ["BulkResult", "bulk_phase", "is_sandbox"]

log = logging.getLogger("dos2hl.bulk")
Importer = Callable[[list[Package], str], bool]  # (packages, checklist key) -> imported?


class BulkResult(BaseModel):
    """What the phase did per location; ``waiting`` lists checklists the operator still has to import."""

    imported: dict[str, Counter[str]] = Field(default_factory=dict)  # LOC -> object -> rows found after it
    refused: dict[str, Counter[str]] = Field(default_factory=dict)  # LOC -> object -> rows it refused
    packages: list[str] = Field(default_factory=list)
    waiting: list[str] = Field(default_factory=list)
    requests: int = 0
    paused: dict[str, str] = Field(default_factory=dict)  # LOC -> why (ids and statuses): resumed later

    def shard_rows(self) -> list[dict[str, Any]]:
        """As shard results (the report counts the phase's reads with the others)."""
        return [{"location": loc, "shard": -1, "requests": self.requests if i == 0 else 0, "http_429": 0,
                 "imported": dict(self.imported.get(loc, {})), "failed": {}, "held": {}, "written": {},
                 "created": {}, "excluded": {}} for i, loc in enumerate(sorted(self.imported))]


def bulk_phase(ctx: Any, *, threshold: int, client_factory: ClientFactory,
               importer: Importer | None = None, sleep: Callable[[float], None] = time.sleep) -> BulkResult:
    """Packages, import (sandbox) or wait (``importer``), reconcile; for every location."""

    out = BulkResult()
    run = open_store(ctx.run_uri)
    # only a location with an object over the threshold takes the CSV path (and pays for its inventory)
    # staged rows per location: a location with no more than the threshold in all its tables together
    # has no object over it either
    rows: Counter[str] = Counter()
    for meta in ctx.manifest.get("tables", {}).values():
        for s in meta.get("shards", []):
            rows[s["location"]] += int(s.get("rows", 0))
    planned = {loc: p for loc in ctx.locations
               if (rows[loc] > threshold or not ctx.manifest) and _over(threshold,
                                                                        *(p := _payloads(ctx, loc)))}
    if not planned:
        return out
    found = discover(ctx, client_factory, record_step=False, locations=sorted(planned),  # never re-imported
                     pause=True)
    out.requests += sum(int(f["requests"]) for f in found.values())
    for loc in sorted(planned):
        if found.get(loc, {}).get("paused"):
            out.paused[loc] = str(found[loc]["paused"])
            log.warning("location %s paused before its CSV packages: %s", loc, out.paused[loc])
            continue
        client = client_factory(loc)
        sent0 = int(client.stats.get("sent", 0))
        try:
            _location(ctx, run, loc, planned[loc], client, threshold, out, importer, sleep)
        except HighLevelError as exc:
            if not (is_systemic(exc) or is_outage(exc)):  # an outage here is no record's: the whole read's
                raise
            out.paused[loc] = pause_reason(exc)
            log.warning("location %s paused in the bulk phase: %s; nothing of it is marked failed", loc,
                        out.paused[loc])
        finally:
            out.requests += int(client.stats.get("sent", 0)) - sent0
    return out


def _location(ctx: Any, run: Store, loc: str, planned: tuple[list[Any], list[Any], list[Any]],
              client: Client, threshold: int, out: BulkResult, importer: Importer | None,
              sleep: Callable[[float], None]) -> None:
    """One location's rounds: packages, import or wait, reconcile."""
    schema = LocationSchema(**ctx.schemas[loc])
    ids = IdMap.from_table(read_ledger(run, location=loc))
    there = load_inventory(run, loc)
    contacts, records, opps = planned
    # the full run adopts those (existing.py); here they are only kept out of the packages, except
    # the rows of this run's own packages not reconciled yet (the run stopped at its gate and a
    # person imported them: the inventory finds them, but they are this run's creates)
    ours = _awaiting_reconciliation(run, loc)
    contacts = [c for c in contacts if c.stable_key not in there.contacts or c.stable_key in ours]
    records = [r for r in records if r.stable_key not in there.records or r.stable_key in ours]
    opps = [o for o in opps if o.stable_key in ours or not ids.get(o.parent_key)
            or Inventory.opportunity_key(
        ids.get(o.parent_key) or "", schema.pipeline(o.pipeline, o.stage)[0],
        o.name) not in there.opportunities]
    ledger = LedgerWriter(run, ctx.run_id, writer=f"bulk-{_uid()}")
    try:  # what was reconciled before a pause stays in the ledger
        out.imported[loc], out.refused[loc] = Counter(), Counter()
        round1: list[tuple[str, str, list[Any]]] = []
        todo = [c for c in contacts if not ids.get(c.stable_key)]
        if len(todo) > threshold:
            round1.append(("contacts", "patient", todo))
        by_obj: dict[str, list[RecordPayload]] = {}
        for r in records:
            if not ids.get(r.stable_key):
                by_obj.setdefault(r.object_key, []).append(r)
        # records under the lookup_field policy carry their contact's id: they wait for round 2
        round1 += [(k, OBJECT_NAMES[k], v) for k, v in sorted(by_obj.items())
                   if len(v) > threshold and v[0].relation == "association"]
        shared = read_households(run, loc) if not schema.allow_duplicates else {}
        ok = _round(run, loc, round1, client, schema, ids, ledger, out, importer, sleep, shared)
        if ok:
            by_opp: dict[str, list[OpportunityPayload]] = {}
            for o in opps:
                if not ids.get(o.stable_key) and ids.get(o.parent_key):
                    by_opp.setdefault(o.object, []).append(o)
            round2: list[tuple[str, str, list[Any]]] = [("opportunities", name, v)
                                                        for name, v in sorted(by_opp.items())
                                                        if len(v) > threshold]
            round2 += [(k, OBJECT_NAMES[k], [r for r in v if ids.get(r.parent_key)])
                       for k, v in sorted(by_obj.items())
                       if len(v) > threshold and v[0].relation == "lookup_field"]
            _round(run, loc, round2, client, schema, ids, ledger, out, importer, sleep, shared)
    finally:
        ledger.close()


def _over(threshold: int, contacts: list[Any], records: list[Any], opps: list[Any]) -> bool:
    """Whether any object of one location has more rows than ``threshold`` (before what exists is taken
    out): only then is the inventory worth its search pages here."""
    counts = Counter(r.object_key for r in records) + Counter(o.object for o in opps)
    return len(contacts) > threshold or any(n > threshold for n in counts.values())


def _payloads(ctx: Any,
              loc: str) -> tuple[list[ContactPayload], list[RecordPayload], list[OpportunityPayload]]:
    contacts, records, opps = [], [], []
    for spec in ctx.specs():
        if spec.location != loc:
            continue
        plan, _ = plan_shard(spec)
        contacts += plan.contacts
        records += plan.records
        opps += plan.crm.opportunities
    return contacts, records, opps


def _round(run: Store, loc: str, items: list[tuple[str, str, list[Any]]], client: Client,
           schema: LocationSchema,
           ids: IdMap, ledger: LedgerWriter, out: BulkResult, importer: Importer | None,
           sleep: Callable[[float], None], shared: dict[str, list[str]]) -> bool:
    """Write (once), import or wait, reconcile one round; False while the operator has not imported."""
    packages: list[tuple[str, str, list[Any], Package]] = []
    for target, obj, everything in items:
        prefix = f"bulk/{loc}/{obj}"
        # a row with a cell a spreadsheet would run stays out (the API path writes its true value)
        rows, payloads = [], []
        for p in everything:
            row = _row(target, p, schema, ids, shared)
            if not risky_row(row):
                rows.append(row)
                payloads.append(p)
        if not payloads:
            continue
        if not _state(run, prefix).get("status"):
            write_package(run, prefix, loc, target, rows, mode="create",
                          dedupe="email" if target == "contacts" else "id")
            _set_state(run, prefix, {"status": "written", "keys": [p.stable_key for p in payloads]})
        packages.append((target, obj, payloads, read_package(run, prefix)))
        out.packages.append(prefix)
    if not packages:
        return True
    key = f"bulk/{loc}/checklist-{'-'.join(sorted(o for _t, o, _p, _k in packages))}.md"
    run.write_bytes(key, checklist([p for *_x, p in packages]).encode())
    pending = [(t, o, p, k) for t, o, p, k in packages
               if _state(run, f"bulk/{loc}/{o}").get("status") == "written"]
    if pending:
        if is_sandbox(client):
            from .importer import import_package

            for _t, obj, _p, pkg in pending:
                results = import_package(run, pkg, client)
                _set_state(run, f"bulk/{loc}/{obj}", {**_state(run, f"bulk/{loc}/{obj}"),
                                                      "status": "imported",
                                                      "errors": {str(r.row): r.error for r in results
                                                                 if r.status == "error"}})
        elif importer is not None and importer([k for *_x, k in pending], key):
            for _t, obj, _p, _k in pending:
                _set_state(run, f"bulk/{loc}/{obj}",
                           {**_state(run, f"bulk/{loc}/{obj}"), "status": "imported"})
        else:
            out.waiting.append(key)
            return False
    for target, obj, payloads, _pkg in packages:
        prefix = f"bulk/{loc}/{obj}"
        state = _state(run, prefix)
        if state.get("status") == "reconciled":
            continue
        errors = state.get("errors", {})
        row_of = {k: i for i, k in enumerate(state.get("keys", []), start=1)}  # the package's row order
        found = _reconcile(target, payloads, client, schema, ids, sleep, expect=len(payloads) - len(errors))
        for p in payloads:
            hl_id = found.get(p.stable_key)
            if hl_id:
                ledger.add(Op(ledger.run_id, loc, schema.location_id, obj, p.stable_key, p.source_id, hl_id,
                              "import", "created", parent=getattr(p, "parent_key", None)))
                ids.apply({"stable_key": p.stable_key, "op": "import", "outcome": "created", "hl_id": hl_id})
                out.imported[loc][obj] += 1
            else:
                why = errors.get(str(row_of.get(p.stable_key))) or "not found after the import"
                ledger.add(Op(ledger.run_id, loc, schema.location_id, obj, p.stable_key, p.source_id, None,
                              "import", "failed", error=f"CsvImportError: {why}"[:300]))
                out.refused[loc][obj] += 1
        ledger.flush()
        _set_state(run, prefix, {**state, "status": "reconciled"})
    return True


def _row(target: str, p: Any, schema: LocationSchema, ids: IdMap,
         shared: dict[str, list[str]]) -> dict[str, str]:
    if target == "contacts":
        body = dict(p.body)
        custom = dict(body.pop("customFields", {}))
        for name in shared.get(p.source_id, ()):  # households: as the API path does
            if body.get(name):
                custom[SHARED_FIELDS[name]] = body.pop(name)
        owner = schema.users.get(p.owner_provider or "") or schema.users.get("")
        return contact_row({**body, "customFields": custom, **({"assignedTo": owner} if owner else {})})
    if target == "opportunities":
        pipeline_id, stage_id = schema.pipeline(p.pipeline, p.stage)
        owner = schema.users.get(p.owner_provider or "") or schema.users.get("")
        return opportunity_row({"name": p.name, "pipelineId": pipeline_id, "pipelineStageId": stage_id,
                                "status": p.status, "monetaryValue": p.monetary,
                                "contactId": ids.get(p.parent_key),
                                "assignedTo": owner,
                                "customFields": {k: opportunity_text(v) for k, v in p.custom.items()}})
    if p.relation == "lookup_field":
        return record_row({**p.properties, "contact_id": ids.get(p.parent_key)})
    return record_row(p.properties)


def _reconcile(target: str, payloads: list[Any], client: Client, schema: LocationSchema, ids: IdMap,
               sleep: Callable[[float], None], expect: int) -> dict[str, str]:
    """stable key -> HighLevel id, from search pages; more passes (2, 5, 10 s apart) while fewer than the
    ``expect`` rows the importer took are found (search is eventually consistent)."""
    found: dict[str, str] = {}
    for wait in (0, 2, 5, 10):
        if wait:
            sleep(wait)
        if target == "contacts":
            field_id = schema.field_id("contact.source_system_id")
            by_sid = {p.source_id: p.stable_key for p in payloads}
            for c in client.search_contacts_all(page_limit=500):
                sid = c.custom_value(field_id)
                if sid is not None and str(sid) in by_sid:
                    found[by_sid[str(sid)]] = c.id
        elif target == "opportunities":
            by_name = {(ids.get(p.parent_key), p.name): p.stable_key for p in payloads}
            pipelines = {schema.pipeline(p.pipeline, p.stage)[0] for p in payloads}
            for pid in sorted(pipelines):
                page = 1
                while True:
                    got = client.search_opportunities(pipeline_id=pid, limit=100, page=page).opportunities
                    for o in got:
                        k = by_name.get((o.contactId, o.name))
                        if k:
                            found[k] = o.id
                    if len(got) < 100:
                        break
                    page += 1
        else:
            by_src = {str(p.properties.get("source_id")): p.stable_key for p in payloads}
            for r in client.search_records_all(target, page_limit=500):
                k = by_src.get(str((r.properties or {}).get("source_id")))
                if k:
                    found[k] = r.id
        if len(found) >= expect:
            break
    return found


def _awaiting_reconciliation(run: Store, loc: str) -> set[str]:
    """Stable keys of the location's packages not reconciled yet (written, or imported): rows the inventory
    finds there came from them (a person imported them while the run waited at its gate)."""
    keys: set[str] = set()
    for key in run.list(f"bulk/{loc}/"):
        if key.endswith("/state.json"):
            state = json.loads(run.read_bytes(key))
            if state.get("status") in ("written", "imported"):
                keys.update(state.get("keys", []))
    return keys


def _state(run: Store, prefix: str) -> dict[str, Any]:
    key = f"{prefix}/state.json"
    return json.loads(run.read_bytes(key)) if run.exists(key) else {}


def _set_state(run: Store, prefix: str, state: dict[str, Any]) -> None:
    run.write_bytes(f"{prefix}/state.json", json.dumps(state).encode())


def _uid() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
