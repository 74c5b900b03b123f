"""Money of a household (GENERATOR.md §4.8): charges, claims and their lines, insurance payments and
write-offs, patient payments, adjustments, and the aging snapshot on the guarantor.

All amounts are integer cents while simulating (exact sums), converted to Decimal only in rows, so
the §5 invariants hold exactly: Σ LEDGER.AMOUNT per guarantor = BAL_TOTAL, claim header = Σ lines,
Σ INSPMT per claim = PAID_AMT, Σ INSWO = -WO_AMT.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from .context import LocCtx
from .insurance import Coverage, coverages_at
from .people import Household, Person
from .practice import blank, money
from .visits import Visit

__all__ = ["Books", "post_household"]

_PCT_CLASS = {
    "DIAG": 0,
    "PREV": 0,
    "REST": 1,
    "ENDO": 1,
    "PERIO": 1,
    "OS": 1,
    "PROSR": 2,
    "PROSF": 2,
    "IMPL": 2,
    "ORTHO": 2,
    "ADJ": 2,
    "CUST": 2,
}
_CARDS = ("VISA", "MC", "DEBIT", "AMEX", "DISC", "CRCR")


class Books:
    """The ledger, claims and claim lines of one household, built in date order."""

    def __init__(self, lc: LocCtx, hh: Household) -> None:
        self.lc, self.hh = lc, hh
        self.rng: random.Random = lc.money
        self.ledger: list[dict[str, Any]] = []
        self.claims: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self.ins_used: dict[tuple[int, int], int] = {}  # (pat, year) -> paid cents
        self.ded_used: dict[tuple[int, int], int] = {}
        self.pending_ins = 0
        self.guar = hh.guarantor.pat_id

    # -- rows ----------------------------------------------------------------------------------
    def post(self, p: Person, day: dt.date, ttype: str, cents: int, **kw: Any) -> dict[str, Any]:
        lc, rng = self.lc, self.rng
        r = blank("ledger")
        tm = kw.pop("tm", None) or dt.time(rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59))
        post_day = (
            day + dt.timedelta(days=rng.choice((0, 0, 0, 0, 1, 2))) if ttype in ("INSPMT", "INSWO") else day
        )
        r.update(
            trans_id=lc.ctx.ids.next("trans"),
            pat_id=p.pat_id,
            guar_id=self.guar,
            loc_id=lc.loc.loc_id,
            trans_dt=day,
            post_dttm=dt.datetime.combine(min(post_day, max(day, lc.ctx.export)), tm),
            trans_type=ttype,
            amount=money(cents),
            entered_by=rng.choice(lc.loc.staff),
            deleted_flg=False,
        )
        r.update(kw)
        self.ledger.append(r)
        return r

    def _pay(self, p: Person, day: dt.date, cents: int, why: str) -> dict[str, Any] | None:
        rng, ctx = self.rng, self.lc.ctx
        if cents <= 0 or day > ctx.export:
            return None
        method = (
            rng.choice(_CARDS + ("CASH", "CHK", "CHK"))
            if why == "copay"
            else rng.choice(("CHK", "VISA", "MC", "EFT"))
        )
        r = self.post(
            p,
            day,
            "PMT",
            -cents,
            pay_method=method,
            prov_id=p.prov,
            check_no=str(rng.randint(1000, 9999)) if method == "CHK" else None,
            deposit_id=f"D{day:%y%m%d}",
            description="copay" if why == "copay" else "Payment - thank you",
        )
        if ctx.mess_on and self.lc.hit("DT4"):  # post-dated check: a future TRANS_DT
            r["trans_dt"] = ctx.export + dt.timedelta(days=rng.randint(1, 45))
            r["__d"] = [("DT4", "trans_dt", "flag", False)]
        return r

    # -- visits --------------------------------------------------------------------------------
    def visit(self, v: Visit, covs: list[Coverage]) -> None:
        p, rng, lc = v.person, self.rng, self.lc
        tm = v.appt["dismissed_tm"]
        for pr in v.procs:
            r = self.post(
                p,
                v.day,
                "CHG",
                pr.fee,
                proc_code=pr.code,
                tooth=pr.tooth,
                surf=pr.surf,
                prov_id=v.prov,
                appt_id=v.appt["appt_id"],
                txitem_id=pr.tx["txitem_id"] if pr.tx else None,
                tm=tm,
            )
            pr.ap["trans_id"] = r["trans_id"]
            if pr.tx is not None:
                pr.tx["trans_id"] = r["trans_id"]
            if lc.ctx.mess_on and pr.code in ("D1203", "D1204"):
                r["__d"] = [("CD2", "proc_code", "audit", False)]
        total = sum(pr.fee for pr in v.procs)
        in_force = coverages_at(covs, v.day)
        if in_force and total > 0:
            pat_part = self.claim(v, in_force)
        else:
            pat_part = total
            if total > 0 and rng.random() < 0.2:
                disc = total // 20
                self.post(
                    p, v.day, "ADJ", -disc, adj_code="CASHDISC", prov_id=v.prov, description="Cash discount"
                )
                pat_part -= disc
        u = rng.random()
        if u < 0.6 and in_force and pat_part > 2000 and rng.random() < 0.6:
            first = pat_part * rng.choice((40, 50, 60)) // 100  # copay now, the rest on the statement
            self._pay(p, v.day, first, "copay")
            self._pay(p, v.day + dt.timedelta(days=rng.randint(30, 75)), pat_part - first, "statement")
        elif u < 0.6:
            self._pay(p, v.day, pat_part, "copay")
        elif u < 0.9:
            self._pay(p, v.day + dt.timedelta(days=rng.randint(30, 90)), pat_part, "statement")
        else:
            if pat_part > 0 and rng.random() < 0.3 and v.day + dt.timedelta(days=200) <= lc.ctx.export:
                self.post(
                    p,
                    v.day + dt.timedelta(days=rng.randint(180, 200)),
                    "ADJ",
                    -pat_part,
                    adj_code="BADDEBT",
                    description="Sent to collections",
                )
                self.hh.bill_type = "COLL"
            elif pat_part > 0:
                self.hh.bill_type = "PRECOL" if self.hh.bill_type == "STD" else self.hh.bill_type
        self._extras(v)

    def _extras(self, v: Visit) -> None:
        """Occasional NSF, prepay/refund, and the $4 oddities (zero rows, VOID pairs, orphan INSPMT)."""
        p, rng, lc, ctx = v.person, self.rng, self.lc, self.lc.ctx
        u = rng.random()
        if u < 0.004:
            pm = self._pay(p, v.day, 5000, "copay")
            if pm is not None and v.day + dt.timedelta(days=20) <= ctx.export:
                self.post(
                    p,
                    v.day + dt.timedelta(days=10),
                    "ADJ",
                    5000,
                    adj_code="NSF",
                    description="Returned check",
                )
                self._pay(p, v.day + dt.timedelta(days=20), 5000, "statement")
        elif u < 0.008 and v.day + dt.timedelta(days=60) <= ctx.export:
            self.post(p, v.day, "PREPAY", -10000, pay_method="VISA", description="Prepayment")
            self.post(p, v.day + dt.timedelta(days=60), "REF", 10000, description="Refund of credit")
        if ctx.mess_on and lc.hit("$4"):
            k = rng.randrange(3)
            if k == 0:
                r = self.post(p, v.day, "ADJ", 0, adj_code="MISC", description="zero adjustment")
                r["__d"] = [("$4", "amount", "audit", False)]
            elif k == 1:
                pm = self.post(p, v.day, "PMT", -2500, pay_method="CASH", description="entered in error")
                vo = self.post(p, v.day, "VOID", 2500, reverses_id=pm["trans_id"], description="void")
                vo["__d"] = [("$4", "reverses_id", "audit", False)]
            else:
                day = min(v.day + dt.timedelta(days=20), ctx.export)
                r = self.post(
                    p,
                    day,
                    "INSPMT",
                    -rng.randint(10, 90) * 100,
                    claim_id=ctx.ids.next("claim"),
                    pay_method="CHK",
                    description="unmatched EOB",
                )
                r["__d"] = [("$4", "claim_id", "audit", False)]

    def brk_fee(self, v: Visit) -> None:
        if self.lc.loc.brk_policy and v.day <= self.lc.ctx.export and self.rng.random() < 0.3:
            self.post(
                v.person,
                v.day,
                "BRK",
                2500,
                proc_code="BROKEN",
                prov_id=v.prov,
                appt_id=v.appt["appt_id"],
                description="Broken appointment fee",
            )

    # -- claims --------------------------------------------------------------------------------
    def claim(self, v: Visit, covs: list[Coverage]) -> int:
        """Primary (and maybe secondary) claim for a visit; returns the patient's share in cents."""
        lc = self.lc
        p, cov = v.person, covs[0]
        plan = cov.plan
        year = v.day.year
        used = self.ins_used.get((p.pat_id, year), 0)
        ded_left = max(plan.deductible - self.ded_used.get((p.pat_id, year), 0), 0)
        lines = []
        for pr in v.procs:
            allowed = int(round(pr.fee * plan.fee_pct)) if plan.fee_pct < 1 else pr.fee
            cls = _PCT_CLASS.get(lc.ctx.pr.codes.get(pr.code, ("", "CUST", ""))[1], 2)
            ded = min(ded_left, allowed) if cls > 0 else 0
            ded_left -= ded
            ins = (allowed - ded) * plan.pcts[cls] // 100
            ins = max(min(ins, plan.annual_max - used), 0)
            used += ins
            lines.append([pr, allowed, ins, ded, pr.fee - allowed])
        self.ins_used[(p.pat_id, year)] = used
        self.ded_used[(p.pat_id, year)] = plan.deductible - ded_left
        n_before = len(self.claims)
        _paid, pat_part = self._claim_rows(v, cov, lines, "P", None)
        if len(covs) > 1 and self.claims[n_before]["status"] == "R" and pat_part > 0:
            sec_lines = [[pr, allowed, 0, 0, 0] for pr, allowed, *_ in lines]
            share = pat_part // 2
            for ln in sec_lines:
                ln[2] = min(share, ln[1])
                share -= ln[2]
            paid2, _ = self._claim_rows(v, covs[1], sec_lines, "S", None)
            if paid2:
                pat_part -= paid2
        return pat_part

    def _claim_rows(
        self, v: Visit, cov: Coverage, lines: list[list[Any]], ctype: str, resub: int | None
    ) -> tuple[int | None, int]:
        rng, ctx, lc = self.rng, self.lc.ctx, self.lc
        p = v.person
        start = v.day if resub is None else v.day + dt.timedelta(days=rng.randint(50, 80))
        sent = start + dt.timedelta(days=rng.randint(0, 3))
        recv = sent + dt.timedelta(days=rng.randint(14, 45))
        denied = rng.random() < 0.06 and resub is None
        if start >= ctx.export - dt.timedelta(days=2):
            status, sent_dt, recv_dt = "U", None, None
        elif recv > ctx.export:
            status, sent_dt, recv_dt = "S", sent, None
        else:
            status, sent_dt, recv_dt = ("D" if denied else "R"), sent, recv
        c = blank("claim")
        claim_id = ctx.ids.next("claim")
        billed = sum(ln[0].fee for ln in lines)
        est = sum(ln[2] for ln in lines)
        received = status == "R"
        paid = est if received else 0
        wo = sum(ln[4] for ln in lines) if received and ctype == "P" else 0
        ded = sum(ln[3] for ln in lines) if received else 0
        c.update(
            claim_id=claim_id,
            pat_id=p.pat_id,
            sub_rec_id=cov.sub_rec_id,
            plan_id=cov.plan.plan_id,
            carrier_id=cov.plan.carrier_id,
            claim_type=ctype,
            svc_dt=v.day,
            created_dt=start,
            sent_dt=sent_dt,
            orig_sent_dt=sent_dt,
            recv_dt=recv_dt,
            status=status,
            billed_amt=money(billed),
            est_ins_amt=money(est),
            paid_amt=money(paid),
            ded_applied=money(ded),
            wo_amt=money(wo),
            pat_resp_amt=money(billed - paid - wo) if received else None,
            payer_claim_no=str(rng.randint(10**9, 10**10 - 1)) if recv_dt else None,
            claim_ident=f"{p.pat_id}/{claim_id}",
            treat_prov_id=v.prov,
            bill_prov_id=v.prov,
            attach_flg=False,
            denial_code=rng.choice(("FREQ", "NOTCOV", "ELIG", "NEEDINFO")) if status == "D" else None,
            resubmit_of=resub,
            check_no=str(rng.randint(10000, 99999)) if received else None,
            check_dt=recv_dt if received else None,
        )
        if ctx.mess_on and lc.hit("$2"):
            c["billed_amt"] = money(billed + rng.choice((-1000, 500, 1000, 2500)))
            c["__d"] = [("$2", "billed_amt", "audit", False)]
        self.claims.append(c)
        carrier = cov.plan.carrier_name
        for n, (pr, allowed, ins, dd, wol) in enumerate(lines, 1):
            ln = blank("claimln")
            ln_id = ctx.ids.next("claimln")
            wo_line = wol if received and ctype == "P" else 0
            ln.update(
                claimln_id=ln_id,
                claim_id=claim_id,
                line_no=n,
                trans_id=pr.ap.get("trans_id"),
                proc_code=pr.code,
                tooth=pr.tooth,
                surf=pr.surf,
                dos=v.day,
                fee_billed=money(pr.fee),
                allowed=money(allowed),
                est_ins=money(ins),
                paid=money(ins if received else 0),
                ded=money(dd if received else 0),
                wo=money(wo_line),
                line_stat={"R": "R", "D": "D"}.get(status, "NR"),
            )
            self.lines.append(ln)
            # insurance money is posted per claim line (OD claimproc style), so INSPMT/INSWO carry CLAIMLN_ID
            if received and ins:
                self.post(
                    p,
                    recv_dt,
                    "INSPMT",
                    -ins,
                    claim_id=claim_id,
                    claimln_id=ln_id,
                    pay_method="CHK",
                    check_no=c["check_no"],
                    prov_id=v.prov,
                    proc_code=pr.code,
                    description=f"{carrier} chk#{c['check_no']}"[:60],
                )
            if wo_line:
                self.post(
                    p,
                    recv_dt,
                    "INSWO",
                    -wo_line,
                    claim_id=claim_id,
                    claimln_id=ln_id,
                    adj_code="INSWO",
                    prov_id=v.prov,
                    proc_code=pr.code,
                    description="PPO write-off",
                )
        if received:
            return paid, billed - paid - wo
        if status == "D":
            if rng.random() < 0.5:
                return self._claim_rows(v, cov, lines, ctype, claim_id)
            return 0, billed
        self.pending_ins += est
        return est, billed - est - (sum(ln[4] for ln in lines) if ctype == "P" else 0)

    # -- aging ---------------------------------------------------------------------------------
    def aging(self) -> dict[str, Any]:
        ctx = self.lc.ctx
        total = sum(int(r["amount"] * 100) for r in self.ledger)
        buckets = [0, 0, 0, 0]
        left = total
        if left > 0:
            for r in sorted(
                (r for r in self.ledger if r["amount"] > 0), key=lambda r: r["trans_dt"], reverse=True
            ):
                take = min(left, int(r["amount"] * 100))
                age = (ctx.export - r["trans_dt"]).days
                buckets[0 if age < 30 else 1 if age < 60 else 2 if age < 90 else 3] += take
                left -= take
                if left <= 0:
                    break
            buckets[3] += left
        else:
            buckets[0] = total
        bal = dict(
            bal_cur=money(buckets[0]),
            bal_30=money(buckets[1]),
            bal_60=money(buckets[2]),
            bal_90=money(buckets[3]),
            bal_total=money(total),
            ins_est=money(self.pending_ins),
        )
        self.true_total = total
        return bal


def post_household(lc: LocCtx, hh: Household, visits: list[Visit], covs: list[Coverage]) -> Books:
    """Walk the household's visits in date order and build its books."""
    b = Books(lc, hh)
    for v in visits:
        if v.completed:
            b.visit(v, covs)
        elif v.status == "BRK":
            b.brk_fee(v)
    return b
