"""Households and patient records (GENERATOR.md §4.3-4): who lives together, who pays, when they
arrive and lapse, and the PATIENT rows (written after the visits, because guarantor rows carry the
aging snapshot).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from .context import Ctx, LocCtx
from .identity import safe_phone, safe_ssn, street
from .practice import blank
from .rng import Weighted, rand_date
from .vocab import (
    ACCENTED_FIRST,
    ACCENTED_LAST,
    FIRST_FEMALE,
    FIRST_MALE,
    LAST_NAMES,
    NICKNAMES,
    STATES,
    SUFFIX_CHOICES,
)

__all__ = ["Person", "Household", "make_household", "patient_row", "extra_records", "decide_status"]

_SIZES = Weighted([(1, 45), (2, 25), (3, 12), (4, 12), (5, 4), (6, 2)])
_ALERTS = (
    "PCN allergy",
    "premed - hip replacement",
    "Latex allergy",
    "Diabetic",
    "Blood thinners (warfarin)",
    "High blood pressure",
    "Codeine allergy",
    "Pregnant",
)


@dataclass(slots=True, eq=False)
class Person:
    pat_id: int
    sex: str
    fname: str
    lname: str
    dob: dt.date
    rel: str
    created: dt.datetime
    start: dt.date  # first visit
    end: dt.date  # lapse / move / death (may be after the export date)
    kind: str = "patient"  # patient | nonpatient | prospect | dup | test
    mi: str | None = None
    pref: str | None = None
    suffix: str | None = None
    perio: bool = False
    deceased: dt.date | None = None
    cphone: str | None = None
    wphone: str | None = None
    email: str | None = None
    ssn: str | None = None
    guar_id: int = 0
    dob_sentinel: bool = False
    defects: list[tuple[str, str, str, bool]] = field(default_factory=list)
    first_visit: dt.date | None = None
    last_visit: dt.date | None = None
    status: str = "A"
    prov: str | None = None
    hyg: str | None = None

    def age(self, day: dt.date) -> int:
        return day.year - self.dob.year - ((day.month, day.day) < (self.dob.month, self.dob.day))


@dataclass(slots=True, eq=False)
class Household:
    members: list[Person]
    addr1: str
    city: str
    st: str
    zip: str
    hphone: str | None
    start: dt.date
    end: dt.date
    guarantor: Person
    insured: bool
    bill_type: str = "STD"


def _first(rng: random.Random, sex: str) -> str:
    return rng.choice(FIRST_FEMALE if sex == "F" else FIRST_MALE)


def _ascii(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()


def _dob(rng: random.Random, age: int, at: dt.date) -> dt.date:
    d = at - dt.timedelta(days=int(age * 365.25) + rng.randint(0, 364))
    return d


def make_household(lc: LocCtx) -> Household:
    """One household: members, address, phones, arrival and lapse dates."""
    ctx, loc, rng = lc.ctx, lc.loc, lc.people
    start, export = ctx.start, ctx.export
    initial = rng.random() < 0.29  # already patients when the history starts
    if initial:
        created = rand_date(rng, start - dt.timedelta(days=6 * 365), start)
        first = rand_date(rng, start, start + dt.timedelta(days=180))
    else:
        first = rand_date(rng, start, export)
        created = first - dt.timedelta(days=rng.randint(1, 30))
    hazard = rng.uniform(0.17, 0.25)
    end = first + dt.timedelta(days=int(-math.log(1 - rng.random()) / hazard * 365.25))
    size = _SIZES(rng)
    lname = rng.choice(LAST_NAMES)
    members: list[Person] = []
    g_sex = rng.choice("FM")
    g_age = rng.randint(24, 80) if size > 1 else rng.choice((rng.randint(18, 34), rng.randint(18, 80)))
    couple = size >= 2 and rng.random() < 0.75
    spec: list[tuple[str, int, str]] = [("SELF", g_age, g_sex)]
    if couple:
        spec.append(("SPOUSE", max(18, min(g_age + rng.randint(-5, 5), 85)), "M" if g_sex == "F" else "F"))
    while len(spec) < size:
        spec.append(("CHILD", rng.randint(1, min(17, max(1, g_age - 18))), rng.choice("FM")))
    ctime = dt.datetime.combine(created, dt.time(rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59)))
    for rel, age, sex in spec:
        fn = _first(rng, sex)
        ln = lname if rel != "SPOUSE" or rng.random() < 0.8 else rng.choice(LAST_NAMES)
        if ctx.mess_on and rng.random() < 0.02:  # ENC1: accented names (truth keeps the accent)
            if rng.random() < 0.5:
                fn = rng.choice(ACCENTED_FIRST)
            else:
                ln = rng.choice(ACCENTED_LAST)
        p = Person(ctx.ids.next("pat"), sex, fn, ln, _dob(rng, age, first), rel, ctime, first, end)
        p.mi = chr(65 + rng.randrange(26)) if rng.random() < 0.5 else None
        p.pref = NICKNAMES.get(fn) if rng.random() < 0.5 else None
        if sex == "M" and rel != "CHILD" and rng.random() < 0.06:
            p.suffix = rng.choice(SUFFIX_CHOICES)
        p.perio = age >= 35 and rng.random() < 0.2
        p.dob_sentinel = ctx.mess_on and rng.random() < 0.005 * ctx.pl.mess_factor  # DT1 on DOB
        if age >= 16:
            p.cphone = safe_phone(rng, loc.area if rng.random() < 0.8 else rng.choice(STATES[loc.st][1]))
            if rng.random() < 0.15:
                p.wphone = safe_phone(rng, loc.area)
            if rng.random() < 0.7:
                n = rng.randint(1, 999)  # drawn before the domain, as always: the same seed, the same people
                domain = rng.choice(("example.com", "example.net", "example.org"))
                p.email = f"{_ascii(fn)}.{_ascii(ln)}{n}@{domain}"
            if rng.random() < 0.2:
                p.ssn = safe_ssn(rng)
        if age >= 60:  # deceased: ~0.5%/yr hazard for 65+ while a patient
            yrs = (min(end, export) - first).days / 365.25
            if rng.random() < 0.005 * yrs * (1 + (age - 60) / 20):
                p.deceased = rand_date(rng, first + dt.timedelta(days=60), min(end, export))
                p.end = p.deceased
        members.append(p)
    g = members[0]
    for p in members:
        p.guar_id = g.pat_id
    hh = Household(
        members,
        street(rng),
        rng.choice(loc.cities) if rng.random() < 0.85 else loc.cities[0],
        loc.st,
        _zip(rng, loc.st, loc.zip5),
        safe_phone(rng, loc.area) if rng.random() < 0.6 else None,
        first,
        end,
        g,
        rng.random() < 0.55,
    )
    if len(members) > 1:
        _family_rules(lc, hh)
    return hh


def _zip(rng: random.Random, st: str, near: str) -> str:
    (lo, hi), _ = STATES[st]
    z = min(max(int(near) + rng.randint(-60, 60), lo), hi)
    return f"{z:05d}" + (f"-{rng.randint(1, 9999):04d}" if rng.random() < 0.1 else "")


def _family_rules(lc: LocCtx, hh: Household) -> None:
    """Shared email/cell (EM3), a non-patient guarantor (FAM2), a dangling GUAR_ID (FAM1)."""
    ctx, rng = lc.ctx, lc.people
    g = hh.guarantor
    if rng.random() < 0.4 and g.email:  # family email
        for p in hh.members[1:]:
            p.email = g.email
            if ctx.mess_on:
                p.defects.append(("EM3", "email", "audit", False))
    if rng.random() < 0.1 and g.cphone:
        for p in hh.members[1:]:
            if p.cphone is None:
                p.cphone = g.cphone
                if ctx.mess_on:
                    p.defects.append(("EM3", "cphone", "audit", False))
    if rng.random() < 0.06:  # subscriber-only guarantor (FAM2 when messy)
        g.kind = "nonpatient"
        if ctx.mess_on:
            g.defects.append(("FAM2", "birthdate", "audit", False))
    if ctx.mess_on:
        for p in hh.members[1:]:
            if lc.hit("FAM1"):
                p.guar_id = ctx.ids.next("pat")  # an id that is never written: the guarantor is missing
                p.defects.append(("FAM1", "guar_id", "audit", False))


def decide_status(ctx: Ctx, p: Person, rng: random.Random) -> str:
    """PAT_STAT at the export date, from the person's kind and visit history."""
    if p.kind == "nonpatient":
        return "N"
    if p.kind == "prospect":
        return "P"
    if p.kind in ("dup",):
        return "I"
    if p.kind == "test":
        return "A"
    if p.deceased is not None:
        return "Z"
    if p.last_visit is None:
        return "I" if p.start <= ctx.export else "A"
    if (ctx.export - p.last_visit).days <= 548 or p.start > ctx.export - dt.timedelta(days=548):
        return "A"
    if ctx.mess_on and (ctx.export - p.last_visit).days > 3 * 365:
        u = rng.random()
        if u < 0.04:
            return "X"
        if u < 0.055:
            return "D"
    return "I"


