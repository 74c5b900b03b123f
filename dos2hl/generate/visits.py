"""A patient's chair time (GENERATOR.md §4.6): recall-driven hygiene, diagnosed treatment plans,
emergencies, and the outcome of every appointment (complete, broken, cancelled, still scheduled).

Produces APPT/APPTPROC/TXPLAN/TXITEM rows plus ``Visit`` objects that the ledger, notes and
documents modules walk; ledger ids are attached later by ``finance``.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from .context import LocCtx
from .people import Person
from .practice import blank, money
from .rng import Weighted, add_months, rand_date

__all__ = ["Proc", "Visit", "History", "simulate"]

_OUTCOME = Weighted([("CMP", 80), ("BRK", 9), ("CAN", 11)])
_POSTERIOR = tuple(range(1, 6)) + tuple(range(12, 22)) + tuple(range(28, 33))
_ANTERIOR = tuple(range(6, 12)) + tuple(range(22, 28))
_PRIMARY = tuple("ABCDEFGHIJKLMNOPQRST")
_ADULT_TX = Weighted(
    [
        ("D2391", 20),
        ("D2392", 18),
        ("D2393", 6),
        ("D2150", 4),
        ("D2330", 6),
        ("D2331", 4),
        ("D2740", 8),
        ("D2750", 4),
        ("D2950", 4),
        ("D3330", 2),
        ("D3320", 1.5),
        ("D3310", 1),
        ("D7140", 5),
        ("D7210", 3),
        ("D4341", 5),
        ("D4342", 3),
        ("D6010", 1),
        ("D9944", 2),
        ("D9972", 1),
        ("D2920", 1),
        ("D0220", 3),
    ]
)
_CHILD_TX = Weighted([("D2391", 30), ("D2392", 20), ("D1351", 25), ("D2930", 8), ("D3220", 5), ("D7140", 6)])
_MINUTES = {"D27": 90, "D33": 90, "D32": 90, "D60": 100, "D43": 60, "D71": 40, "D72": 60}
_SURF_N = {
    "D2140": 1,
    "D2150": 2,
    "D2160": 3,
    "D2330": 1,
    "D2331": 2,
    "D2332": 3,
    "D2391": 1,
    "D2392": 2,
    "D2393": 3,
    "D2394": 4,
}
_QUADS = ("UR", "UL", "LL", "LR")


@dataclass(slots=True, eq=False)
class Proc:
    code: str
    tooth: str | None
    surf: str | None
    fee: int  # cents
    ap: dict[str, Any]  # the APPTPROC row
    tx: dict[str, Any] | None = None  # the TXITEM row it completes


@dataclass(slots=True, eq=False)
class Visit:
    appt: dict[str, Any]
    person: Person
    day: dt.date
    kind: str  # NP RCL PERIO TX EMER
    status: str
    prov: str
    procs: list[Proc] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.status == "CMP"


@dataclass(slots=True, eq=False)
class History:
    visits: list[Visit] = field(default_factory=list)
    txplans: list[dict[str, Any]] = field(default_factory=list)
    txitems: list[dict[str, Any]] = field(default_factory=list)
    extra_appts: list[dict[str, Any]] = field(default_factory=list)  # DUP2 placeholders


def _dst_day(year: int) -> dt.date:
    d = dt.date(year, 3, 8)
    return d + dt.timedelta(days=(6 - d.weekday()) % 7)


def _tooth_surf(rng: random.Random, code: str, child: bool) -> tuple[str | None, str | None]:
    area = code[:2]
    if code in _SURF_N:
        ant = code.startswith("D233")
        tooth = rng.choice(_ANTERIOR if ant else (_PRIMARY if child and rng.random() < 0.6 else _POSTERIOR))
        surf = "".join(rng.sample("MIDFL" if ant else "MODBL", _SURF_N[code]))
        return str(tooth), surf
    if code in ("D4341", "D4342"):
        return rng.choice(_QUADS), None
    if code in ("D2930", "D3220") or (child and code == "D7140"):
        return rng.choice(_PRIMARY), None
    if code == "D1351":
        return str(rng.choice((3, 14, 19, 30))), None
    if area in ("D2", "D3", "D6", "D7") or code == "D0220":
        return str(rng.choice(_POSTERIOR + _ANTERIOR)), None
    return None, None


class _Sim:
    """Simulation state for one person (kept out of module globals)."""

    def __init__(self, lc: LocCtx, p: Person) -> None:
        self.lc, self.p = lc, p
        self.rng = lc.visits
        self.h = History()
        self.last: dict[str, dt.date] = {}
        self.stop = min(p.end, lc.ctx.export)
        self.active_at_export = p.end > lc.ctx.export and p.deceased is None
        self.fmx_pref = self.rng.random() < 0.4
        self.fees = lc.loc.fees

    # -- appointments --------------------------------------------------------------------------
    def appt(
        self, day: dt.date, kind: str, codes: list[tuple[str, str | None, str | None, Any]], status: str
    ) -> Visit:
        lc, rng, p = self.lc, self.rng, self.p
        ctx = lc.ctx
        hyg = kind in ("RCL", "PERIO", "NP")
        prov = lc.active_provider(rng, "D", day)
        if ctx.mess_on and lc.hit("PR1"):
            prov = ctx.pr.ghost_provider
        ops = [o for o, h in lc.loc.ops if h == hyg] or [o for o, _ in lc.loc.ops]
        slot = rng.randrange(54)
        tm = dt.time(7 + slot // 6, (slot % 6) * 10)
        a = blank("appt")
        appt_id = ctx.ids.next("appt")
        length = (
            90
            if kind == "NP"
            else 60
            if hyg
            else 40
            if kind == "EMER"
            else min(115, max(40, 10 + sum(_MINUTES.get(c[0][:3], 30) for c in codes)))
        )
        created = day - dt.timedelta(days=rng.randint(1, 120))
        a.update(
            appt_id=appt_id,
            pat_id=p.pat_id,
            appt_name=f"{p.lname}, {p.fname}",
            loc_id=lc.loc.loc_id,
            op_id=rng.choice(ops),
            prov_id=prov,
            hyg_id=lc.active_provider(rng, "H", day) if hyg else None,
            asst_id=lc.active_provider(rng, "A", day) if not hyg else None,
            appt_date=day,
            appt_time=tm,
            length_min=length,
            status=status,
            appt_type=kind,
            is_new_pat=kind == "NP",
            is_hyg=hyg,
            reason="/".join(c[0] for c in codes)[:80],
            created_dt=dt.datetime.combine(
                created, dt.time(rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59))
            ),
            created_by=rng.choice(lc.loc.staff),
        )
        if status in ("CMP", "BRK", "CAN") or day <= ctx.export + dt.timedelta(days=2):
            a["confirm"] = rng.choice(("CNF", "TXTCNF", "EMCNF", "LMAM", "UNC")) if status != "BRK" else "UNC"
        if status == "CAN":
            a["cancel_dt"] = max(created, day - dt.timedelta(days=rng.randint(0, 3)))
            a["cancel_reason"] = rng.choice(
                ("Sick", "Work conflict", "Rescheduled", "Weather", "Car trouble")
            )
        if status == "CMP":
            t0 = dt.datetime.combine(day, tm)
            arr = t0 - dt.timedelta(minutes=rng.randint(0, 15))
            a["arrived_tm"] = arr.time().replace(second=0)
            a["seated_tm"] = (t0 + dt.timedelta(minutes=rng.randint(0, 10))).time()
            a["dismissed_tm"] = (t0 + dt.timedelta(minutes=length + rng.randint(-5, 10))).time()
        if status in ("BRK", "CAN") and ctx.mess_on and lc.hit("DT4"):
            a["appt_date"] = day = _dst_day(day.year)
            a["appt_time"] = dt.time(2, rng.choice((0, 15, 30, 45)))
            a["__d"] = [("DT4", "appt_time", "flag", False)]
        d = a.get("__d", [])
        if prov == ctx.pr.ghost_provider:
            d.append(("PR1", "prov_id", "audit", False))
        if d:
            a["__d"] = d
        v = Visit(a, p, day, kind, status, prov)
        wide = []
        for seq, (code, tooth, surf, tx) in enumerate(codes[:6], 1):
            fee = self.fees.get(code, 0)
            ap = blank("apptproc")
            ap.update(
                appt_id=appt_id,
                seq=seq,
                proc_code=code,
                tooth=tooth,
                surf=surf,
                fee=money(fee),
                txitem_id=tx["txitem_id"] if tx else None,
            )
            v.procs.append(Proc(code, tooth, surf, fee, ap, tx))
            wide.append((code, tooth, surf))
        a["__w"] = wide
        self.h.visits.append(v)
        if ctx.mess_on and lc.hit("DUP2"):
            ph = blank("appt")
            ph.update(
                appt_id=ctx.ids.next("appt"),
                pat_id=None,
                appt_name=f"NEW PT {rng.choice(('CALL', 'REF', ''))} {p.fname}".replace("  ", " ").upper(),
                loc_id=lc.loc.loc_id,
                op_id=a["op_id"],
                prov_id=lc.active_provider(rng, "D", day),
                appt_date=day,
                appt_time=dt.time(7 + rng.randrange(9), 0),
                length_min=60,
                status="SCH" if day > ctx.export else "BRK",
                appt_type="NP",
                is_new_pat=True,
                is_hyg=False,
                created_dt=a["created_dt"],
                created_by=a["created_by"],
            )
            ph["__d"] = [("DUP2", "pat_id", "audit", False)]
            ph["__w"] = []
            self.h.extra_appts.append(ph)
        return v

    def book(self, day: dt.date, kind: str, codes_fn: Any) -> Visit | None:
        """Try to complete an appointment from ``day``: broken/cancelled ones are rebooked."""
        rng, ctx = self.rng, self.lc.ctx
        for _attempt in range(3):
            if day > self.stop:
                if self.active_at_export and day <= ctx.export + dt.timedelta(days=150):
                    return self.appt(day, kind, codes_fn(day, False), rng.choice(("SCH", "SCH", "CNF")))
                return None
            status = _OUTCOME(rng)
            v = self.appt(day, kind, codes_fn(day, status == "CMP"), status)
            if status == "CMP":
                return v
            if rng.random() > 0.8:
                return None
            day = day + dt.timedelta(days=rng.randint(7, 35))
        return None

    # -- hygiene -------------------------------------------------------------------------------
    def hyg_codes(
        self, day: dt.date, np: bool, commit: bool
    ) -> list[tuple[str, str | None, str | None, Any]]:
        p, last = self.p, self.last
        age = p.age(day)
        out: list[tuple[str, str | None, str | None, Any]] = []
        out.append(("D0150" if np else ("D0145" if age < 3 else "D0120"), None, None, None))
        out.append(("D1120" if age < 14 else ("D4910" if p.perio and not np else "D1110"), None, None, None))
        if age >= 5 and ("bwx" not in last or (day - last["bwx"]).days >= 330):
            out.append(("D0272" if age < 12 else "D0274", None, None, None))
            if commit:
                last["bwx"] = day
        if age >= 6 and ("fmx" not in last or (day - last["fmx"]).days >= 5 * 365):
            out.append(("D0210" if self.fmx_pref and age >= 18 else "D0330", None, None, None))
            if commit:
                last["fmx"] = day
        if age < 16 or self.rng.random() < 0.05:
            retired = self.lc.ctx.mess_on and day.year < 2013
            out.append(((("D1203" if age < 16 else "D1204") if retired else "D1206"), None, None, None))
        return out

    def run(self) -> History:
        p, rng = self.p, self.rng
        if p.kind != "patient":
            return self.h
        first = self.book(p.start, "NP", lambda d, c: self.hyg_codes(d, True, c))
        last_hyg = first.day if first is not None and first.completed else p.start
        self.tx_plan(first)
        interval = (3 if rng.random() < 0.5 else 4) if p.perio else 6
        while True:
            due = add_months(last_hyg, interval)
            if rng.random() < 0.68:
                day = due + dt.timedelta(days=rng.randint(-14, 14))
            else:
                day = due + dt.timedelta(days=rng.randint(30, 240))
            v = self.book(day, "PERIO" if p.perio else "RCL", lambda d, c: self.hyg_codes(d, False, c))
            if v is None or not v.completed:
                break
            last_hyg = v.day
            if rng.random() < (0.2 if p.age(v.day) >= 18 else 0.08):
                self.tx_plan(v)
        years = max((self.stop - p.start).days / 365.25, 0)
        for _ in range(_poisson(rng, 0.1 * years)):
            day = rand_date(rng, p.start, self.stop)
            codes = [("D0140", None, None, None), ("D0220",) + _tooth_surf(rng, "D0220", False) + (None,)]
            if rng.random() < 0.4:
                codes.append(("D7140",) + _tooth_surf(rng, "D7140", p.age(day) < 12) + (None,))
            self.book(day, "EMER", lambda d, c, codes=codes: codes)
        self.h.visits.sort(key=lambda v: (v.day, v.appt["appt_time"]))
        return self.h

    # -- treatment plans -----------------------------------------------------------------------
    def tx_plan(self, v: Visit | None) -> None:
        if v is None or not v.completed:
            return
        rng, p, ctx = self.rng, self.p, self.lc.ctx
        child = p.age(v.day) < 12
        plan_id = ctx.ids.next("txplan")
        items = []
        for seq in range(1, rng.choice((1, 2, 2, 3, 3, 4)) + 1):
            code = (_CHILD_TX if child else _ADULT_TX)(rng)
            tooth, surf = _tooth_surf(rng, code, child)
            t = blank("txitem")
            fee = self.fees.get(code, 0)
            t.update(
                txitem_id=ctx.ids.next("txitem"),
                txplan_id=plan_id,
                pat_id=p.pat_id,
                seq=seq,
                phase=1 + (seq - 1) // 2,
                priority=rng.choice(("1", "2", "NEXT")),
                proc_code=code,
                tooth=tooth,
                surf=surf,
                fee=money(fee),
                est_ins_pri=None,
                est_pat=money(fee),
                discount=None,
                status="TP",
                prov_id=v.prov,
            )
            items.append(t)
        accepted = rng.random() < 0.7
        plan = blank("txplan")
        plan.update(
            txplan_id=plan_id,
            pat_id=p.pat_id,
            plan_name=rng.choice(("Proposed Treatment Plan", "Phase 1", "Treatment Plan")),
            created_dt=dt.datetime.combine(v.day, dt.time(rng.randint(8, 16), rng.randint(0, 59))),
            presented_dt=v.day,
            prov_id=v.prov,
            total_fee=money(sum(self.fees.get(t["proc_code"], 0) for t in items)),
            signed_flg=accepted and rng.random() < 0.6,
        )
        if plan["signed_flg"]:
            plan["signed_dt"] = v.day
            plan["signed_by_name"] = f"{p.fname} {p.lname}"
        self.h.txplans.append(plan)
        self.h.txitems.extend(items)
        if not accepted:
            for t in items:
                t["status"] = "DC" if rng.random() < 0.5 else "TP"
            plan["status"] = "R" if items[0]["status"] == "DC" else "P"
            return
        for t in items:
            t["status"] = "AC"
        day = v.day
        groups = [items[i : i + 2] for i in range(0, len(items), 2)]
        for g in groups:
            day = day + dt.timedelta(days=rng.randint(7, 56))
            codes = [(t["proc_code"], t["tooth"], t["surf"], t) for t in g]
            tv = self.book(day, "TX", lambda d, c, codes=codes: codes)
            if tv is None:
                break
            for t in g:
                t["appt_id"] = tv.appt["appt_id"]
                if tv.completed:
                    t.update(status="CP", completed_dt=tv.day)
                else:
                    t["status"] = "SC"
            if not tv.completed:
                break
            day = tv.day
        plan["status"] = "C" if all(t["status"] == "CP" for t in items) else "A"


def _poisson(rng: random.Random, lam: float) -> int:
    n, t = 0, math.exp(-lam)
    u = rng.random()
    while u > t and n < 50:
        n += 1
        u *= rng.random()
    return n


def simulate(lc: LocCtx, p: Person) -> History:
    """Appointments and treatment plans of one person; sets first/last visit and providers."""
    h = _Sim(lc, p).run()
    done = [v for v in h.visits if v.completed]
    if done:
        p.first_visit, p.last_visit = done[0].day, done[-1].day
        p.prov = done[-1].prov if done[-1].prov != lc.ctx.pr.ghost_provider else lc.loc.dentists[0].prov_id
        p.hyg = done[-1].appt["hyg_id"]
    return h
