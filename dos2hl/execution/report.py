"""The run report: counts that reconcile, the map's confirmation, owners, fields not migrated, quarantine,
requests used, and the field diff. ``report.json`` (machine), ``report.md`` and ``report.html`` (people;
the page is :mod:`.report_html`'s template).

Nothing here holds a patient value: ids, codes and counts only (the field diff names stable keys).

Reconciliation per location and object: ``staged = written + failed + held + excluded`` for a full
run, and per export: ``source rows = staged + quarantined``. A run is ``completed`` only when both
hold and nothing failed or is held; "zero patient records dropped" is that identity for patients.

A location that paused (issue 17: a revoked token, a removed scope or sub-account, HighLevel down)
adds ``pending``: ``staged = written + failed + held + excluded + pending``, its rows not yet
written, none of them failed. The run's status is then ``paused`` (``paused``: LOC -> reason); a
re-run of its id resumes them. When every paused location only waits for its spent daily quota to reset
(``resume_at``: LOC -> the reset, ISO UTC), the status is ``waiting_for_quota``: nothing to fix, resume
after the reset.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ..planning.transform import OBJECT_NAMES
from ..storage import open_store
from .report_html import render as _html
from .results import Prepared, VerifyResult, WriteResult
from .waits import iso, pause_lines, run_status

__all__ = ["build_report", "write_report", "OBJECT_TABLES"]

# the seed's object names -> the canonical table whose rows they are
OBJECT_TABLES = {"patient": "patient", "insurance_record": "patins", "treatment_plan": "txitem",
                 "ledger_entry": "ledger", "insurance_claim": "claim", "clinical_note": "clinnote",
                 "appointment": "appt", "recall": "recall", "referral": "patref", "activity": "commlog",
                 "document": "document"}
# requests per created thing beyond its create: custom-object records need their relation to the contact
EXTRA_PER_CREATE = {name: 1 for name in OBJECT_NAMES.values()}


def _used(mapping: dict[str, Any], table: str) -> bool:
    return any(e.get("table") == table and e.get("phi") != "omit" and e["target"] not in ("skip", "reference")
               for e in mapping["fields"])


def build_report(ctx: Prepared, phases: list[WriteResult], *, diff: VerifyResult | None = None,
                 requests: dict[str, Any] | None = None, status_note: str = "") -> dict[str, Any]:
    manifest = ctx.manifest
    written_objects = {"patient"} | {obj for obj, table in OBJECT_TABLES.items() if _used(ctx.mapping, table)}
    # objects the map does not send: listed with their row counts, never silently absent
    pending = {obj: manifest["tables"].get(table, {}).get("rows", 0) for obj, table in OBJECT_TABLES.items()
               if obj not in written_objects}
    last = phases[-1]
    totals = last.totals()
    created_by_loc: dict[str, Counter[str]] = {}  # creates of every phase (a sample's: promoted, not redone)
    present_by_loc: dict[str, Counter[str]] = {}  # found in HighLevel under our keys (adopted), every phase
    updated_by_loc: dict[str, Counter[str]] = {}
    for p in phases:
        for loc_, t_ in p.totals().items():
            created_by_loc.setdefault(loc_, Counter()).update(t_.get("created", Counter()))
            present_by_loc.setdefault(loc_, Counter()).update(t_.get("present", Counter()))
            updated_by_loc.setdefault(loc_, Counter()).update(t_.get("updated", Counter()))
    locations: dict[str, Any] = {}
    problems: list[str] = []
    paused = dict(last.paused or WriteResult.paused_of(last.shards))
    waits = dict(last.resume_at or WriteResult.resume_at_of(last.shards))
    # a location whose read-back paused (its records written, some not yet verified): the run waits too
    verify_paused = sorted(set(diff.paused) - set(paused)) if diff is not None else []
    for loc in verify_paused:
        assert diff is not None
        paused[loc] = diff.paused[loc]
        if loc in diff.resume_at:
            waits[loc] = diff.resume_at[loc]
    resume_at = {loc: iso(at) for loc, at in waits.items() if loc in paused}
    for loc in ctx.locations:
        t = totals.get(loc, {})
        objects = {}
        # derived objects (a note's inline images) have no table: the shards count them
        found: Counter[str] = Counter()
        for r in last.shards:
            if r["location"] == loc:
                found.update({k: v for k, v in r.get("staged", {}).items() if k not in OBJECT_TABLES})
        for obj in sorted(written_objects & set(OBJECT_TABLES)) + sorted(found):
            staged_rows = found[obj] if obj in found else sum(
                s["rows"] for s in manifest["tables"].get(OBJECT_TABLES[obj], {}).get("shards", [])
                if s["location"] == loc)
            row = {"source": staged_rows, "staged": staged_rows,
                   "written": t.get("written", Counter())[obj],
                   "created": created_by_loc.get(loc, Counter())[obj],
                   "failed": t.get("failed", Counter())[obj], "held": t.get("held", Counter())[obj],
                   "excluded": t.get("excluded", Counter())[obj], "quarantined": 0,
                   "present": present_by_loc.get(loc, Counter())[obj],
                   "updated": updated_by_loc.get(loc, Counter())[obj]}
            if loc in paused and last.phase == "full":  # not yet written: pending, not lost and not failed
                row["pending"] = staged_rows - (row["written"] + row["failed"] + row["held"]
                                                + row["excluded"])
            if last.phase == "full":
                accounted = (row["written"] + row["failed"] + row["held"] + row["excluded"]
                             + row.get("pending", 0))
                if accounted != staged_rows or row.get("pending", 0) < 0:
                    problems.append(f"{loc}/{obj}: staged {staged_rows} != written {row['written']} + failed "
                                    f"{row['failed']} + held {row['held']} + excluded {row['excluded']}")
            objects[obj] = row
        locations[loc] = {"location_id": ctx.schemas[loc]["location_id"], "objects": objects}
    for r in last.shards:  # a shard that stopped: its location is incomplete, the others are not
        if r.get("error"):
            problems.append(f"{r['location']}/shard {r['shard']:03d} stopped: {r['error']}")
    quarantine = {}
    for table, meta in manifest.get("quarantine", {}).items():
        quarantine[table] = int(meta.get("rows", 0))
    for obj, table in OBJECT_TABLES.items():  # quarantined rows belong to no location: export level
        if obj in written_objects and quarantine.get(table) and locations:
            first = next(iter(locations.values()))["objects"].get(obj)
            if first is not None:
                first["quarantined"] += quarantine[table]
                first["source"] += quarantine[table]
    if not requests:
        requests = _requests(ctx, phases)
    failed = sum(o["failed"] + o["held"] for loc in locations.values() for o in loc["objects"].values())
    complete = last.phase == "full" and not problems and failed == 0 and not paused
    skipped = [{"source": e["source"], "reason": "; ".join(e.get("reasons", [])[-1:]) or "not mapped",
                "phi": e.get("phi", "send")} for e in ctx.mapping["fields"]
               if e["target"] == "skip" or e.get("phi") == "omit"]
    skipped += _not_carried(ctx.mapping)
    skipped += _values_not_sent(ctx.mapping, last.shards)
    return {
        "run_id": ctx.run_id,
        "status": run_status(complete, paused, resume_at),
        "paused": dict(paused),  # LOC -> why (ids, statuses, counts): resumed by a re-run of the run id
        "resume_at": resume_at,  # LOC -> when its spent daily quota resets (ISO UTC): resume after it
        "verify_paused": verify_paused,  # of those: the locations whose read-back (not writes) waits
        "phase": last.phase,
        "note": status_note,
        "mapping": {"path": ctx.mapping_path, **ctx.confirmation},
        "sub_accounts": dict(ctx.tenancy),
        # export office -> sub-account, both by name (checked before writing)
        "locations": locations,
        "reconciliation": {"ok": not problems, "problems": problems},
        "quarantine_by_table": quarantine,
        "quarantine_by_code": _codes(manifest),
        "providers": ctx.providers.get("summary", {}),
        "unmatched_providers": [r for r in ctx.providers.get("rows", []) if r.get("match") == "none"
                                and (r.get("patients") or r.get("appointments"))],
        "fields_not_migrated": skipped,
        "objects_not_in_the_map": {k: v for k, v in pending.items() if v},
        "already_present": {loc: {"location_id": locations[loc]["location_id"], "objects": dict(+n),
                                  "updated": dict(+updated_by_loc.get(loc, Counter()))}
                            for loc, n in present_by_loc.items() if loc in locations and +n},
        "bulk_imported": _bulk_imported(phases),
        "excluded_by_reason": _reasons(last.shards),
        "notices": _notices(phases),
        "households_shared_channel": sum(r.get("shared_channel", 0) for p in phases for r in p.shards),
        "shards_per_node": {p.phase: p.nodes() for p in phases if p.nodes()},  # Ray node ids and counts
        "field_diff": diff.model_dump() if diff is not None else {},
        "requests": requests or {},
        "requests_by_class": (requests or {}).get("by_class", {}),
        "sample": {loc: len(ids) for loc, ids in (phases[0].sample
                                                  or {}).items()} if phases[0].sample else {},
    }


def _not_carried(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """Mapped entries the transform does not write (transform.not_carried), with the reason."""
    from ..mapping.model import Mapping
    from ..planning.transform import not_carried

    return [{"source": e.source, "target": e.target, "phi": e.phi, "reason": why}
            for e, why in not_carried(Mapping.model_validate(mapping))]


def _values_not_sent(mapping: dict[str, Any], shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mapped fields some of whose values could not be sent (a user-defined date that is no date, a
    pick-list value that is no option...): one entry per field and reason, with the row count (the rows
    themselves, by id, are in report/excluded.csv)."""
    from ..mapping.objectmap import UDF_TARGET

    udf = next((e["source"] for e in mapping["fields"] if e["target"] == UDF_TARGET), "PATUDF.VALUE")
    c: Counter[tuple[str, str]] = Counter()
    for r in shards:
        for key, reasons in ((r.get("notices") or {}).get("values_not_sent") or {}).items():
            for why, n in reasons.items():
                c[(key, why)] += n
    return [{"source": udf if key.startswith("contact.") else key, "target": key, "phi": "send", "rows": n,
             "reason": f"{n} value(s) not sent to {key}: {why} (rows in report/excluded.csv)"}
            for (key, why), n in sorted(c.items())]