def patient_row(lc: LocCtx, hh: Household, p: Person, bal: dict[str, Any] | None) -> dict[str, Any]:
    """The clean PATIENT row of ``p`` (``bal``: the aging snapshot when ``p`` is a guarantor)."""
    ctx, rng = lc.ctx, lc.people
    r = blank("patient")
    adult = p.age(ctx.export) >= 18
    r.update(
        pat_id=p.pat_id,
        chart_no=f"A{p.pat_id}" if rng.random() < 0.8 else None,
        loc_id=lc.loc.loc_id,
        lname=p.lname,
        fname=p.fname,
        mi=p.mi,
        pref_name=p.pref,
        suffix=p.suffix,
        title=None,
        sex=p.sex if rng.random() > 0.01 else "U",
        birthdate=None if (p.dob_sentinel or (p.kind == "nonpatient" and ctx.mess_on)) else p.dob,
        ssn=p.ssn,
        marital=(
            "M"
            if p.rel in ("SELF", "SPOUSE") and len(hh.members) > 1 and hh.members[1].rel == "SPOUSE"
            else rng.choice("SSWD")
        )
        if adult
        else "C",
        addr1=hh.addr1,
        city=hh.city,
        st=hh.st,
        zip=hh.zip,
        hphone=hh.hphone if rng.random() < 0.9 or p.kind == "prospect" else None,
        wphone=p.wphone,
        wphone_ext=str(rng.randint(10, 999)) if p.wphone and rng.random() < 0.3 else None,
        cphone=p.cphone,
        email=p.email if p.status in ("A", "N", "P") or rng.random() < 0.6 else None,
        pref_contact=rng.choice("PPTTEM") if adult else None,
        txt_ok=(rng.random() < 0.7) if p.cphone else None,
        email_ok=(rng.random() < 0.8) if p.email else None,
        guar_id=p.guar_id,
        rel_to_guar=p.rel,
        pat_stat=p.status,
        pri_prov=p.prov,
        hyg_prov=p.hyg,
        bill_type=hh.bill_type if p is hh.guarantor else None,
        fee_sched=None,
        first_visit=p.first_visit,
        last_visit=p.last_visit,
        employer=rng.choice(("Acme Manufacturing", "City Schools", "Self-employed", "Retired"))
        if adult and rng.random() < 0.3
        else None,
        med_alert=_alert(rng, ctx.mess_on) if rng.random() < 0.12 else None,
        premed=rng.random() < 0.04,
        pat_note=None,
        deceased_dt=p.deceased,
        created_dt=p.created,
        modified_dt=p.created + dt.timedelta(days=rng.randint(0, 400)),
        created_by=rng.choice(lc.loc.staff),
        deleted_flg=p.status == "D",
    )
    if r["modified_dt"].date() > ctx.export:
        r["modified_dt"] = p.created
    if bal is not None:
        r.update(bal)
    if p.kind == "prospect":
        for c in ("lname", "addr1", "city", "st", "zip", "email", "sex", "marital", "chart_no"):
            r[c] = None if c != "lname" or rng.random() < 0.5 else r[c]
    d = list(p.defects)
    if p.status in ("X", "D") and p.first_visit is not None:
        d.append(("ST1", "pat_stat", "audit", False))
    if d:
        r["__d"] = d
    if p.dob_sentinel:
        r["__s"] = ("birthdate",)
    return r


