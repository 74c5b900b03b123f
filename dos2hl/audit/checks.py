"""Semantic data-quality checks of the source audit: one finding code per GENERATOR.md §6 defect.

``SemanticChecks.add(table, rows)`` is called with each chunk's staged canonical rows (plus the
lineage columns ``_file``, ``_record``, ``_line``); ``findings()`` returns audit findings
``{"code", "action": "flagged", "count", "reason", "refs", "detail"}``. References are file, line,
record and primary key only; no name, date, phone, email, amount or file name is ever reported.

Checks that need only the chunk run at once; checks that need other tables keep a compact store
(ids, small codes, cents, int32 lineage; text is reduced to a key right away) and run in
``findings()``. Reference tables (provider, proccode, userfld) come before the tables that use them
(``sources.discover.TABLE_ORDER``), which the per-chunk provider, code and custom-field checks rely on.

Codes (count = rows unless stated): DUP1 duplicate-person clusters (count = clusters), DUP3 test or
demo patients, FAM1 guarantor missing or deleted, FAM2 non-patient guarantor without a birth date,
ST1 (see ``checks_money``), $2/$3/$4 (money), CD2 retired, custom or undefined procedure codes,
PR1 provider missing from PROVIDER (any provider column) or terminated before a scheduled
appointment, PR2 provider without email, RC1 duplicate recall (same patient and type; rows after the
first) or an active recall of an inactive/deceased patient, INS1 COV_ORDER 0 or a second overlapping
primary coverage, INS2 SSN-shaped member id, INS3 carrier-name near duplicates (rows after the first
per key), REF1 referral typed as free text without REF_ID, NOTE2 note linked to several codes or
with an author not in PROVIDER, UDF1 custom-field value that does not fit its definition, EM3 email
or cell phone shared by several patients (patients after the first, per column), DOC1/DOC2
(``checks_docs``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..model import TABLES
from .checks_base import Findings, Spill, Store, cents, count_true, fold_letters, keep, parts_for, true
from .checks_docs import DocumentChecks, LastNames
from .checks_money import MoneyChecks
from .checks_people import PatientKeys, carriers, code_defs, coverage_parts, people, recalls, shared_contacts
from .docindex import DocumentIndex

__all__ = ["SemanticChecks", "carrier_key"]

_PER_TABLE = frozenset({"provider", "proccode", "insco", "userfld", "patient", "inssub", "patins", "ledger",
                        "claim", "claimln", "recall", "patref", "clinnote", "document", "patudf"})
_PROV_COLS = {t: [c.name for c in spec.columns if c.fk == "provider"] for t, spec in TABLES.items()}
_CODE_COLS = {t: [c.name for c in spec.columns if c.fk == "proccode"] for t, spec in TABLES.items()}
RETIRED_CODES = ("D1203", "D1204")
_TEST_NAME = (
    r"\b(TEST|TESTING|TESTPATIENT|ZZ+TEST\w*|ZZZ+\w*|DEMO|DEMOPATIENT|DUMMY|DONOTUSE|"
    r"DO NOT USE|(MICKEY|MINNIE) MOUSE)\b"
)
_SSN = r"^(\d{9}|\d{3}-\d{2}-\d{4})$"
_CLEAN_DATE = r"^(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})$"
_NUMBER = r"^-?\$?\d[\d,]*(\.\d+)?$"
_CHECKBOX = ("Y", "N", "1", "0", "X", "T", "F", "YES", "NO", "TRUE", "FALSE")
_SCHEDULED = ("SCH", "CNF", "UNS", "PLN")
_CARRIER_NOISE = frozenset(
    {
        "INC",
        "CO",
        "CORP",
        "CORPORATION",
        "COMPANY",
        "LLC",
        "LTD",
        "THE",
        "OF",
        "PLAN",
        "PLANS",
        "INSURANCE",
        "INS",
        "DENTAL",
        "DNTL",
        "DENT",
        "GROUP",
    }
)


def carrier_key(folded: str) -> str:
    """Near-duplicate key of a carrier name already folded to upper-case words (``DELTA DNTL OF CA``
    -> ``DELTA``): legal-form and filler words and a state after ``OF`` are dropped."""
    toks = folded.split()
    out = [
        t
        for i, t in enumerate(toks)
        if t not in _CARRIER_NOISE and not (i and toks[i - 1] == "OF" and len(t) == 2)
    ]
    return "".join(out) or "".join(toks)


class SemanticChecks:
    """Streaming accumulator of the semantic checks (see the module docstring)."""

    def __init__(self, documents: DocumentIndex | Mapping[str, int] | None = None, *,
                 spill: Path | None = None) -> None:
        """``spill``: a private folder for the row stores (``checks_base.Store``); None: in memory."""
        self.f = Findings()
        self._spill = Spill(spill)
        st = self._spill.store
        self.money = MoneyChecks(self.f, st)
        self.docs = DocumentChecks(self.f, documents)
        self.pat, self.dupk, self.lnames, self.contacts = st(), st(), st(), st()
        self.recalls, self.primary, self.carriers, self.codes = st(), st(), st(), st()
        self.periods = st()
        self.prov_ids: list[str] = []
        self.prov_logins: list[str] = []
        self.prov_term: dict[str, dt.date] = {}
        self.code_set: list[str] = []
        self.retired: set[str] = set(RETIRED_CODES)
        self.udf: dict[int, tuple[str, list[str]]] = {}
        self._seq = 0
        self._cache: dict[str, object] = {}
        self._done: list[dict[str, object]] | None = None
        self.duplicates: dict[str, object] = {"pairs_count": 0, "pairs": [], "clusters": []}

    def _with_seq(self, t: pa.Table) -> pa.Table:
        t = t.append_column("_i", pa.array(range(self._seq, self._seq + t.num_rows), pa.int64()))
        self._seq += t.num_rows
        return t

    def _set(self, name: str, values: list[str]) -> pa.Array:
        if self._cache.get(name + "#") != len(values):
            self._cache[name] = pa.array(sorted(set(values)), pa.string())
            self._cache[name + "#"] = len(values)
        return self._cache[name]

    # -- per chunk -------------------------------------------------------------------------
    def add(self, table: str, data: pa.Table) -> None:
        if not data.num_rows:
            return
        if table in _PER_TABLE:  # the table's own checks: a method named after it
            getattr(self, f"_{table}")(data)
        if _PROV_COLS.get(table) and self.prov_ids:
            self._providers_used(table, data)
        if _CODE_COLS.get(table):
            self._codes_used(table, data)

    def _provider(self, d: pa.Table) -> None:
        self.prov_ids += [v for v in d["prov_id"].to_pylist() if v]
        self.prov_logins += [v.upper() for v in d["login"].to_pylist() if v]
        for p, t in zip(d["prov_id"].to_pylist(), d["term_dt"].to_pylist(), strict=True):
            if p and t:
                self.prov_term[p] = t
        blank = pc.and_(pc.is_null(d["email"]), pc.invert(true(pc.equal(d["prov_type"], "O"))))
        self.f.flag("PR2", "provider", d, blank)

    def _providers_used(self, table: str, d: pa.Table) -> None:
        known = self._set("prov", self.prov_ids)
        mask, later = None, None
        for c in _PROV_COLS[table]:
            m = true(pc.and_(pc.is_valid(d[c]), pc.invert(pc.is_in(d[c], value_set=known))))
            mask = m if mask is None else pc.or_(mask, m)
        if table == "appt" and self.prov_term:
            ids = pa.array(list(self.prov_term), pa.string())
            ends = pa.array(list(self.prov_term.values()), pa.date32())
            sched = true(pc.is_in(d["status"], value_set=pa.array(_SCHEDULED)))
            for c in ("prov_id", "hyg_id"):
                end = pc.take(ends, pc.index_in(d[c], value_set=ids))
                m = true(pc.and_(sched, pc.greater(d["appt_date"], end)))
                later = m if later is None else pc.or_(later, m)
        missing = int(pc.sum(mask).as_py() or 0)
        late = int(pc.sum(later).as_py() or 0) if later is not None else 0
        self.f.flag(
            "PR1",
            table,
            d,
            mask if later is None else pc.or_(mask, later),
            detail={"provider_not_in_PROVIDER": missing, "terminated_provider_on_later_appointment": late},
        )

    def _proccode(self, d: pa.Table) -> None:
        ret = pc.or_(
            pc.is_valid(d["retired_dt"]), pc.is_in(d["proc_code"], value_set=pa.array(RETIRED_CODES))
        )
        self.retired.update(
            v for v, r in zip(d["proc_code"].to_pylist(), ret.to_pylist(), strict=True) if v and r
        )
        self.code_set += [v for v in d["proc_code"].to_pylist() if v]
        self.codes.add(keep(d.append_column("retired", ret), ["proc_code", "retired"]))

    def _codes_used(self, table: str, d: pa.Table) -> None:
        retired = self._set("retired", list(self.retired))
        known = self._set("codes", self.code_set) if self.code_set else None
        old, unknown = None, None
        for c in _CODE_COLS[table]:
            o = true(pc.is_in(d[c], value_set=retired))
            old = o if old is None else pc.or_(old, o)
            if known is not None:
                u = true(pc.and_(pc.is_valid(d[c]), pc.invert(pc.is_in(d[c], value_set=known))))
                unknown = u if unknown is None else pc.or_(unknown, u)
        assert old is not None
        mask = old if unknown is None else pc.or_(old, unknown)
        self.f.flag(
            "CD2",
            table,
            d,
            mask,
            detail={"retired_code_used": count_true(old), "code_not_in_PROCCODE": count_true(unknown)},
        )

    def _insco(self, d: pa.Table) -> None:
        keys = [carrier_key(v or "") for v in fold_letters(d["carrier_name"], keep_spaces=True).to_pylist()]
        self.carriers.add(
            self._with_seq(keep(d.append_column("k", pa.array(keys, pa.string())), ["carrier_id", "k"]))
        )

    def _userfld(self, d: pa.Table) -> None:
        for fid, typ, pick in zip(
            *(d[c].to_pylist() for c in ("field_id", "field_type", "picklist")), strict=True
        ):
            if fid is not None:
                self.udf[fid] = (typ or "T", [o.strip() for o in (pick or "").split("|") if o.strip()])

    def _patient(self, d: pa.Table) -> None:
        t = d.append_column("no_dob", pc.is_null(d["birthdate"])).append_column("bal", cents(d["bal_total"]))
        t = t.append_column("deceased", pc.is_valid(d["deceased_dt"]))
        self.pat.add(self._with_seq(keep(t, ["pat_id", "guar_id", "pat_stat", "deleted_flg", "no_dob", "bal",
                                              "deceased"])))
        key4 = [pc.utf8_slice_codeunits(fold_letters(d[c]), 0, 4) for c in ("lname", "fname")]
        self.dupk.add(
            pa.table({"pat_id": d["pat_id"], "lname": key4[0], "fname": key4[1], "birthdate": d["birthdate"]})
        )
        self.lnames.add(pa.table({"pat_id": d["pat_id"], "l": fold_letters(d["lname"], keep_spaces=True)}))
        has = pc.or_(pc.is_valid(d["email"]), pc.is_valid(d["cphone"]))
        self.contacts.add(self._with_seq(keep(d, ["pat_id", "email", "cphone"], has)))
        names = pc.binary_join_element_wise(
            *(pc.fill_null(fold_letters(d[c], keep_spaces=True), "") for c in ("fname", "lname")), " "
        )
        self.f.flag("DUP3", "patient", d, pc.match_substring_regex(names, _TEST_NAME))

    def _inssub(self, d: pa.Table) -> None:
        self.f.flag("INS2", "inssub", d, pc.match_substring_regex(d["member_id"], _SSN))
        self.periods.add(d.select(["sub_rec_id", "eff_dt", "term_dt"]))

    def _patins(self, d: pa.Table) -> None:
        zero = true(pc.less_equal(d["cov_order"], 0))
        self.f.flag("INS2", "patins", d, pc.match_substring_regex(d["pat_member_id"], _SSN))
        self.f.flag("INS1", "patins", d, zero, detail={"cov_order_0": count_true(zero)})
        self.primary.add(keep(d, ["patins_id", "pat_id", "sub_rec_id"], pc.equal(d["cov_order"], 1)))

    def _ledger(self, d: pa.Table) -> None:
        self.money.ledger(d)

    def _claim(self, d: pa.Table) -> None:
        self.money.claim(d)

    def _claimln(self, d: pa.Table) -> None:
        self.money.claimln(d)

    def _recall(self, d: pa.Table) -> None:
        active = pc.and_(
            pc.invert(true(pc.is_in(d["status"], value_set=pa.array(["INA", "DIS", "CMP"])))),
            pc.invert(true(d["disabled_flg"])),
        )
        self.recalls.add(
            self._with_seq(
                keep(d.append_column("active", active), ["recall_id", "pat_id", "recall_type", "active"])
            )
        )

    def _patref(self, d: pa.Table) -> None:
        self.f.flag("REF1", "patref", d, pc.and_(pc.is_null(d["ref_id"]), pc.is_valid(d["source_text"])))

    def _clinnote(self, d: pa.Table) -> None:
        multi = true(pc.match_substring_regex(pc.utf8_trim_whitespace(d["proc_code"]), r"[,;/ +&]"))
        author = pc.scalar(False)
        if self.prov_ids:
            known = self._set("authors", self.prov_ids + self.prov_logins)
            author = true(
                pc.and_(pc.is_valid(d["prov_id"]), pc.invert(pc.is_in(d["prov_id"], value_set=known)))
            )
        self.f.flag(
            "NOTE2",
            "clinnote",
            d,
            pc.or_(multi, author),
            detail={"several_codes": count_true(multi), "author_not_in_PROVIDER": count_true(author)},
        )

    def _document(self, d: pa.Table) -> None:
        if "lnames" not in self._cache:
            self._cache["lnames"] = LastNames(self.lnames) if self.lnames.rows else None
            self.lnames = Store()
        self.docs.add(d, self._cache["lnames"])  # type: ignore[arg-type]

    def _patudf(self, d: pa.Table) -> None:
        val = pc.utf8_trim_whitespace(d["value"])
        bad = pa.repeat(False, d.num_rows)
        for fid, (typ, opts) in self.udf.items():
            if typ == "D":
                wrong = pc.invert(pc.match_substring_regex(val, _CLEAN_DATE))
            elif typ == "L" and opts:
                wrong = pc.invert(pc.is_in(val, value_set=pa.array(opts, pa.string())))
            elif typ == "N":
                wrong = pc.invert(pc.match_substring_regex(val, _NUMBER))
            elif typ == "C":
                wrong = pc.invert(pc.is_in(pc.utf8_upper(val), value_set=pa.array(_CHECKBOX)))
            else:
                continue
            bad = pc.or_(bad, true(pc.and_(pc.equal(d["field_id"], fid), pc.and_(pc.is_valid(val), wrong))))
        self.f.flag("UDF1", "patudf", d, bad)

    # -- at the end ------------------------------------------------------------------------
    def findings(self) -> list[dict[str, object]]:
        """The checks that need every table, a part of the patients (and of their rows) at a time: the
        patients' stores are split by patient id (``Store.partition``), and what one part needs to know
        of the others is a bitmap of ids (``PatientKeys``)."""
        if self._done is not None:
            return self._done
        parts = self.pat.partition("pat_id", parts_for(self.pat)) if self.pat.rows else []
        keys = PatientKeys.of(self.pat)
        self.money.finish(parts)
        self.docs.finish()
        if parts:
            self.duplicates = people(self.f, parts, keys, self.dupk)
            recalls(self.f, keys, self.recalls)
        code_defs(self.f, self.codes.table())
        carriers(self.f, self.carriers.table())
        coverage_parts(self.f, self.primary, self.periods)
        shared_contacts(self.f, self.contacts)
        self._done = self.f.entries()
        return self._done