def _reasons(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows excluded with a reason (documents that cannot go, earlier note revisions, placeholders...)."""
    c: Counter[tuple[str, str, str]] = Counter()
    for r in shards:
        for obj, _sid, reason in r.get("excluded_rows", []):
            c[(r["location"], obj, reason)] += 1
    return [{"location": loc, "object": obj, "reason": reason, "rows": n}
            for (loc, obj, reason), n in sorted(c.items())]


def _notices(phases: list[Any]) -> dict[str, Any]:
    """What the writers noticed (events without a time or unassigned) and the referral variant table."""
    writer: Counter[str] = Counter()
    channels: Counter[str] = Counter()  # canonical referral channel -> free-text rows (never the text)
    unresolved = images = 0
    plain: list[int] = []
    for p in phases:
        for r in p.shards:
            n = r.get("notices") or {}
            writer.update(n.get("writer", {}))  # what each phase's writes met
            if p is not phases[-1]:
                continue  # what the data holds: the last phase planned every row the run covers
            images += n.get("note_images", 0)
            plain += n.get("notes_as_plain_text", [])
            ref = n.get("referral_variants") or {}
            unresolved += ref.get("unresolved_free_text", 0)
            for v in ref.get("channels", []):
                channels[v["canonical"]] += v["rows"]
    return {"writer": dict(writer), "note_images": images,
            # clinical notes whose rich text lost words in the converter (HTML nested too deep): migrated as
            # a plain tag strip instead, so no word is lost; ids only
            "notes_as_plain_text": {"count": len(plain), "note_ids": sorted(plain)[:50]},
            "referral_variants": [{"canonical": c, "rows": n} for c, n in sorted(channels.items())],
            "referral_unresolved_free_text": unresolved}


def _requests(ctx: Any, phases: list[Any]) -> dict[str, Any]:
    """Every request of the run id (``usage``: prepare's schema reads, every phase's writes and lookups, the
    bulk path's pages, the read-backs; retries and 429s included), by class, against the API's
    minimum for what was created, and per minute against the burst budget per minute."""
    from ..settings import Dos2hlSettings
    from .usage import load

    spent, steps, created = load(ctx.run_uri)  # the whole run id's: every step of every invocation
    if not steps:  # phases that recorded nothing (built by hand): their own creates
        for r in (r for p in phases for r in p.shards):
            created.update(r.get("created", {}))
    minimum = sum(created.values()) + sum(v * EXTRA_PER_CREATE.get(k, 0) for k, v in created.items())
    g = Dos2hlSettings().governor
    return {"sent": spent.total, "by_class": spent.to_dict()["by_class"], "by_step": steps,
            "http_429": spent.http_429, "minimum_for_creates": minimum,
            "ratio": round(spent.total / minimum, 4) if minimum else None,
            "budget_per_minute": round(g.burst * 60 / g.window_s), "daily_budget": g.daily,
            "timeline": sorted(spent.per_minute.items())}


def _codes(manifest: dict[str, Any]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for f in manifest.get("files", {}).values():
        for code, n in (f.get("findings") or {}).items():
            if isinstance(n, int):
                out[code] += n
    return dict(sorted(out.items()))


def _md(rep: dict[str, Any]) -> str:
    lines = [f"# Migration report: run {rep['run_id']}", "",
             f"**Status: {rep['status']}** (phase "
             f"{rep['phase']}){' - ' + rep['note'] if rep['note'] else ''}", "",
             f"Map `{rep['mapping']['path']}` confirmed by {rep['mapping']['by']} at {rep['mapping']['at']} "
             f"(sha256 `{rep['mapping']['sha256'][:16]}`).", ""]
    if rep.get("sub_accounts"):
        lines += ["## Where each office went", "",
                  "| export location | office | HighLevel sub-account | its name |",
                  "|---|---|---|---|"]
        lines += [f"| {loc} | {_cell(t['office'])} | {t['location_id']} | {_cell(t['sub_account'])} |"
                  for loc, t in rep["sub_accounts"].items()] + [""]
    lines += ["## Records per location and object", "",
             "| location | HighLevel id | object | source | quarantined | excluded | written | created | "
             "failed "
             "| held |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for loc, data in rep["locations"].items():
        for obj, r in data["objects"].items():
            lines.append(f"| {loc} | {data['location_id']} | {obj} | {r['source']} | {r['quarantined']} | "
                         f"{r['excluded']} | {r['written']} | {r['created']} | {r['failed']} | {r['held']} |")
    lines += pause_lines(rep)
    pend = rep.get("pending") or {}
    if pend.get("count"):
        lines += ["", f"**{pend['count']} records pending** (failed or held, by error: {pend['by_error']}); "
                  "the list with stable keys is report/pending.csv; `dos2hl retry RUN_ID` replays them."]
    if rep.get("ledger_unreadable"):
        lines += ["",
                  f"**{len(rep['ledger_unreadable'])} ledger file(s) could not be read** (skipped; the "
                  f"records "
                  "they held were found again in HighLevel by their keys and adopted, never created twice; a "
                  "rollback does not undo them): " + ", ".join(f"`{k}`" for k in rep["ledger_unreadable"])]
    for loc, there in (rep.get("already_present") or {}).items():
        lines += ["", f"**Sub-account {there['location_id']} ({loc}) already held records under our keys** "
                  "(written by another run, or this export migrated before): "
                  + ", ".join(f"{n} {obj}" for obj, n in sorted(there["objects"].items()))
                  + ". They were adopted, never created twice"
                  + (": updated to the source (before-images in the ledger): "
                     + ", ".join(f"{n} {obj}"
                                 for obj, n in sorted(there["updated"].items())) if there["updated"]
                     else ", and equal to the source") + "."]
    rec = rep["reconciliation"]
    lines += ["", "Reconciliation: " + ("every staged row is written, excluded by policy, failed or held." if
                                        rec["ok"] else "**does not add up**: " + "; ".join(rec["problems"]))]
    for phase, n in (rep.get("shards_per_node") or {}).items():  # the Ray pool: where each shard ran
        lines += ["", f"Shards of the {phase} phase per Ray node: " + ", ".join(
            f"{node}: {k}" for node, k in n["shards"].items()) + f" ({n['retried']['shards']} started again "
                  "after their worker was lost)."]
    lines += ["", "## Owners (providers -> HighLevel users)", "",
              ", ".join(f"{k}: {v}" for k, v in rep["providers"].items()) or "(none)"]
    for r in rep["unmatched_providers"]:
        lines.append(f"- unmatched {r['location']}/{r['prov_id']}: {r['patients']} patients, "
                     f"{r['appointments']} appointments")
    lines += ["", f"Households: {rep['households_shared_channel']} contacts were created without an email or "
              "phone a family member already uses (the location refuses duplicate contacts); the value is in "
              "contact.shared_email / contact.shared_phone.", "", "## Fields not migrated", ""]
    lines += [f"- `{f['source']}` ({f['phi']}): {f['reason']}"
              for f in rep["fields_not_migrated"]] or ["(none)"]
    pend = rep.get("objects_not_in_the_map") or {}
    if pend:
        lines += ["", "## Objects the map does not send", ""]
        lines += [f"- {obj}: {n} source rows (not written; listed so nothing is silently missing)"
                  for obj, n in pend.items()]
    if rep.get("bulk_imported"):
        lines += ["", "## Bulk path (HighLevel's CSV importers, no API quota)", ""]
        lines += [f"- {loc}: " + ", ".join(f"{obj} {n}" for obj, n in sorted(objs.items()))
                  for loc, objs in rep["bulk_imported"].items()]
        lines += ["",
                  "Rows an import refused are in the ledger as failed (CsvImportError) and were then written "
                  "through the API (looked up first)."]
    if rep.get("excluded_by_reason"):
        lines += ["", "## Excluded by policy, with the reason (one row each in report/excluded.csv)", "",
                  "| location | object | reason | rows |", "|---|---|---|---:|"]
        lines += [f"| {r['location']} | {r['object']} | {r['reason']} | {r['rows']} |"
                  for r in rep["excluded_by_reason"]]
    notes = rep.get("notices") or {}
    if notes.get("writer"):
        lines += ["", "## Notices", ""] + [f"- {k}: {n}" for k, n in sorted(notes["writer"].items())]
    plain = notes.get("notes_as_plain_text") or {}
    if plain.get("count"):
        lines += ["", "## Clinical notes migrated as plain text", "",
                  f"{plain['count']} note revision(s) had rich text the converter could not render whole "
                  f"(HTML nested "
                  "deeper than the parser follows, or unreadable); each was migrated as plain text with "
                  "every word "
                  f"kept, its formatting lost. Note ids: {', '.join(str(i) for i in plain['note_ids'])}"
                  f"{' ...' if plain['count'] > len(plain['note_ids']) else ''}."]
    if notes.get("referral_variants") or notes.get("referral_unresolved_free_text"):
        lines += ["", "## Referral sources: free text normalised to a channel", "",
                  "| channel | free-text rows |", "|---|---:|"]
        lines += [f"| {v['canonical']} | {v['rows']} |" for v in notes["referral_variants"]]
        lines += ["",
                  f"{notes.get('referral_unresolved_free_text', 0)} free-text values matched no channel and "
                  "became \"Other\" (the typed texts are never shown: free text can name a person)."]
    lines += ["", "## Workflows to rebuild", "",
              "HighLevel has no API to create workflows: `report/workflows.md` "
              "(in the run's folder) says what to rebuild by hand (recall program, reminders, follow-ups), "
              "from "
              "the export's recall types, confirmation practice and contact preferences."]
    lines += ["", "## Quarantine and repairs by code", ""]
    lines += [f"- {code}: {n}" for code, n in rep["quarantine_by_code"].items()] or ["(none)"]
    d = rep["field_diff"]
    lines += ["", "## Field-level diff (read back from HighLevel)", ""]
    if d:
        lines.append(f"Read back: {d.get('read_back', {})}; not found: {d.get('not_found', {})}; "
                     f"mismatched or missing values: {d.get('mismatches', 0)}")
        lines += ["", "| object | field | match | mismatch | missing |", "|---|---|---:|---:|---:|"]
        for obj, fields in d.get("fields", {}).items():
            for name, c in sorted(fields.items()):
                lines.append(f"| {obj} | {name} | {c['match']} | {c['mismatch']} | {c['missing']} |")
    else:
        lines.append("(not verified in this phase)")
    req = rep["requests"]
    if req:
        lines += ["", "## Requests", "", ", ".join(f"{k}: {v}" for k, v in req.items() if k != "timeline"),
                  "",
                  "Every request the run sent counts (classes: write, lookup, discovery, verify, schema, "
                  "retry = "
                  "re-sends after a 429, 5xx or timeout); notes are read back one list per contact with "
                  "notes "
                  "(HighLevel has no notes search).", "",
                  "| minute (UTC) | requests | burst budget per minute |", "|---|---:|---:|"]
        lines += [f"| {m} | {n} | {req['budget_per_minute']} |" for m, n in req.get("timeline", [])]
    return "\n".join(lines) + "\n"


def pending(run_uri: str) -> list[dict[str, Any]]:
    """The dead letters of a run (``ledger.dead_letters``): what ``dos2hl retry`` replays."""
    from ..writing.ledger import dead_letters, read_ledger

    return dead_letters(read_ledger(open_store(run_uri)))


def _bulk_imported(phases: list[WriteResult]) -> dict[str, dict[str, int]]:
    """LOC -> object -> rows the CSV imports created, over every bulk step of the run (one per gate)."""
    out: dict[str, Counter[str]] = {}
    for p in phases:
        if p.phase == "bulk":
            for r in p.shards:
                out.setdefault(r["location"], Counter()).update(r.get("imported", {}))
    return {loc: dict(c) for loc, c in out.items()}


def write_report(run_uri: str, rep: dict[str, Any], phases: list[Any] = ()) -> dict[str, str]:  # type: ignore[assignment]
    """report.json/.md/.html, pending.csv (dead letters) and excluded.csv (every row excluded with its
    reason, from the last phase's shards)."""
    from .. import csvsafe

    store = open_store(run_uri)
    rows = pending(run_uri.rsplit("/sample", 1)[0] if run_uri.endswith("/sample") else run_uri)
    # a person opens these in a spreadsheet; source ids are export text: every cell through csvsafe
    columns = ["location", "object", "stable_key", "source_id", "outcome", "error_class", "http_status",
               "parent"]
    store.write_bytes("report/pending.csv",
                      csvsafe.text([columns, *([r[c] for c in columns] for r in rows)]).encode())
    excluded = sorted((r["location"],
                       *row) for p in phases[-1:] for r in p.shards for row in r.get("excluded_rows", []))
    store.write_bytes("report/excluded.csv",
                      csvsafe.text([["location", "object", "source_id", "reason"], *excluded]).encode())
    rep["pending"] = {"count": len(rows),
                      "by_error": dict(Counter(r["error_class"] or r["outcome"] for r in rows))}
    from ..writing.ledger import unreadable_ledger_files

    rep["ledger_unreadable"] = unreadable_ledger_files(
        open_store(run_uri.rsplit("/sample", 1)[0] if run_uri.endswith("/sample") else run_uri)
    )
    md = _md(rep)
    store.write_bytes("report/report.json", json.dumps(rep, indent=2, default=str).encode())
    store.write_bytes("report/report.md", md.encode())
    store.write_bytes("report/report.html", _html(rep).encode())
    base = run_uri.rstrip("/")
    return {"json": f"{base}/report/report.json", "md": f"{base}/report/report.md",
            "html": f"{base}/report/report.html", "pending": f"{base}/report/pending.csv",
            "excluded": f"{base}/report/excluded.csv",
            "workflows": f"{base.rsplit('/sample', 1)[0]}/report/workflows.md"}


def _cell(text: str) -> str:
    """A name as one markdown table cell (a pipe or line break in it cannot make a column)."""
    return " ".join(str(text or "").replace("|", "/").split()) or "-"