def _alert(rng: random.Random, multiline: bool) -> str:
    a = rng.choice(_ALERTS)
    if multiline and rng.random() < 0.3:
        a += "\n" + rng.choice(_ALERTS)
    return a


def extra_records(lc: LocCtx, hh: Household) -> list[Person]:
    """Records that are not real patients: DUP1 duplicates of members, prospects (1%), test rows."""
    ctx, rng = lc.ctx, lc.people
    out: list[Person] = []
    for p in hh.members:
        if p.kind == "patient" and ctx.mess_on and lc.hit("DUP1"):
            out.append(_duplicate(lc, p))
    if rng.random() < 0.022:  # ~1% of records: prospects, only a phone and a first name
        sex = rng.choice("FM")
        when = rand_date(rng, ctx.export - dt.timedelta(days=700), ctx.export)
        pr = Person(
            ctx.ids.next("pat"),
            sex,
            _first(rng, sex),
            rng.choice(LAST_NAMES),
            _dob(rng, rng.randint(18, 70), when),
            "SELF",
            dt.datetime.combine(when, dt.time(rng.randint(8, 17), rng.randint(0, 59))),
            when,
            when,
            "prospect",
        )
        pr.guar_id = pr.pat_id
        pr.cphone = safe_phone(rng, lc.loc.area)
        out.append(pr)
    if ctx.mess_on and ctx.test_patients < 5 and rng.random() < 0.01:  # DUP3: test/demo rows
        ctx.test_patients += 1
        t = Person(
            ctx.ids.next("pat"),
            "U",
            rng.choice(("Test", "Demo", "Patient")),
            rng.choice(("Test", "Zztest", "Demo")),
            dt.date(1980, 1, 1),
            "SELF",
            dt.datetime.combine(ctx.start, dt.time(9, 0)),
            ctx.start,
            ctx.start,
            "test",
        )
        t.guar_id = t.pat_id
        t.defects.append(("DUP3", "lname", "audit", False))
        out.append(t)
    return out


