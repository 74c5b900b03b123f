"""Referral sources and links (GENERATOR.md §4.10) and custom-field values (§4.11).

Patient referrers get their REFSRC row the first time someone names them, so REFSRC streams like
the patient tables instead of needing the whole population first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .catalog import MKT_CHANNELS
from .context import LocCtx
from .people import Household, Person
from .practice import blank
from .rng import Weighted

__all__ = ["referrals_for", "udf_for"]

_MKT = Weighted(list(MKT_CHANNELS))
_VARIANTS = {
    "Google": ("google", "Googled", "internet search", "GOOGLE MAPS", "google.com"),
    "Insurance directory": ("ins list", "insurance website", "Delta directory", "from my insurance"),
    "Facebook/Instagram": ("facebook", "FB", "instagram ad", "Insta"),
    "Yelp": ("yelp", "Yelp reviews", "YELP"),
    "Drive-by/sign": ("drove by", "saw sign", "drive by", "walk in"),
    "Mailer": ("postcard", "mailer", "flyer in mail"),
    "Other": ("other", "radio", "church", "work"),
}
_OUT_FOR = {
    "D3310": "ENDO",
    "D3320": "ENDO",
    "D3330": "ENDO",
    "D7210": "OS",
    "D7240": "OS",
    "D4341": "PERIO",
    "D6010": "OS",
}


def referrals_for(
    lc: LocCtx,
    hh: Household,
    p: Person,
    new_patient: bool,
    codes: list[tuple[str, str | None, dt.date]],
    emit_ref: Any,
) -> list[dict[str, Any]]:
    """PATREF rows of one person: a 'how did you hear' IN source and outgoing specialist referrals."""
    ctx, rng = lc.ctx, lc.people
    out: list[dict[str, Any]] = []
    if new_patient and p is hh.guarantor and rng.random() < 0.7:
        r = blank("patref")
        r.update(patref_id=ctx.ids.next("patref"), pat_id=p.pat_id, direction="IN", ref_dt=p.start, seq=1)
        u = rng.random()
        if u < 0.55 or (u < 0.9 and not lc.referrers):
            ch = _MKT(rng)
            r["ref_id"] = ctx.pr.mkt_refs[ch]
            if ctx.mess_on and lc.hit("REF1"):
                r["ref_id"] = None
                r["source_text"] = rng.choice(_VARIANTS[ch])
                r["__d"] = [("REF1", "source_text", "audit", False)]
        elif u < 0.9:
            who = rng.choice(lc.referrers[-500:])
            if who not in lc.pat_refs:
                ctx.pr.next_ref_id += 1
                lc.pat_refs[who] = ctx.pr.next_ref_id
                s = blank("refsrc")
                s.update(
                    ref_id=ctx.pr.next_ref_id,
                    ref_kind="PAT",
                    name=f"Patient #{who}",
                    ref_pat_id=who,
                    active_flg=True,
                )
                emit_ref(s)
            r["ref_id"] = lc.pat_refs[who]
        else:
            r["ref_id"] = rng.choice([rid for rid, spec in lc.loc.doc_refs if spec == "GEN"])
        out.append(r)
    for code, tooth, day in codes:
        spec = _OUT_FOR.get(code)
        if spec and rng.random() < 0.3:
            r = blank("patref")
            r.update(
                patref_id=ctx.ids.next("patref"),
                pat_id=p.pat_id,
                direction="OUT",
                ref_dt=day,
                seq=1,
                ref_id=next(rid for rid, s in lc.loc.doc_refs if s == spec),
                proc_code=code,
                tooth=tooth,
                out_status=rng.choice(("SCHED", "CONS", "DONE", "DONE", "NONE")),
            )
            out.append(r)
    if p is hh.guarantor and p.kind == "patient":
        lc.referrers.append(p.pat_id)
        if len(lc.referrers) > 2000:
            del lc.referrers[:1000]
    return out


def udf_for(lc: LocCtx, p: Person) -> list[dict[str, Any]]:
    """PATUDF values for ~30% of patients; dates kept as typed (UDF1) when a mess profile is on."""
    ctx, rng = lc.ctx, lc.people
    if p.kind != "patient" or rng.random() > 0.3:
        return []
    out = []
    for fid, _name, ftype, pick in rng.sample(ctx.pr.udfs, rng.randint(1, 2)):
        r = blank("patudf")
        d = None
        if ftype == "L":
            opts = pick.split("|")
            val = rng.choice(opts)
            if ctx.mess_on and rng.random() < 0.1:
                val = rng.choice(("english", "Spanish/English", "Tagalog"))
                d = [("UDF1", "value", "audit", False)]
        elif ftype == "D":
            day = p.start + dt.timedelta(days=rng.randint(0, 900))
            val = f"{day:%m/%d/%Y}"
            if ctx.mess_on and lc.hit("UDF1"):
                val = rng.choice(
                    (f"{day.month}/{day.day}/{day:%y}", f"{day:%b %Y}", f"{day.month}-{day.day}-{day.year}")
                )
                d = [("UDF1", "value", "audit", False)]
        elif ftype == "C":
            val = "Y" if not ctx.mess_on else rng.choice(("Y", "1", "X"))
        elif ftype == "N":
            val = f"{rng.choice((10, 15, 20, 25, 50))}.00"
        else:
            val = rng.choice(("Lincoln Elementary", "CVS Main St", "Walgreens", "Spouse", "Jen", "Mom"))
        r.update(pat_id=p.pat_id, field_id=fid, value=val)
        if d:
            r["__d"] = d
        out.append(r)
    return out
