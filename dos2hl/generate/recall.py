"""Recall rows (GENERATOR.md §4.6, EXPORT_FORMAT.md §10): one per patient and recall type, with
LAST_DT equal to the latest qualifying completed procedure (a §5 invariant)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .context import LocCtx
from .people import Person
from .practice import blank
from .rng import add_months
from .visits import Visit

__all__ = ["recalls_for", "QUALIFYING"]

# recall type -> (qualifying codes, interval months, interval text)
QUALIFYING: dict[str, tuple[frozenset[str], int, str]] = {
    "PRO": (frozenset({"D1110"}), 6, "6M"),
    "CHPRO": (frozenset({"D1120"}), 6, "6M"),
    "PERIO": (frozenset({"D4910"}), 3, "3M"),
    "BWX": (frozenset({"D0272", "D0274"}), 12, "1Y"),
    "FMX": (frozenset({"D0210"}), 60, "5Y"),
    "PANO": (frozenset({"D0330"}), 60, "5Y"),
}


def recalls_for(lc: LocCtx, p: Person, visits: list[Visit]) -> list[dict[str, Any]]:
    ctx, rng = lc.ctx, lc.visits
    last: dict[str, dt.date] = {}
    for v in visits:
        if v.completed:
            for pr in v.procs:
                for rt, (codes, _m, _t) in QUALIFYING.items():
                    if pr.code in codes:
                        last[rt] = v.day
    cleanings = [rt for rt in ("PRO", "CHPRO", "PERIO") if rt in last]
    keep = ([max(cleanings, key=lambda rt: last[rt])] if cleanings else []) + [
        rt for rt in ("BWX", "FMX", "PANO") if rt in last
    ]
    future = next((v for v in visits if v.day > ctx.export and v.kind in ("RCL", "PERIO")), None)
    out = []
    for rt in keep:
        _codes, months, iv = QUALIFYING[rt]
        if rt == "PERIO" and p.perio and rng.random() < 0.5:
            months, iv = 4, "4M"
        calc = add_months(last[rt], months)
        r = blank("recall")
        if p.status != "A":
            status = "INA"
        elif future is not None and rt in ("PRO", "CHPRO", "PERIO"):
            status = "SCH"
            r["sched_appt_id"] = future.appt["appt_id"]
        else:
            status = "OVR" if calc < ctx.export else "DUE"
        r.update(
            recall_id=ctx.ids.next("recall"),
            pat_id=p.pat_id,
            recall_type=rt,
            interval=iv,
            last_dt=last[rt],
            due_dt=calc,
            calc_due_dt=calc,
            status=status,
            disabled_flg=False,
        )
        if status == "OVR":
            r["contact_stat"] = rng.choice(("LM", "TXT", "MAILED", "EMAIL", "NA"))
            r["last_contact_dt"] = min(calc + dt.timedelta(days=rng.randint(1, 60)), ctx.export)
            r["contact_attempts"] = rng.randint(1, 4)
        out.append(r)
        if ctx.mess_on and lc.hit("RC1"):
            dup = dict(r)
            dup["recall_id"] = ctx.ids.next("recall")
            if status == "INA":
                dup["status"] = "DUE" if calc >= ctx.export else "OVR"
                dup["__d"] = [("RC1", "status", "audit", False)]
            else:
                dup["__d"] = [("RC1", "recall_type", "audit", False)]
            out.append(dup)
    return out
