"""Insurance of a household (GENERATOR.md §4.5): subscriptions (INSSUB) and coverages (PATINS).

A household is insured in spells of 3-5 years (plan changes end the old INSSUB with TERM_DT and open
a new one); 8% of insured households also carry a secondary plan through the spouse. The spells
are kept on the household so claims can find the coverage in force on a date of service.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from typing import Any

from .context import LocCtx
from .people import Household, Person
from .practice import InsPlan, blank, money
from .rng import rand_date

__all__ = ["Coverage", "build_coverages", "coverages_at"]


@dataclass(slots=True, eq=False)
class Coverage:
    sub_rec_id: int
    plan: InsPlan
    subscriber: Person
    start: dt.date
    end: dt.date | None  # None = open
    order: int  # 1 primary, 2 secondary (the true order; PATINS may say otherwise, INS1)


def coverages_at(covs: list[Coverage], day: dt.date) -> list[Coverage]:
    """Coverages in force on ``day``, primary first."""
    out = [c for c in covs if c.start <= day and (c.end is None or day <= c.end)]
    out.sort(key=lambda c: c.order)
    return out


def _member_id(lc: LocCtx) -> str:
    r = lc.people
    return "ZZ" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(9))


def build_coverages(
    lc: LocCtx, hh: Household
) -> tuple[list[Coverage], list[dict[str, Any]], list[dict[str, Any]]]:
    """Coverage spells plus their INSSUB and PATINS rows (rows are emitted by the caller)."""
    ctx, rng = lc.ctx, lc.people
    covs: list[Coverage] = []
    subs: list[dict[str, Any]] = []
    pats: list[dict[str, Any]] = []
    if not hh.insured:
        return covs, subs, pats
    adults = [p for p in hh.members if p.rel in ("SELF", "SPOUSE")]
    begin = hh.guarantor.created.date()
    stop = min(hh.end, ctx.export)
    orders = [1] + ([2] if len(adults) > 1 and rng.random() < 0.08 else [])
    for order in orders:
        t = begin
        while t <= stop:
            length = dt.timedelta(days=int(rng.uniform(3, 5) * 365))
            end: dt.date | None = t + length
            if end is not None and end >= stop:
                end = None if hh.end > ctx.export else hh.end
            subscriber = adults[order - 1] if order <= len(adults) else adults[0]
            if order == 1 and len(adults) > 1 and rng.random() < 0.3:
                subscriber = adults[1]
            plan = ctx.pr.plan_pick(rng)
            cov = Coverage(ctx.ids.next("inssub"), plan, subscriber, t, end, order)
            covs.append(cov)
            s = blank("inssub")
            member = _member_id(lc)
            d = None
            if ctx.mess_on and t.year < 2008 and subscriber.ssn and lc.hit("INS2"):
                member = subscriber.ssn
                d = [("INS2", "member_id", "audit", False)]
            s.update(
                sub_rec_id=cov.sub_rec_id,
                plan_id=plan.plan_id,
                subscriber_pat_id=subscriber.pat_id,
                member_id=member,
                eff_dt=t,
                term_dt=end,
                rel_info=True,
                assign_ben=rng.random() < 0.9,
            )
            if d:
                s["__d"] = d
            subs.append(s)
            for p in hh.members:
                if p.kind != "patient":
                    continue
                pats.append(_patins(lc, cov, p, member))
            if end is None:
                break
            t = end + dt.timedelta(days=1)
    return covs, subs, pats


def _patins(lc: LocCtx, cov: Coverage, p: Person, member: str) -> dict[str, Any]:
    ctx, rng = lc.ctx, lc.people
    current = cov.end is None
    r = blank("patins")
    rel = "SELF" if p is cov.subscriber else ("SPOUSE" if p.rel in ("SELF", "SPOUSE") else "CHILD")
    u = rng.random()
    elig = ("V" if u < 0.7 else "U" if u < 0.9 else "I" if u < 0.95 else "P") if current else "I"
    check = (
        rand_date(rng, max(cov.start, ctx.export - dt.timedelta(days=90)), ctx.export)
        if current and elig != "U"
        else None
    )
    r.update(
        patins_id=ctx.ids.next("patins"),
        pat_id=p.pat_id,
        sub_rec_id=cov.sub_rec_id,
        cov_order=cov.order,
        rel_to_sub=rel,
        pat_member_id=f"{member}-{rng.randint(1, 4):02d}" if rel == "CHILD" and rng.random() < 0.3 else None,
        elig_stat=elig,
        elig_check_dt=check,
        elig_by=rng.choice(lc.loc.staff) if check else None,
        remain_max=money(rng.randint(0, cov.plan.annual_max // 100) * 100) if check else None,
        ded_met=money(cov.plan.deductible) if check and rng.random() < 0.5 else None,
        active_flg=current,
    )
    if ctx.mess_on and lc.hit("INS1"):
        r["cov_order"] = 0 if cov.order == 1 else 1
        r["__d"] = [("INS1", "cov_order", "audit", False)]
    return r