def _duplicate(lc: LocCtx, p: Person) -> Person:
    """DUP1: the same person again under a new PAT_ID, with the typical front-desk variations."""
    ctx, rng = lc.ctx, lc.people
    fn, ln, dob = p.fname, p.lname, p.dob
    u = rng.random()
    if u < 0.35 and len(ln) > 3:
        i = rng.randrange(1, len(ln) - 2)
        ln = ln[:i] + ln[i + 1] + ln[i] + ln[i + 2 :]
    elif u < 0.55:
        fn, ln = ln, fn
    elif u < 0.75 and p.sex == "F":
        ln = rng.choice(LAST_NAMES)
    else:
        fn = p.pref or fn
    if rng.random() < 0.3:
        dob = dob + dt.timedelta(days=rng.choice((-1, 1)))
    when = min(p.start + dt.timedelta(days=rng.randint(30, 2000)), ctx.export)
    d = Person(
        ctx.ids.next("pat"),
        p.sex,
        fn,
        ln,
        dob,
        "SELF",
        dt.datetime.combine(when, dt.time(rng.randint(8, 17), rng.randint(0, 59))),
        when,
        when,
        "dup",
    )
    d.guar_id = d.pat_id
    d.cphone = p.cphone
    d.email = p.email if rng.random() < 0.5 else None
    d.defects.append(("DUP1", "pat_id", "audit", False))
    ctx.dup_clusters[f"person-{p.pat_id}"] = [p.pat_id, d.pat_id]
    return d
