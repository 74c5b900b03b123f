"""The quota planner: what a migration costs in HighLevel API requests and how long it takes at the
limits (100 requests per 10 s, 200 000 per day per sub-account), with and without the bulk CSV path.

It counts exactly what the run will send: the export is staged and every shard's payloads are counted
as the run's pure ``planning.plan_shard`` would plan them (``planning.tally``: from the columns that
decide each payload, without building them; the same counts), so a contact is one
create, a custom-object record a create plus its relation (none under the ``lookup_field`` policy),
an appointment an opportunity plus a calendar event, a note one create, a file an upload plus the note
that links it. Reads, counted as the run counts them (``highlevel.tally``): prepare's schema reads per
location, discovery's search pages before the creates (500 contacts or records, 100 opportunities a
page), the read-back by the chosen ``verify`` mode (the run's own rule, ``verify.read_back_cost``:
search pages where cheaper than one GET per record, a calendar range per year of events, one notes
list per contact with notes or files) and, on the bulk path, the search pages that rebuild the ID map
after an import. Nothing here talks to HighLevel.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from .mapping.model import Mapping as FieldMap
from .mapping.model import load_mapping

__all__ = ["BULK_KINDS", "PAGE", "plan_quota", "render_plan", "require_staging_of", "requests_for"]

# what the UI importers take (contacts, opportunities, custom-object records), by the planner's kinds
BULK_KINDS = ("contact", "record", "opportunity")
PAGE = {"contact": 500, "record": 500, "opportunity": 100}  # search page sizes for reconciliation
# per location: tenancy (the location), owners (users), schema (contact fields, associations, location);
# with CRM objects also the opportunity fields, pipelines and calendars
PREPARE_READS, PREPARE_CRM_READS = 5, 3


def requests_for(kinds: Counter[str], *, bulk: set[str] = frozenset()) -> dict[str, int]:  # type: ignore[assignment]
    """API requests for one location's payload counts; ``bulk``: kinds (contact, record:<obj>,
    opportunity:<obj>) that go by CSV import instead (their creates cost nothing, their
    reconciliation costs search pages)."""
    writes = reads = 0
    for k, n in kinds.items():
        kind = k.split(":", 1)[0]
        if k in bulk:
            reads += math.ceil(n / PAGE[kind])
        else:
            writes += n
    return {"writes": writes, "reconcile_reads": reads}


def plan_quota(source: str | Path, mapping: str | Path, *, locations: list[str] | None = None,
               bulk_threshold: int = 5000, sample: int = 300, burst: int = 100, window_s: float = 10.0,
               daily: int = 200_000, export_date: dt.date | None = None, staged: str | None = None,
               settings: Any = None, verify: str = "sample", workers: int | None = None,
               executor: str = "threads", check_staged: bool = False, jobs: int | None = None
               ) -> dict[str, Any]:
    """Per location and object: records, path, requests; the timeline with and without the bulk path;
    and for the group (``group``): totals, and the elapsed time with every location at once on the
    run's ``executor`` and ``workers`` (default: the run's) — which location finishes last, and why.

    ``staged``: an existing staging of ``source`` to plan from instead of staging it again (``dos2hl plan
    --staged``); ``check_staged``: refuse it unless it is this export's, staged with this map's profile
    (``dos2hl stage SOURCE --profile MAPPING``), on ``export_date`` when given, and every file it read
    still has the size it had (``require_staging_of``). ``jobs``: processes that plan the shards (default:
    this process's CPUs, for a staging of enough shards: ``planning.counts``); the plan is the same."""
    from .api import stage_export
    from .phi import create_key_file
    from .planning.counts import count_shards
    from .planning.plan import ShardSpec
    from .planning.zones import blank_zone_warnings, export_zones, office_zones
    from .settings import Dos2hlSettings
    from .storage import open_store

    settings = settings or Dos2hlSettings()
    fmap: FieldMap = load_mapping(mapping)
    with tempfile.TemporaryDirectory(prefix="dos2hl-plan-") as tmp:
        if staged is None:
            staged = str(Path(tmp) / "staged")
            stage_export(source, staged, profile=str(mapping), settings=settings, export_date=export_date)
        elif check_staged:
            require_staging_of(open_store(staged, settings.s3), open_store(source, settings.s3),
                               fmap.to_profile().name, export_date)
        key = create_key_file(Path(tmp) / "plan.key")  # sealing changes no count; the real key is not needed
        import json

        manifest = json.loads(open_store(staged).read_bytes("manifest.json"))
        from .staging import require_balanced

        require_balanced(manifest, staged)  # a plan on a partly read export would under-count
        raw_zones = export_zones(open_store(staged))  # every office's LOCATION.TZ
        zones = office_zones(raw_zones, {}, {})
        shards: dict[str, set[int]] = {}
        for s in manifest["tables"].get("patient", {}).get("shards", []):
            shards.setdefault(s["location"], set()).add(int(s["shard"]))
        locs = sorted(locations or shards)
        data = fmap.model_dump(mode="json")
        specs = [ShardSpec("plan", tmp, staged, data, loc, shard, {"time_zone": None}, None, str(key),
                           manifest.get("source") or str(source), zones)
                 for loc in locs for shard in sorted(shards.get(loc, ()))]
        counted = count_shards(specs, fmap.relations, jobs=jobs)
        per_loc: dict[str, Counter[str]] = {loc: counted[loc].kinds if loc in counted else Counter()
                                            for loc in locs}
        patients = Counter({loc: c.patients for loc, c in counted.items()})
        years = {loc: c.years for loc, c in counted.items()}
        noted = Counter({loc: c.noted for loc, c in counted.items()})
    rate = burst / window_s
    out: dict[str, Any] = {"limits": {"burst": burst, "window_s": window_s, "daily": daily},
                           "bulk_threshold": bulk_threshold, "sample": sample, "verify": verify,
                           "locations": {}}
    crm = any(e.table in ("appt", "recall") and e.target != "skip" for e in fmap.fields)
    prepare = PREPARE_READS + PREPARE_CRM_READS * crm
    for loc, kinds in per_loc.items():
        bulk = {k for k, n in kinds.items() if k.split(":", 1)[0] in BULK_KINDS and n > bulk_threshold}
        verify_reads = _verify_reads(kinds, patients[loc], sample, verify_mode=verify,
                                     years=len(years.get(loc, ())),
                                     noted=noted[loc])
        discovery = _discovery_reads(kinds,
                                     sample_share=min(1.0, sample / patients[loc]) if patients[loc] else 0.0,
                                     bulk=bulk)
        api = requests_for(kinds)
        with_bulk = requests_for(kinds, bulk=bulk)
        rows = [{"object": k, "records": n, "path": "CSV" if k in bulk else "API",
                 "requests": math.ceil(n / PAGE[k.split(":", 1)[0]]) if k in bulk else n}
                for k, n in sorted(kinds.items())]
        reads = verify_reads + prepare + discovery
        total_api = api["writes"] + reads
        total_bulk = with_bulk["writes"] + with_bulk["reconcile_reads"] + reads
        lean = Counter({k: n for k, n in kinds.items() if not k.startswith("relation:")})
        lean_bulk = requests_for(lean, bulk=bulk)
        total_lean = lean_bulk["writes"] + lean_bulk["reconcile_reads"] + reads
        out["locations"][loc] = {
            "patients": patients[loc], "rows": rows, "bulk_kinds": sorted(bulk),
            "api_path": {"writes": api["writes"], "verify_reads": verify_reads, "prepare_reads": prepare,
                         "discovery_reads": discovery, "requests": total_api,
                         **_timeline(total_api, rate, daily)},
            "with_bulk_path": {"writes": with_bulk["writes"], "reconcile_reads": with_bulk["reconcile_reads"],
                               "verify_reads": verify_reads, "prepare_reads": prepare,
                               "discovery_reads": discovery,
                               "requests": total_bulk,
                               "csv_imports": len(bulk), **_timeline(total_bulk, rate, daily)},
            # what the map could choose: every custom object under relations: lookup_field
            "with_bulk_and_lookup_fields": {"writes": lean_bulk["writes"], "requests": total_lean,
                                            "relations_saved": sum(n for k, n in kinds.items()
                                                                   if k.startswith("relation:")),
                                            **_timeline(total_lean, rate, daily)},
        }
    out["manual_steps"] = _manual_steps(fmap, out, staged_manifest=manifest)
    # local times are placed in their office's zone: an office without one is a guess (ids only)
    out["warnings"] = blank_zone_warnings(raw_zones) if _timed(fmap) else []
    worst = max((v["with_bulk_path"]["elapsed_hours"] for v in out["locations"].values()), default=0.0)
    out["grade"] = _grade(worst, len(out["manual_steps"]))
    out["group"] = {path: group_timeline(out["locations"], path, workers=workers, executor=executor)
                    for path in ("api_path", "with_bulk_path")}
    out["seed_estimate_hours"] = [48, 72]
    out["solo_practice_goal_hours"] = 24
    return out


def require_staging_of(staged: Any, export: Any, profile: str, export_date: dt.date | None) -> None:
    """Refuse (``ConfigError``) a staging that is not what ``plan`` would stage from ``export`` now: another
    export, another profile than the map's, another export date, or a file whose size changed since (names
    files, never a value)."""
    import json

    from .errors import ConfigError

    if not staged.exists("manifest.json"):
        raise ConfigError(f"--staged {staged.uri}: no manifest.json there (stage the export first: "
                          f"dos2hl stage SOURCE --to URI --profile MAPPING)")
    m = json.loads(staged.read_bytes("manifest.json"))
    why = []
    if not _same_place(str(m.get("source")), export.uri):
        why.append(f"it was staged from {m.get('source')!r}, not {export.uri!r}")
    if m.get("profile") != profile:
        why.append(f"it was staged with the profile {m.get('profile')!r}, not the map's {profile!r} "
                   "(stage with --profile MAPPING)")
    if export_date is not None and m.get("export_date") != str(export_date):
        why.append(f"its export date is {m.get('export_date')}, not {export_date}")
    changed = sorted(name for name, f in (m.get("files") or {}).items()
                     if not export.exists(name) or export.size(name) != f.get("bytes"))
    known = set(m.get("files") or {}) | set(m.get("unknown_files") or ())
    for k in export.list("", skip_dirs=("IMAGES",)):  # what discover would list now (not hidden files)
        name = k.rsplit("/", 1)[-1]
        if k not in known and not name.startswith(".") and name.lower() != "manifest.json":
            changed.append(k)
    if changed:
        why.append(f"files changed or added since it was staged: {', '.join(changed[:10])}"
                   + (f" (+{len(changed) - 10} more)" if len(changed) > 10 else ""))
    if why:
        raise ConfigError(f"--staged {staged.uri} is not a staging of this export with this map: "
                          + "; ".join(why) + ". Stage it again, or plan without --staged.")


def _same_place(a: str, b: str) -> bool:
    if a.startswith("s3://") or b.startswith("s3://"):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


def _timed(fmap: FieldMap) -> bool:
    """The map sends local times (appointments, activities, documents)."""
    return any(e.table in ("appt", "commlog",
                           "document") and e.target not in ("skip", "reference") for e in fmap.fields)


def _have(kinds: Counter[str], share: float = 1.0) -> dict[str, int]:
    """The read-back's kinds (``verify.read_back_cost``) from the planner's payload kinds."""
    have = {"contact": kinds["contact"], "event": kinds["event"],
            "opportunity": sum(n for k, n in kinds.items() if k.startswith("opportunity:"))}
    have |= {k: n for k, n in kinds.items() if k.startswith("record:")}
    return {k: math.ceil(n * share) for k, n in have.items()}


def _verify_reads(kinds: Counter[str], patients: int, sample: int, *, verify_mode: str = "sample",
                  years: int = 0,
                  noted: int = 0) -> int:
    """The run's read-backs: the sample phase's (its records, when there is one), then the final one:
    every record (``full``) or the sample's share of the location (``sample``); by the run's own rule."""
    from .writing.verify import read_back_cost

    if not patients:
        return 0
    share = min(1.0, (sample or 300) / patients)
    total = 0
    if sample:  # the sample phase's read-back: the location holds the sample's records
        total += read_back_cost(_have(kinds, share), event_windows=years)[1] + math.ceil(noted * share)
    if verify_mode == "full":
        total += read_back_cost(_have(kinds), event_windows=years)[1] + noted
    else:
        total += read_back_cost(_have(kinds), share, event_windows=years)[1] + math.ceil(noted * share)
    return total


def _discovery_reads(kinds: Counter[str], *, sample_share: float = 0.0, bulk: set[str] = frozenset()  # type: ignore[assignment]
                     ) -> int:
    """The pre-create inventory's search pages (``driver.discover``, class ``discovery``), before each
    phase of a first run: contacts and each object's records by 500, each pipeline's opportunities and
    the media library by 100, one page at least per kind; a later phase pages through what the earlier
    ones wrote (the sample's share, or everything the CSV imports brought)."""
    per = [(k, n, PAGE[k.split(":", 1)[0]]) for k, n in kinds.items()
           if n and k.split(":", 1)[0] in ("contact", "record", "opportunity")]
    files = sum(n for k, n in kinds.items() if k.startswith("file:"))
    per += [("file", files, 100)] if files else []
    phases = ([0.0] if sample_share else []) + ([sample_share] if bulk else [])
    total = sum(math.floor(n * share) // size + 1 for share in phases for _k, n, size in per)
    held = {k: (1.0 if k in bulk else sample_share) for k, _n, _s in per}  # before the full phase
    return total + sum(math.floor(n * held[k]) // size + 1 for k, n, size in per)


def _timeline(requests: int, rate: float, daily: int) -> dict[str, float]:
    """Hours at the burst limit, days of daily quota, and elapsed hours (a day's quota spent, then the
    wait for the reset)."""
    full_days, rest = divmod(requests, daily)
    elapsed = full_days * 24 + rest / rate / 3600
    return {"hours_at_burst_limit": round(requests / rate / 3600, 2),
            "days_of_quota": round(requests / daily, 3),
            "elapsed_hours": round(elapsed, 2)}


def _manual_steps(fmap: FieldMap, plan: dict[str, Any], *, staged_manifest: dict[str, Any]) -> list[str]:
    from .mapping.objectmap import PIPELINES

    used = {e.table for e in fmap.fields if e.target not in ("skip", "reference") and e.phi != "omit"}
    steps = ["sign HighLevel's BAA / enable the HIPAA add-on before any patient data moves (no API)",
             "pause workflows that trigger on contact/opportunity created (report/workflows.md)"]
    for table, name in (("appt", "Appointments"), ("recall", "Recall")):
        if table in used:
            steps.append(f"create pipeline '{name}' with stages {', '.join(PIPELINES[name].stages)} (no API)")
    if "appt" in used:
        steps.append("add the providers to the appointment calendar's team (events are assigned to them)")
    if "recall" in used or "commlog" in used:
        steps.append("rebuild recall and reminder workflows from report/workflows.md (no workflow API)")
    imports = sum(len(v["bulk_kinds"]) for v in plan["locations"].values())
    if imports:
        steps.append(f"import {imports} CSV package(s) in HighLevel's UI, then confirm in the flow")
    docs = staged_manifest["tables"].get("document", {}).get("rows", 0)
    if "document" in used and docs:
        steps.append("review report/excluded.csv for documents that cannot be uploaded (over 25 MB, "
                     "proprietary "
                     "formats, missing files)")
    return steps


def _grade(hours: float, manual: int) -> str:
    """By the elapsed time at the limits; the manual steps are listed beside it."""
    if hours <= 24:
        grade = "A (under a day)"
    elif hours <= 72:
        grade = "B (within the seed's 48-72 h)"
    elif hours <= 7 * 24:
        grade = "C (about a week: split by location or use the bulk path)"
    else:
        grade = "D (more than a week of quota: plan a phased cutover)"
    return f"{grade}, {manual} manual steps"


def group_timeline(locations: dict[str, Any], path: str, *, workers: int | None = None,
                   executor: str = "threads") -> dict[str, Any]:
    """A group's totals on one path, and its elapsed hours with every location at once: each location is
    paced by its own sub-account, so with a shard written for every location at once the group takes
    as long as its slowest location; with fewer (the thread executor runs at most 64 threads; Ray's
    workers run several shards each), locations queue (longest first, as a lower bound). Also the
    hours one location after another would take, for comparison."""
    from .execution.schedule import lanes as lanes_of

    plans = {loc: v[path] for loc, v in locations.items()}
    if not plans:
        return {"locations": 0}
    lanes = [0.0] * max(1, min(lanes_of(len(plans), executor, workers), len(plans)))
    for hours in sorted((v["elapsed_hours"] for v in plans.values()), reverse=True):
        lanes[lanes.index(min(lanes))] += hours
    last = max(plans, key=lambda loc: (plans[loc]["elapsed_hours"], loc))
    v = plans[last]
    why = (f"its daily quota: {v['requests']:,} requests are {v['days_of_quota']} days of its sub-account's"
           if v["days_of_quota"] > 1 else
           f"its burst limit: {v['requests']:,} requests at its sub-account's rate")
    return {"locations": len(plans), "executor": executor, "workers": len(lanes),  # shards at once
            "requests": sum(x["requests"] for x in plans.values()),
            "most_days_of_quota": max(x["days_of_quota"] for x in plans.values()),
            "elapsed_hours": round(max(lanes), 2),
            "one_after_another_hours": round(sum(x["elapsed_hours"] for x in plans.values()), 2),
            "finishes_last": {"location": last, "elapsed_hours": v["elapsed_hours"], "why": why}}


def render_plan(p: dict[str, Any]) -> str:
    """Markdown for people."""
    lim = p["limits"]
    lines = [f"# Quota plan ({lim['burst']} requests / {lim['window_s']:g} s, {lim['daily']:,} / day; bulk "
             f"path "
             f"above {p['bulk_threshold']:,} records per object)", ""]
    for loc, v in p["locations"].items():
        a, b = v["api_path"], v["with_bulk_path"]
        lines += [f"## {loc}: {v['patients']:,} patients", "", "| object | records | path | requests |",
                  "|---|---:|---|---:|"]
        lines += [f"| {r['object']} | {r['records']:,} | {r['path']} | {r['requests']:,} |"
                  for r in v["rows"]]
        c = v["with_bulk_and_lookup_fields"]
        lines += ["", "| | requests | hours at the burst limit | days of quota | elapsed hours |",
                  "|---|---:|---:|---:|---:|",
                  f"| API only | {a['requests']:,} | {a['hours_at_burst_limit']} | {a['days_of_quota']} | "
                  f"{a['elapsed_hours']} |",
                  f"| with bulk CSV | {b['requests']:,} | {b['hours_at_burst_limit']} | {b['days_of_quota']} "
                  f"| "
                  f"{b['elapsed_hours']} |",
                  f"| bulk CSV + lookup_field | {c['requests']:,} | {c['hours_at_burst_limit']} | "
                  f"{c['days_of_quota']} | {c['elapsed_hours']} |", ""]
    lean = [v["with_bulk_and_lookup_fields"] for v in p["locations"].values()]
    if any(x["relations_saved"] for x in lean):
        worst = max(x["elapsed_hours"] for x in lean)
        lines += [f"With `relations: lookup_field` for every custom object in the map (the record stores its "
                  f"contact's id; no relation call): {sum(x['relations_saved'] for x in lean):,} fewer "
                  f"requests, "
                  f"{worst} elapsed hours for the slowest location.", ""]
    g = p.get("group", {}).get("with_bulk_path")
    if g and g["locations"] > 1:
        last = g["finishes_last"]
        lines += [f"## The group: {g['locations']} locations at once ({g['workers']} shards written at once, "
                  f"{g.get('executor', 'threads')})", "",
                  f"{g['requests']:,} requests in all; {g['elapsed_hours']} elapsed hours with every "
                  f"location at once ({g['one_after_another_hours']} one after another). "
                  f"{last['location']} finishes last ({last['elapsed_hours']} hours): {last['why']}.", ""]
    lines += [f"**Grade: {p['grade']}** (the seed quotes "
              f"{p['seed_estimate_hours'][0]}-{p['seed_estimate_hours'][1]} "
              "hours)", "", "Manual steps:", ""] + [f"- {s}" for s in p["manual_steps"]]
    if p.get("warnings"):
        lines += ["", "Warnings:", ""] + [f"- {w}" for w in p["warnings"]]
    return "\n".join(lines) + "\n"
