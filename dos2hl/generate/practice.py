"""Practice structure and reference tables (GENERATOR.md §4.1-2): locations, providers, operatories,
procedure codes and fees, lookups, recall types, carriers, plans, referral sources, custom fields.

Built once per run (small: at most a few thousand rows even for a DSO) and kept in memory, because
every patient-level stream draws providers, fees and plans from it.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any

from ..model import TABLES
from .catalog import (
    _AREA,
    _CAT,
    CUSTOM_CODES,
    LOOKUPS,
    MKT_CHANNELS,
    RECALL_TYPES,
    RETIRED,
    UDF_DEFS,
)
from .identity import city, npi, safe_phone, street
from .params import Plan
from .rng import Weighted, rand_date, sub_rng
from .vocab import (
    CARRIERS,
    EMPLOYERS,
    FIRST_FEMALE,
    FIRST_MALE,
    LAST_NAMES,
    STATE_TZ,
    STATES,
    ZERO_ZIP_STATES,
)

__all__ = [
    "Practice",
    "Location",
    "Provider",
    "InsPlan",
    "build_practice",
    "Emit",
    "blank",
    "money",
]

Emit = Callable[[str, dict[str, Any]], None]
_BLANK = {name: dict.fromkeys(t.column_names) for name, t in TABLES.items()}


def blank(table: str) -> dict[str, Any]:
    """A row of ``table`` with every canonical column set to None."""
    return _BLANK[table].copy()


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


@dataclass(slots=True)
class Provider:
    prov_id: str
    kind: str  # D H A O
    loc_id: str
    hire: dt.date
    term: dt.date | None
    login: str


@dataclass(slots=True)
class Location:
    loc_id: str
    st: str
    zip5: str
    area: str
    city: str
    phone: str
    fee_factor: float
    brk_policy: bool
    dentists: list[Provider] = field(default_factory=list)
    hygienists: list[Provider] = field(default_factory=list)
    assistants: list[Provider] = field(default_factory=list)
    ops: list[tuple[str, bool]] = field(default_factory=list)
    fees: dict[str, int] = field(default_factory=dict)  # UCR cents
    doc_refs: list[tuple[int, str]] = field(default_factory=list)  # (ref_id, specialty)
    cities: list[str] = field(default_factory=list)
    staff: list[str] = field(default_factory=list)  # front-desk logins (not providers)


@dataclass(slots=True)
class InsPlan:
    plan_id: int
    carrier_id: int
    carrier_name: str
    plan_type: str
    fee_pct: float  # PPO allowed = UCR x fee_pct
    pcts: tuple[int, int, int]  # prev, basic, major
    annual_max: int  # cents
    deductible: int  # cents
    employer: str


@dataclass(slots=True)
class Practice:
    locations: list[Location]
    codes: dict[str, tuple[str, str, str]]  # code -> (label, category, area)
    plans: list[InsPlan]
    plan_pick: Weighted
    mkt_refs: dict[str, int]
    udfs: list[tuple[int, str, str, str]]
    ghost_provider: str = "DR9"  # PR1: referenced, never in PROVIDER
    next_ref_id: int = 0
    loc_area: dict[str, str] = field(default_factory=dict)


def _load_codes() -> list[tuple[str, str, str, int, int]]:
    # a copy of ../shared/dentosoft/cdt_codes.csv (our own labels, never ADA descriptor text)
    text = resources.files("dos2hl.generate").joinpath("cdt_codes.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    return [(r["code"], r["label"], r["area"], int(r["fee_low_usd"]), int(r["fee_high_usd"])) for r in rows]


def build_practice(seed: int, pl: Plan, emit: Emit, mess_on: bool) -> Practice:
    """Create and emit every reference table; return what the patient streams need."""
    rng = sub_rng(seed, "practice")
    codes_src = _load_codes()
    locs: list[Location] = []
    states = sorted(STATES)
    for i in range(pl.locations):
        st = ZERO_ZIP_STATES[i % len(ZERO_ZIP_STATES)] if i % 3 == 0 else rng.choice(states)
        (lo, hi), areas = STATES[st]
        z = rng.randint(lo, hi)
        area = str(rng.choice(areas))
        loc = Location(
            f"L{i + 1:03d}",
            st,
            f"{z:05d}",
            area,
            city(rng),
            safe_phone(rng, area),
            rng.uniform(0.9, 1.15),
            rng.random() < 0.5,
        )
        loc.cities = [loc.city] + [city(rng) for _ in range(5)]
        locs.append(loc)
        row = blank("location")
        row.update(
            loc_id=loc.loc_id,
            loc_name=f"{loc.city} Dental" if i else "Main St Office",
            addr1=street(rng),
            city=loc.city,
            st=st,
            zip=loc.zip5,
            phone=loc.phone,
            fax=safe_phone(rng, area),
            tax_id=f"99-{rng.randint(1000000, 9999999)}",
            group_npi=npi(rng),
            tz=None if rng.random() < 0.8 else STATE_TZ.get(st, "America/New_York"),
            active_flg=True,
        )
        emit("location", row)
    _providers(rng, pl, locs, emit, mess_on)
    codes = _codes(rng, locs, codes_src, emit, mess_on)
    for cat, items in LOOKUPS.items():
        for j, item in enumerate(items):
            code, sign = (item[:-1], item[-1]) if item[-1] in "+-" else (item, None)
            r = blank("lookup")
            r.update(
                category=cat, code=code, description=code.title(), sign=sign, sort=j + 1, active_flg=True
            )
            emit("lookup", r)
    for rt, desc, iv, pcs, tu in RECALL_TYPES:
        r = blank("recalltyp")
        r.update(recall_type=rt, description=desc, def_interval=iv, proc_codes=pcs, time_units=tu)
        emit("recalltyp", r)
    plans = _insurance(rng, pl, emit, mess_on)
    pr = Practice(locs, codes, plans, Weighted([(p, 1.0) for p in plans]), {}, [])
    _referrals(rng, pr, emit)
    for j, (name, ftype, pick) in enumerate(UDF_DEFS[: 6 + rng.randint(0, 3)]):
        r = blank("userfld")
        r.update(
            field_id=j + 1,
            field_name=name,
            field_type=ftype,
            picklist=pick or None,
            sort=j + 1,
            hidden_flg=False,
        )
        emit("userfld", r)
        pr.udfs.append((j + 1, name, ftype, pick))
    pr.loc_area = {loc.loc_id: loc.area for loc in locs}
    return pr


def _providers(rng: random.Random, pl: Plan, locs: list[Location], emit: Emit, mess_on: bool) -> None:
    n = {"D": 0, "H": 0, "A": 0, "O": 0}
    start = pl.history_start
    for loc in locs:
        spec = (("D", rng.randint(1, 2 if pl.locations == 1 else 4)), ("H", rng.randint(2, 4)), ("O", 1))
        plist: list[tuple[str, bool]] = [(k, False) for k, c in spec for _ in range(c)]
        plist += [("A", False)] * max(1, len([p for p in plist if p[0] == "D"]) + rng.randint(0, 1))
        plist += [("H", True), ("D", True) if rng.random() < 0.5 else ("A", True)]  # ~10% turnover
        for kind, left in plist:
            n[kind] += 1
            pid = {
                "D": f"DR{n['D']}",
                "H": f"HYG{n['H']}",
                "A": f"DA{n['A']:02d}",
                "O": "OFC" if n["O"] == 1 else f"OFC{n['O']}",
            }[kind]
            hire = start - dt.timedelta(days=rng.randint(0, 3000))
            term = (
                rand_date(rng, start + dt.timedelta(days=400), pl.export_date - dt.timedelta(days=400))
                if left
                else None
            )
            female = rng.random() < 0.6
            fname = rng.choice(FIRST_FEMALE if female else FIRST_MALE)
            lname = rng.choice(LAST_NAMES)
            login = (fname[0] + lname).lower()[:12] if kind != "O" else "billing"
            prov = Provider(pid, kind, loc.loc_id, hire, term, login)
            {"D": loc.dentists, "H": loc.hygienists, "A": loc.assistants, "O": []}[kind].append(prov)
            r = blank("provider")
            email = f"{login}@example.net" if kind != "O" and rng.random() < 0.4 else None
            r.update(
                prov_id=pid,
                lname=lname if kind != "O" else "Billing",
                fname=fname if kind != "O" else "Office",
                mi=None,
                cred={"D": "DDS", "H": "RDH", "A": rng.choice(("RDA", "CDA", None)), "O": None}[kind],
                prov_type=kind,
                specialty="GEN" if kind == "D" else None,
                npi=npi(rng) if kind in "DH" else None,
                state_lic=f"{loc.st}{rng.randint(10000, 99999)}" if kind in "DH" else None,
                lic_st=loc.st if kind in "DH" else None,
                tin_ssn=f"{rng.randint(900, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
                if kind == "D" and rng.random() < 0.3
                else None,
                email=email,
                phone=safe_phone(rng, loc.area),
                home_loc_id=loc.loc_id,
                is_billing=kind in "DO",
                color=rng.randint(-16777216, -1),
                active_flg=term is None,
                hire_dt=hire if rng.random() < 0.9 else None,
                term_dt=term,
                login=login,
            )
            if mess_on and email is None and kind != "O":
                r["__d"] = [("PR2", "email", "audit", False)]
            emit("provider", r)
        for j in range(rng.randint(4, 8)):
            hyg = j < 2 or rng.random() < 0.3
            op_id = f"{loc.loc_id[1:]}{'H' if hyg else 'O'}{j + 1}"
            loc.ops.append((op_id, hyg))
            r = blank("operatory")
            r.update(
                op_id=op_id,
                loc_id=loc.loc_id,
                op_name=f"{'Hyg' if hyg else 'Op'} {j + 1}",
                op_abbr=f"{'H' if hyg else 'O'}{j + 1}",
                is_hyg=hyg,
                def_dds_id=loc.dentists[0].prov_id,
                def_hyg_id=loc.hygienists[0].prov_id if hyg else None,
                sort=j + 1,
                active_flg=True,
            )
            emit("operatory", r)
        loc.staff = [f"{rng.choice(FIRST_FEMALE).lower()}{rng.randint(1, 9)}" for _ in range(3)]


def _codes(
    rng: random.Random,
    locs: list[Location],
    src: list[tuple[str, str, str, int, int]],
    emit: Emit,
    mess_on: bool,
) -> dict[str, tuple[str, str, str]]:
    codes: dict[str, tuple[str, str, str]] = {}
    allc: list[tuple[str, str, str, int, int, str | None]] = []
    for code, label, area, lo, hi in src:
        cat = _CAT.get(code[1], "ADJ") if code[1] != "6" else ("IMPL" if code < "D6200" else "PROSF")
        allc.append((code, label, cat, lo, hi, _AREA.get(area, "M")))
    for code, label, area, fee in CUSTOM_CODES:
        allc.append((code, label, "CUST", fee, fee, area))
    for code, label, lo, hi in RETIRED:
        allc.append((code, label, "PREV", lo, hi, "M"))
    for code, label, cat, lo, hi, area in allc:
        base = rng.uniform(lo, hi)
        for loc in locs:
            loc.fees[code] = int(round(base * loc.fee_factor)) * 100
        codes[code] = (label, cat, area or "M")
        r = blank("proccode")
        retired = code in ("D1203", "D1204")
        r.update(
            proc_code=code,
            label=label,
            category=cat,
            treat_area=area or "M",
            def_fee=money(int(round(base)) * 100),
            is_hyg=code in ("D1110", "D1120", "D4910", "D4346", "D4355"),
            active_flg=not retired,
            retired_dt=dt.date(2013, 1, 1) if retired else None,
        )
        if retired and mess_on:
            r["__d"] = [("CD2", "proc_code", "audit", False)]
        emit("proccode", r)
    return codes


def _insurance(rng: random.Random, pl: Plan, emit: Emit, mess_on: bool) -> list[InsPlan]:
    carrier_rows: list[tuple[int, str, str, float, tuple[str, ...]]] = []
    cid = 0
    for name, payer, w, types in CARRIERS:
        cid += 1
        carrier_rows.append((cid, name, payer, w, types))
        _carrier_row(rng, emit, cid, name, payer, None)
    if mess_on:  # INS3: near-duplicate carrier names (10% of carriers)
        for c in rng.sample(carrier_rows, max(1, len(carrier_rows) // 10)):
            cid += 1
            variant = rng.choice(
                (c[1].upper(), c[1].replace("Dental", "Dntl"), c[1] + " Inc", c[1] + " of CA")
            )
            carrier_rows.append((cid, variant, c[2], c[3] * 0.1, c[4]))
            _carrier_row(rng, emit, cid, variant, c[2], [("INS3", "carrier_name", "audit", False)])
    pick = Weighted([(c, c[3]) for c in carrier_rows])
    plans: list[InsPlan] = []
    for pid in range(1, 25 + 8 * pl.locations + 1):
        c = pick(rng)
        ptype = rng.choice(c[4])
        pcts = (100, 80, 50) if ptype != "MCAID" else (100, 100, 0)
        p = InsPlan(
            pid,
            c[0],
            c[1],
            ptype,
            rng.uniform(0.55, 0.75) if ptype in ("PPO", "DHMO", "MCAID") else 1.0,
            pcts,
            rng.choice((100000, 150000, 200000)),
            rng.choice((0, 5000, 5000, 7500)),
            rng.choice(EMPLOYERS),
        )
        plans.append(p)
        r = blank("insplan")
        r.update(
            plan_id=pid,
            carrier_id=c[0],
            employer_name=p.employer,
            group_name=f"{p.employer} Dental",
            group_no=str(rng.randint(100000, 999999)) if rng.random() < 0.85 else None,
            plan_type=ptype,
            fee_sched=f"PPO{pid}" if ptype == "PPO" else None,
            renew_month=rng.choice((1, 1, 1, 7, 10)),
            annual_max=money(p.annual_max),
            ded_ind=money(p.deductible),
            ded_fam=money(p.deductible * 3),
            ortho_max=money(150000) if rng.random() < 0.3 else None,
            pct_prev=pcts[0],
            pct_basic=pcts[1],
            pct_major=pcts[2],
            pct_ortho=50 if rng.random() < 0.3 else None,
            freq_notes="BWX 1/12mo, FMX 1/60mo",
            plan_note=None,
        )
        emit("insplan", r)
    return plans


def _carrier_row(rng: random.Random, emit: Emit, cid: int, name: str, payer: str, d: Any) -> None:
    st = rng.choice(sorted(STATES))
    (lo, hi), areas = STATES[st]
    r = blank("insco")
    r.update(
        carrier_id=cid,
        carrier_name=name,
        payer_id=payer or None,
        addr1=f"PO Box {rng.randint(100, 99999)}",
        city=city(rng),
        st=st,
        zip=f"{rng.randint(lo, hi):05d}",
        phone=safe_phone(rng, rng.choice(areas)),
        active_flg=True,
    )
    if d:
        r["__d"] = d
    emit("insco", r)


def _referrals(rng: random.Random, pr: Practice, emit: Emit) -> None:
    rid = 0
    for name, _w in MKT_CHANNELS:
        rid += 1
        pr.mkt_refs[name] = rid
        r = blank("refsrc")
        r.update(ref_id=rid, ref_kind="MKT", name=name, active_flg=True)
        emit("refsrc", r)
    for loc in pr.locations:
        for spec in ("ENDO", "OS", "PERIO", "ORTHO", "GEN", "GEN"):
            rid += 1
            ln, fn = rng.choice(LAST_NAMES), rng.choice(FIRST_MALE + FIRST_FEMALE)
            r = blank("refsrc")
            r.update(
                ref_id=rid,
                ref_kind="DOC",
                name=f"Dr. {fn} {ln}",
                lname=ln,
                fname=fn,
                practice=f"{ln} {'Dental' if spec == 'GEN' else spec.title()}",
                specialty=spec,
                phone=safe_phone(rng, loc.area),
                email=f"{ln.lower()}@example.org" if rng.random() < 0.3 else None,
                npi=npi(rng),
                active_flg=True,
            )
            emit("refsrc", r)
            loc.doc_refs.append((rid, spec))
    pr.next_ref_id = rid
