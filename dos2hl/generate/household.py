"""One household end to end: simulate members, post the books, emit every patient-scoped row.

This is the streaming unit: nothing of a household survives its ``emit_household`` call except
counters and the small per-location referral state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import LocCtx
from .documents import ImageStore, documents_for
from .finance import post_household
from .insurance import build_coverages
from .notes import commlog_for, notes_for
from .people import Household, decide_status, extra_records, patient_row
from .practice import money
from .recall import recalls_for
from .referrals import referrals_for, udf_for
from .visits import simulate

__all__ = ["emit_household"]

Emit = Callable[[str, dict[str, Any]], None]


def emit_household(
    lc: LocCtx,
    hh: Household,
    emit: Emit,
    store: ImageStore,
    large_docs: bool,
    guar_totals: Callable[[int, int, int], None],
) -> int:
    """Simulate and write one household; returns the number of PATIENT records written."""
    ctx = lc.ctx
    covs, subs, pats = build_coverages(lc, hh)
    extras = extra_records(lc, hh)
    hist = [(p, simulate(lc, p)) for p in hh.members]
    visits = sorted(
        (v for _p, h in hist for v in h.visits), key=lambda v: (v.day, v.appt["appt_time"], v.appt["appt_id"])
    )
    books = post_household(lc, hh, visits, covs)
    for p in hh.members + extras:
        p.status = decide_status(ctx, p, lc.people)
    bal = books.aging()
    bal_total = books.true_total
    if ctx.mess_on and lc.hit("$3"):  # aging snapshot drift vs the ledger (audit)
        drift = lc.money.choice((-1, 1)) * lc.money.randint(5, 250) * 100
        bal["bal_total"] = money(bal_total + drift)
        bal["bal_cur"] = money(int(bal["bal_cur"] * 100) + drift)
        bal_total += drift
        drift_flag = True
    else:
        drift_flag = False
    g = hh.guarantor
    n = 0
    for p in hh.members:
        r = patient_row(lc, hh, p, bal if p is g else None)
        if p is g and drift_flag:
            r.setdefault("__d", []).append(("$3", "bal_total", "audit", False))
        emit("patient", r)
        n += 1
    for p in extras:
        emit("patient", patient_row(lc, hh, p, None))
        n += 1
    guar_totals(g.pat_id, books.true_total, bal_total)
    for r in subs:
        emit("inssub", r)
    for r in pats:
        emit("patins", r)
    for _p, h in hist:
        for v in h.visits:
            emit("appt", v.appt)
            for pr in v.procs:
                emit("apptproc", pr.ap)
        for a in h.extra_appts:
            emit("appt", a)
    for r in books.ledger:
        emit("ledger", r)
    for r in books.claims:
        emit("claim", r)
    for r in books.lines:
        emit("claimln", r)
    card_days: dict[int, list] = {}
    for c in covs:
        if c.start >= ctx.start:
            card_days.setdefault(c.subscriber.pat_id, []).append(c.start)
    for p, h in hist:
        for r in notes_for(lc, p, h.visits):
            emit("clinnote", r)
        for r in commlog_for(lc, p, h.visits):
            emit("commlog", r)
        for r in recalls_for(lc, p, h.visits):
            emit("recall", r)
        done = [(pr.code, pr.tooth, v.day) for v in h.visits if v.completed for pr in v.procs]
        for r in referrals_for(
            lc, hh, p, p.start >= ctx.start and p.kind == "patient", done, lambda s: emit("refsrc", s)
        ):
            emit("patref", r)
        for r in documents_for(lc, p, h.visits, store, card_days.get(p.pat_id, []), h.txplans, large_docs):
            emit("document", r)
        for r in h.txplans:
            emit("txplan", r)
        for r in h.txitems:
            emit("txitem", r)
        for r in udf_for(lc, p):
            emit("patudf", r)
    return n
