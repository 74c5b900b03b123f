"""Money and account-status checks of the source audit ($2, $3, $4, ST1; GENERATOR.md §6).

- ``$2``: claim header totals (billed, paid, write-off) that differ from the sum of the claim's lines,
  and negative write-offs on claims or claim lines.
- ``$3``: a guarantor's aging snapshot (PATIENT.BAL_TOTAL) that differs from the sum of LEDGER.AMOUNT
  over the guarantor's account (LEDGER.GUAR_ID; rows without it count for their patient's
  guarantor); deleted ledger rows are left out.
- ``$4``: zero-amount ledger rows (charges excepted: a no-charge procedure is normal), VOID rows
  (reversal pairs), and insurance payments or write-offs whose CLAIM_ID is blank or not in CLAIM.
- ``ST1``: deleted or archived patients (PAT_STAT D/X or DELETED_FLG) that still have ledger rows,
  claims or a non-zero balance.

Ledger amounts are summed per chunk into a spilled store (``Partial``) and summed again a part of the
guarantors at a time, so memory grows with neither the ledger rows nor the guarantors. Claim lines are
summed per chunk into a spilled store; ``$2`` compares them with the claims a part of the claim ids at a
time (``Store.partition``): flat at a DSO's millions of claims. The patients with ledger rows or claims
(ST1) are bitmaps (``keys.IdSet``).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from .checks_base import Findings, Partial, Store, cents, count_true, flat, gone, keep, parts_for, true
from .keys import IdSet

__all__ = ["MoneyChecks"]


_NO_LINES = pa.table({"claim_id": pa.array([], pa.int64()), "fee": pa.array([], pa.int64()),
                      "paid": pa.array([], pa.int64()), "wo": pa.array([], pa.int64())})


def _sums(lines: pa.Table) -> pa.Table:
    """Fee, paid and write-off summed per claim."""
    g = lines.group_by("claim_id").aggregate([(c, "sum") for c in ("fee", "paid", "wo")])
    return g.rename_columns([n.removesuffix("_sum") for n in g.column_names])


class MoneyChecks:
    def __init__(self, findings: Findings, store: Callable[[], Store] = Store) -> None:
        self.f = findings
        self._store = store
        self.by_guar = Partial("guar_id", ["amt"], store())
        self.by_pat = Partial("pat_id", ["amt"], store())
        self.ledger_pats, self.claim_pats = IdSet(duplicates=False), IdSet(duplicates=False)
        self.ins_rows = store()
        self.claims = store()
        self.claim_ids = IdSet(duplicates=False)
        self.lines = store()  # per chunk: claim_id -> fee, paid, wo summed

    # -- per chunk ---------------------------------------------------------------------------
    def ledger(self, data: pa.Table) -> None:
        live = pc.invert(true(data["deleted_flg"]))
        amt = cents(data["amount"])
        has_guar = pc.is_valid(data["guar_id"])
        t = pa.table({"guar_id": data["guar_id"], "pat_id": data["pat_id"], "amt": pc.fill_null(amt, 0)})
        self.by_guar.add(t.filter(pc.and_(live, has_guar)).select(["guar_id", "amt"]))
        self.by_pat.add(t.filter(pc.and_(live, pc.invert(has_guar))).select(["pat_id", "amt"]))
        self.ledger_pats.add(data["pat_id"].filter(live))
        ttype = data["trans_type"]
        zero = true(pc.and_(pc.and_(live, pc.equal(amt, 0)), pc.not_equal(ttype, "CHG")))
        void = true(pc.and_(live, pc.or_(pc.equal(ttype, "VOID"), pc.is_valid(data["reverses_id"]))))
        self.f.flag(
            "$4",
            "ledger",
            data,
            pc.or_(zero, void),
            detail={"zero_amount_rows": count_true(zero), "void_rows": count_true(void)},
        )
        ins = pc.and_(live, true(pc.is_in(ttype, value_set=pa.array(["INSPMT", "INSWO"]))))
        self.ins_rows.add(keep(data, ["trans_id", "claim_id"], ins))

    def claim(self, data: pa.Table) -> None:
        self.claim_pats.add(data["pat_id"])
        self.claim_ids.add(data["claim_id"])
        t = (
            data.append_column("billed", cents(data["billed_amt"]))
            .append_column("paid", cents(data["paid_amt"]))
            .append_column("wo", cents(data["wo_amt"]))
        )
        self.claims.add(keep(t, ["claim_id", "billed", "paid", "wo"]))

    def claimln(self, data: pa.Table) -> None:
        lines = pa.table(
            {
                "claim_id": data["claim_id"],
                "fee": pc.fill_null(cents(data["fee_billed"]), 0),
                "paid": pc.fill_null(cents(data["paid"]), 0),
                "wo": pc.fill_null(cents(data["wo"]), 0),
            }
        )
        self.lines.add(_sums(lines))
        neg = true(pc.less(data["wo"], pa.scalar(0, data.schema.field("wo").type)))
        self.f.flag("$2", "claimln", data, neg, detail={"negative_line_writeoff": count_true(neg)})

    # -- at the end --------------------------------------------------------------------------
    def finish(self, patients: list[Store]) -> None:
        """The checks that need every table; ``patients``: the patient rows, split by patient id
        (``Store.partition``; none: no patient file)."""
        self._claims()
        self._orphan_insurance()
        if patients:
            self._drift(patients)
            for part in patients:
                pat = part.table()
                if pat is not None:
                    self._status(pat)

    def _claims(self) -> None:
        """$2 on claims: negative write-offs, and headers that differ from their lines' sums (compared
        when the export has CLAIMLN), a part of the claim ids at a time."""
        if not self.claims.rows:
            return
        parts = parts_for(self.claims, self.lines)
        for claims_part, lines_part in zip(self.claims.partition("claim_id", parts),
                                           self.lines.partition("claim_id", parts), strict=True):
            claims = claims_part.table()
            if claims is not None:
                lines = lines_part.table()
                self._claims_part(claims, None if not self.lines.rows else
                                  _sums(lines if lines is not None else _NO_LINES))

    def _claims_part(self, claims: pa.Table, sums: pa.Table | None) -> None:
        neg = true(pc.less(claims["wo"], 0))
        bad = neg
        detail = {"negative_writeoff": count_true(neg)}
        if sums is not None:  # without CLAIMLN the header cannot be compared
            j = claims.select(["claim_id", "billed", "paid", "wo"]).join(
                sums, "claim_id", join_type="left outer", right_suffix="_l"
            )
            diffs = {}
            for col in ("billed", "paid", "wo"):
                right = "fee" if col == "billed" else f"{col}_l"
                d = true(pc.not_equal(pc.fill_null(j[col], 0), pc.fill_null(j[right], 0)))
                diffs[col] = j["claim_id"].filter(d)
                detail[f"{col}_differs_from_lines"] = len(diffs[col])
            ids = pa.concat_arrays([flat(c) for c in diffs.values()])
            bad = pc.or_(bad, true(pc.is_in(claims["claim_id"], value_set=ids)))
        self.f.flag("$2", "claim", claims, bad, detail=detail)

    def _orphan_insurance(self) -> None:
        """Insurance payments and write-offs whose claim is not in CLAIM, piece by piece (at a DSO they
        are tens of millions of ledger rows); the claims' ids are a bitmap (``keys.IdSet``)."""
        for rows in self.ins_rows.batches():
            ids = rows["claim_id"].cast(pa.int64())
            known = self.claim_ids.contains(pc.fill_null(ids, -1).to_numpy(zero_copy_only=False))
            orphan = pc.or_(pc.is_null(ids), pc.invert(pa.array(known)))
            self.f.flag("$4", "ledger", rows, orphan,
                        detail={"insurance_rows_without_claim": count_true(orphan)})

    def _drift(self, parts: list[Store]) -> None:
        """$3, a part of the patients at a time: each guarantor's ledger sum (``by_guar``, plus the rows
        without GUAR_ID under their patient's guarantor, or the patient) against the guarantor's row.
        The sums are spilled per chunk and summed a part of the guarantors at a time."""
        n = len(parts)
        owned = Partial("guar_id", ["amt"], self._store())  # rows without GUAR_ID, under their owner
        for i, p in enumerate(self.by_pat.parts(n)):
            mine = self.by_pat.of(p)
            if mine is None:
                continue
            pat = parts[i].table()
            if pat is None:
                owner = mine.append_column("guar_id", pa.nulls(mine.num_rows, pa.int64()))
            else:
                owner = pat.select(["pat_id", "guar_id"]).join(mine, "pat_id", join_type="right outer")
            gid = pc.coalesce(owner["guar_id"], owner["pat_id"])
            owned.add(pa.table({"guar_id": gid, "amt": owner["amt"]}))
        # the guarantors' sums are split once, by the same key and parts as the patients
        for part, by_guar, by_owner in zip(parts, self.by_guar.parts(n), owned.parts(n), strict=True):
            pat = part.table()
            if pat is None:
                continue
            snap = pat.filter(pc.is_valid(pat["bal"]))
            if not snap.num_rows:
                continue
            mine = self.by_guar.of(by_guar, by_owner)
            if mine is None:
                mine = pa.table({"guar_id": pa.array([], pa.int64()), "amt": pa.array([], pa.int64())})
            j = snap.select(["pat_id", "bal"]).join(mine, "pat_id", "guar_id", join_type="left outer")
            diff = true(pc.not_equal(j["bal"], pc.fill_null(j["amt"], 0)))
            bad = j["pat_id"].filter(diff)
            self.f.flag("$3", "patient", snap, pc.is_in(snap["pat_id"], value_set=flat(bad)))

    def _status(self, pat: pa.Table) -> None:
        deleted = gone(pat)
        if not count_true(deleted):
            return
        led = self.ledger_pats.isin(pat["pat_id"])
        clm = self.claim_pats.isin(pat["pat_id"])
        bal = true(pc.not_equal(pat["bal"], 0))
        self.f.flag(
            "ST1",
            "patient",
            pat,
            pc.and_(deleted, pc.or_(pc.or_(led, clm), bal)),
            detail={
                "with_ledger_rows": count_true(pc.and_(deleted, led)),
                "with_claims": count_true(pc.and_(deleted, clm)),
                "with_balance": count_true(pc.and_(deleted, bal)),
            },
        )
