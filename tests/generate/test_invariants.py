"""GENERATOR.md §5 on clean truth: accounting and referential invariants (audit defects excepted)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from gen_helpers import defects, truth

from dos2hl.generate.recall import QUALIFYING


def _audited(run: Path, defect_id: str) -> set[tuple]:
    return {tuple(sorted(d["key"].items())) for d in defects(run) if d["defect_id"] == defect_id and d["key"]}


@pytest.fixture(scope="module", params=["clean", "typical"])
def run(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(request.param)


def test_ledger_sums_to_guarantor_balance(run: Path) -> None:
    drift = {dict(k)["pat_id"] for k in _audited(run, "$3")}
    total: dict[int, Decimal] = defaultdict(Decimal)
    for r in truth(run, "ledger"):
        total[r["guar_id"]] += r["amount"]
    pats = {r["pat_id"]: r for r in truth(run, "patient")}
    checked = 0
    for gid, amount in total.items():
        bal = pats[gid]["bal_total"]
        if gid in drift:
            assert bal != amount
        else:
            assert bal == amount, gid
            checked += 1
        b = pats[gid]
        if gid not in drift:
            assert b["bal_cur"] + b["bal_30"] + b["bal_60"] + b["bal_90"] == bal
    assert checked > 50


def test_claims_match_lines_and_insurance_postings(run: Path) -> None:
    bad = {dict(k)["claim_id"] for k in _audited(run, "$2")}
    lines: dict[int, list] = defaultdict(list)
    for ln in truth(run, "claimln"):
        lines[ln["claim_id"]].append(ln)
    inspmt: dict[int, Decimal] = defaultdict(Decimal)
    inswo: dict[int, Decimal] = defaultdict(Decimal)
    for r in truth(run, "ledger"):
        if r["trans_type"] == "INSPMT":
            inspmt[r["claim_id"]] += r["amount"]
        elif r["trans_type"] == "INSWO":
            inswo[r["claim_id"]] += r["amount"]
    claims = truth(run, "claim")
    assert claims
    for c in claims:
        ls = lines[c["claim_id"]]
        assert ls
        if c["claim_id"] not in bad:
            assert c["billed_amt"] == sum(x["fee_billed"] for x in ls)
        assert c["paid_amt"] == sum(x["paid"] for x in ls) == -inspmt.get(c["claim_id"], Decimal(0))
        assert c["wo_amt"] == sum(x["wo"] for x in ls) == -inswo.get(c["claim_id"], Decimal(0))


def test_completed_appointments_have_charges_and_others_do_not(run: Path) -> None:
    chg = defaultdict(set)
    for r in truth(run, "ledger"):
        if r["trans_type"] == "CHG":
            chg[(r["pat_id"], r["trans_dt"])].add(r["appt_id"])
    for a in truth(run, "appt"):
        has = a["appt_id"] in chg.get((a["pat_id"], a["appt_date"]), set())
        assert has == (a["status"] == "CMP"), a["appt_id"]


def test_txitems_completed_iff_charged(run: Path) -> None:
    chg = {r["trans_id"]: r for r in truth(run, "ledger") if r["trans_type"] == "CHG"}
    for t in truth(run, "txitem"):
        if t["status"] == "CP":
            assert chg[t["trans_id"]]["txitem_id"] == t["txitem_id"]
        else:
            assert t["trans_id"] is None


def test_recall_last_date_is_latest_qualifying_procedure(run: Path) -> None:
    latest: dict[tuple[int, str], object] = {}
    for r in truth(run, "ledger"):
        if r["trans_type"] != "CHG":
            continue
        for rt, (codes, _m, _t) in QUALIFYING.items():
            if r["proc_code"] in codes:
                k = (r["pat_id"], rt)
                latest[k] = max(latest.get(k, r["trans_dt"]), r["trans_dt"])
    recalls = truth(run, "recall")
    assert recalls
    for rc in recalls:
        assert rc["last_dt"] == latest[(rc["pat_id"], rc["recall_type"])]


def test_foreign_keys_resolve(run: Path) -> None:
    appts = {a["appt_id"] for a in truth(run, "appt")}
    claims = {c["claim_id"] for c in truth(run, "claim")}
    ledger = {r["trans_id"] for r in truth(run, "ledger")}
    pats = {p["pat_id"] for p in truth(run, "patient")}
    orphan_inspmt = {dict(k)["trans_id"] for k in _audited(run, "$4")}
    for r in truth(run, "ledger"):
        assert r["pat_id"] in pats and r["guar_id"] in pats
        assert r["appt_id"] is None or r["appt_id"] in appts
        assert r["claim_id"] is None or r["claim_id"] in claims or r["trans_id"] in orphan_inspmt
    for ap in truth(run, "apptproc"):
        assert ap["appt_id"] in appts and (ap["trans_id"] is None or ap["trans_id"] in ledger)
    for ln in truth(run, "claimln"):
        assert ln["claim_id"] in claims and ln["trans_id"] in ledger
    dangling = {dict(k)["pat_id"] for k in _audited(run, "FAM1")}
    for p in truth(run, "patient"):
        assert p["guar_id"] in pats or p["pat_id"] in dangling


def test_statuses_roughly_as_configured(run: Path) -> None:
    pats = truth(run, "patient")
    n = len(pats)
    share = {s: sum(p["pat_stat"] == s for p in pats) / n for s in "AINPXDZ"}
    assert 0.18 <= share["A"] <= 0.45
    assert share["I"] > share["A"]
    assert share["P"] < 0.05
