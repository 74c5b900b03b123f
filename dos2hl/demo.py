"""The whole chain on embedded defaults, on fake data: what ``make demo`` and ``dos2hl demo`` run.

``demo_world`` builds everything a real migration needs, the way an operator would: a generated
practice (two locations, typical mess, every object type), the HighLevel sandbox serving on
loopback with a fallback-owner user in each sub-account, ``locations.yaml`` (tokens in environment
variables), a PHI key, the audit, ``dos2hl map propose`` on the export, the map confirmed
automatically (with a printed warning: a real run needs a person), ``provision --apply`` and the
provider report. The migration itself is then run by the caller: the Prefect flow over local Ray
(``flows/demo.py``) or the library on threads (``dos2hl demo``).

Limits are scaled (1,000 requests per second instead of 100 per 10 s, in the sandbox and in the
governor alike) so the demo takes a minute, not hours; everything else is as in production.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DemoWorld", "demo_world", "run_demo", "do_manual_steps"]

WARNING = ("WARNING: demo mode confirms the field map and approves the sample automatically. A real "
           "migration waits for a person at both gates.")
DEMO_LIMITS = {"DOS2HL_GOVERNOR_BURST": "1000", "DOS2HL_GOVERNOR_WINDOW_S": "1",
               "DOS2HL_GOVERNOR_MARGIN_S": "0.06"}


@dataclass
class DemoWorld:
    out: Path
    export: Path
    mapping: Path
    locations: Path
    base_url: str
    export_date: dt.date
    lines: list[str]


def do_manual_steps(state: Path, plans: Mapping[str, object], location_ids: dict[str, str]) -> int:
    """What the practice's HighLevel admin does by hand after ``provision --plan`` lists it: create
    the pipelines and stages the API cannot (sandbox only). Returns the steps done."""
    from .sandbox import add_pipeline

    done = 0
    for loc, plan in plans.items():
        for ch in plan.manual():  # type: ignore[attr-defined]
            if ch.kind == "pipeline":
                add_pipeline(state, location_ids[loc], ch.key, ch.options)
                done += 1
    return done


@contextlib.contextmanager
def demo_world(out: Path, *, patients: int = 150, seed: int = 42,
               history_years: int = 3) -> Iterator[DemoWorld]:
    from .audit import run_audit
    from .generate import GenerateParams, generate
    from .locations import LocationsFile, LocationTarget
    from .mapping.model import save_mapping
    from .mapping.propose import propose
    from .phi import create_key_file
    from .providers import resolve_providers
    from .provision import provision
    from .sandbox import add_user, init_locations, running
    from .settings import Dos2hlSettings

    out = Path(out)
    params = GenerateParams(seed=seed, patients=patients, locations=2, mess="typical",
                            history_years=history_years)
    lines = [WARNING]
    gen = generate(out / "practice", params)
    export = out / "practice" / "export"
    lines.append(f"generated a practice of {patients:,} patients over 2 locations ({gen['rows_total']:,} "
                 f"rows)")
    for d in ("sandbox", "runs"):  # a demo starts from an empty HighLevel and no earlier run
        shutil.rmtree(out / d, ignore_errors=True)
    state = out / "sandbox"
    tokens = init_locations(state, 2)
    manager = "office.manager@demo-practice.example"
    targets = []
    for i, lid in enumerate(tokens, start=1):
        add_user(state, lid, "Office", "Manager", manager)
        os.environ[f"DOS2HL_DEMO_TOKEN_L{i:03d}"] = tokens[lid]
        targets.append(LocationTarget(source=f"L{i:03d}", location_id=lid,
                                      token_env=f"DOS2HL_DEMO_TOKEN_L{i:03d}"))
    # the practice's providers who have an email are users of their sub-account (an agency invites
    # them in HighLevel's UI; the public API cannot): they are matched by email, the rest fall back
    import pyarrow.parquet as pq

    lids = {t.source: t.location_id for t in targets}
    staff = pq.read_table(out / "practice" / "truth" / "provider.parquet",
                          columns=["fname", "lname", "email", "home_loc_id", "active_flg"]).to_pylist()
    for p in staff:
        if p["email"] and p["active_flg"] and p["home_loc_id"] in lids:  # and on the calendar's team
            add_user(state, lids[p["home_loc_id"]], p["fname"] or "", p["lname"] or "", p["email"],
                     calendars=True)
    key = out / "keys" / "phi.key"
    if not key.exists():
        create_key_file(key)
    os.environ.update({"DOS2HL_STORAGE": str(out / "runs"), "DOS2HL_PHI_KEY_FILE": str(key), **DEMO_LIMITS})
    with running(state, burst=(1000, 1.0), daily=10**6) as base:
        lf = LocationsFile(target=base, fallback_owner=manager, locations=targets)
        locations = out / "locations.yaml"
        locations.write_text(yaml.safe_dump(lf.model_dump(mode="json", exclude={"path"}), sort_keys=False))
        aud = run_audit(export, out / "audit", export_date=params.export_date)
        lines.append(f"audit: {aud['identity']} -> {out / 'audit' / 'audit.md'}")
        fmap = propose(export)
        review = sum(e.confidence < 0.8 for e in fmap.fields)
        mapping = save_mapping(fmap.confirm("dos2hl demo (auto-confirmed)"), out / "mapping.yaml")
        lines.append(f"map: {len(fmap.fields)} columns proposed ({review} below 0.80 confidence), "
                     f"auto-confirmed "
                     f"-> {mapping}")
        settings = Dos2hlSettings()
        from .governor import open_governor

        permits = open_governor(settings)
        plans = provision(fmap, lf, source=export, apply=True, permits=permits, settings=settings,
                          ledger=settings.storage)
        made = sum(len(p.exists()) for p in plans.values())
        manual = do_manual_steps(state, plans, lids)
        lines.append(f"provision: {made} schema items in place across {len(plans)} sub-accounts; manual "
                     f"steps: "
                     f"{sum(len(p.manual()) for p in plans.values())} (see the plan), {manual} done as the "
                     "practice's admin would (pipelines)")
        report = resolve_providers(export, lf, settings=settings, profile=str(mapping), permits=permits,
                                   export_date=params.export_date)
        csv_path, md_path = report.write(out / "providers")
        s = report.summary()
        lines.append(f"providers: {s['email']} matched by email, {s['fallback']} to the fallback owner -> "
                     f"{md_path}")
        yield DemoWorld(out, export, mapping, locations, base, params.export_date, lines)


def run_demo(out: Path, *, patients: int = 150, seed: int = 42,
             executor: str = "threads") -> dict[str, Any]:
    """The chain without Prefect (``dos2hl demo``): migrate on threads (or local Ray) after demo_world."""
    from .pipeline import MigrateParams, migrate
    from .progress import terminal_sinks

    with demo_world(out, patients=patients, seed=seed) as w:
        rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                     export_date=w.export_date, sample=50, executor=executor,
                                     workers=4), approve=lambda _rep: True,
                      progress=terminal_sinks())  # a live table, or a line per location every N s
        w.lines.append(_summary(rep))
        w.lines.append(f"report: {rep['report']}")
        return {"lines": w.lines, "report": rep["report"], "status": rep["status"]}


def _summary(rep: dict) -> str:  # type: ignore[type-arg]
    written = sum(o["written"] for loc in rep["locations"].values() for o in loc["objects"].values())
    diff = rep.get("field_diff", {})
    return (f"migrate: run {rep['run_id']} {rep['status']}: {written:,} records written; sample field diff: "
            f"{diff.get('mismatches', 0)} mismatched values over {sum(diff.get('read_back', {}).values()):,} "
            "records read back")
