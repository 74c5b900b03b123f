"""Defect injection (GENERATOR.md §6): dirty spellings of clean cells, and file-level choices.

Only defects the reader can see in the bytes of one cell or one file live here; semantic defects
(duplicates, drift, orphans ...) are made true in the simulated data by the modules that build it,
and ride on the row as ``__d``. Every rule below logs what it did with the ``expect``/``destroyed``
the reader's contract needs (docs/architecture.md): ``repair`` only when the documented canonical
rules give back the clean value from the dirty text.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..model import TABLES
from ..sources.names import title_case_name
from .formats import FileStyle, RawText, fmt_date
from .rng import Trigger, sub_rng

__all__ = ["TableMess", "RATES", "SENTINELS", "phone_variant"]

# Typical-profile rates per eligible cell/row (GENERATOR.md §6); nasty multiplies them by 3.
RATES = {
    "DT1": 0.03,
    "DT2": 0.05,
    "DT3": 0.01,
    "PH1": 0.30,
    "PH2": 0.01,
    "EM2": 0.03,
    "NM2": 0.20,
    "ENC3": 0.30,
    "$1": 0.01,
    "CD1": 0.01,
    "TH1": 0.005,
    "CSV4": 0.005,
    "CSV2": 0.0002,
}
SENTINELS = ("01/01/1900", "12/30/1899", "01/01/1901", "0001-01-01", "0000-00-00", "  /  /  ")
NM1_CUTOVER_YEAR = 2016  # patient records created before this were typed in ALL CAPS
_PHONE_NOTES = ("(wk)", "(cell)", "cell", "home", "mom's cell")
_PLACEHOLDERS = ("000-000-0000", "(000) 000-0000", "999-999-9999", "0000000000")
_JUNK_EMAIL = ("none", "no email", "refused", "x", "NONE@NONE", "pt declined")
_TOOTH_TABLES = ("apptproc", "txitem", "ledger", "claimln")
# Universal -> FDI for the lower teeth (17-24 -> 38..31, 25-32 -> 41..48). Only FDI numbers above
# 32 are used: upper-arch FDI numbers (11-28) are valid Universal numbers too, so no reader could
# tell them apart; they would be silent corruption, not a defect.
_FDI = {
    n: f"{q}{i}"
    for q, rng_ in ((3, range(17, 25)), (4, range(25, 33)))
    for i, n in zip(range(8, 0, -1) if q == 3 else range(1, 9), rng_, strict=True)
}
_FDI = {k: v for k, v in _FDI.items() if int(v) > 32}


def phone_variant(rng: random.Random, e164: str, local_area: str | None) -> str:
    """A non-canonical spelling of a US number that the reader turns back into ``e164``."""
    a, e, n = e164[2:5], e164[5:8], e164[8:]
    choices = [
        f"{a}-{e}-{n}",
        f"{a}.{e}.{n}",
        f"{a}{e}{n}",
        f"{a} {e} {n}",
        f"1-{a}-{e}-{n}",
        f"+1 {a} {e} {n}",
        f"({a}){e}-{n}",
        f"{a}/{e}-{n}",
        f"({a}) {e}-{n} x{rng.randint(2, 999)}",
        f"{a}-{e}-{n} ext. {rng.randint(2, 99)}",
        f"({a}) {e}-{n} {rng.choice(_PHONE_NOTES)}",
        e164,
    ]
    if local_area == a:
        choices.append(f"{e}-{n}")
    return rng.choice(choices)


def _money_variant(rng: random.Random, v: Decimal) -> str:
    if v < 0:
        return rng.choice((f"({-v:,.2f})", f"{-v:.2f}-", f"-${-v:,.2f}"))
    return rng.choice((f"${v:,.2f}", f"{v:,.2f}" if v >= 1000 else f"${v:.2f}", f"+{v:.2f}"))


def _code_variant(rng: random.Random, code: str) -> str:
    num = code[1:]
    return rng.choice((num, num.lstrip("0") or "0", num + ".01"))


# the columns each rule walks (a rule not listed here always runs)
_RULE_COLUMNS = {
    "_sentinels": ("dobs", "dates"),
    "_dates": ("dates", "dobs"),
    "_phones": ("phones",),
    "_emails": ("emails",),
    "_money": ("money",),
    "_codes": ("codes",),
    "_teeth": ("teeth",),
    "_memos": ("memos", "notes"),
}


def _ident(defect: str) -> str:
    return defect.replace("$", "D_")


class TableMess:
    """The cell-level defects of one table in one export file."""

    def __init__(
        self,
        table: str,
        seed: int,
        factor: float,
        style: FileStyle,
        *,
        loc_area: dict[str, str],
        ledger_signed: bool,
        export_date: dt.date,
    ) -> None:
        self.table = table
        self.rng = sub_rng(seed, "mess", table)
        self.style = style
        self.loc_area = loc_area
        self.export_date = export_date
        t = TABLES[table]
        r = self.rng

        def trig(defect: str) -> Trigger:
            return Trigger(r, min(RATES[defect] * factor, 0.9))

        self.dates = [c.name for c in t.columns if c.kind == "date"]
        self.dobs = [c.name for c in t.columns if c.kind == "dob"]
        self.phones = [c.name for c in t.columns if c.kind == "phone"]
        self.emails = [c.name for c in t.columns if c.kind == "email"]
        self.money = [
            c.name for c in t.columns if c.kind == "money" and (ledger_signed or c.name != "amount")
        ]
        self.codes = (
            []
            if style.codes_without_d
            else [c.name for c in t.columns if c.kind == "code" and c.name == "proc_code"]
        )
        self.teeth = ["tooth"] if table in _TOOTH_TABLES else []
        self.memos = [c.name for c in t.columns if c.kind == "memo"]
        self.notes = [c for c in ("note_text", "note") if c in t.by_name and table in ("clinnote", "commlog")]
        self.texts = [c.name for c in t.columns if c.kind == "str"]
        self.t = {k: trig(k) for k in RATES}
        self.rules: list[Callable[[dict[str, Any], dict[str, str], list[tuple]], None]] = []
        if table == "patient":
            self.rules.append(self._names)
        for name in (
            "_sentinels",
            "_dates",
            "_phones",
            "_emails",
            "_money",
            "_codes",
            "_teeth",
            "_memos",
            "_broken_row",
        ):
            # a rule over columns this table does not have draws nothing: left out, the draws are the same
            if name in _RULE_COLUMNS and not any(getattr(self, cols) for cols in _RULE_COLUMNS[name]):
                continue
            self.rules.append(getattr(self, name))
        self._quiet = self._compile_quiet() if table != "patient" else None

    def apply(self, row: dict[str, Any], sentinels: Any) -> tuple[dict[str, str] | None, list[tuple] | None]:
        if self._quiet is not None and not sentinels:
            defs = self._quiet(row)
            if defs is not None:
                return None, (defs or None)
        over: dict[str, str] = {}
        defs: list[tuple] = []
        self._sent = sentinels
        for rule in self.rules:
            rule(row, over, defs)
        return (over or None), (defs or None)

    def _compile_quiet(self) -> Callable[[dict[str, Any]], list[tuple] | None]:
        """The rules' quiet path, compiled for this table: most rows get no defect, yet each rule still
        counts its triggers down once per eligible cell. ``quiet(row)`` counts, per trigger, the cells
        the rules would ask about if none fired; when every trigger has more calls left than that, no
        rule fires (so none draws from the stream, and the counts are exact): it takes them off and
        returns the defects the rules log without a trigger (CSV1, ENC1 of notes). Otherwise it
        returns None and changes nothing: ``apply`` runs the rules. Not for PATIENT (names) nor a
        row with sentinel columns."""
        body: list[str] = []
        counted: list[str] = []  # the triggers this table's rules call, in first-use order

        def count(defect: str, cond: str | None = None) -> None:
            if defect not in counted:
                counted.append(defect)
            inc = f"n_{_ident(defect)} += 1"
            body.append(inc if cond is None else f"if {cond}: {inc}")

        for c in self.dates:  # _sentinels (no sentinel columns here)
            count("DT1", f"row[{c!r}] is None")
        if self.dates or self.dobs:  # _dates
            if not self.style.two_digit_year:
                count("DT2")
            for c in self.dates:
                count("DT3", f"row[{c!r}] is not None")
        for c in self.phones:  # _phones
            count("PH2", f"row[{c!r}] is None")
            count("PH1", f"row[{c!r}] is not None")
        for c in self.emails:  # _emails
            count("EM2", f"row[{c!r}] is not None")
        for c in self.money:  # _money: None and zero are skipped (a Decimal or int is false only at zero)
            count("$1", f"row[{c!r}]")
        for c in self.codes:  # _codes
            count("CD1", f"(v := row[{c!r}]) is not None and len(v) == 5 and v[0] == 'D' and v[1:].isdigit()")
        if self.teeth:  # _teeth
            count("TH1", "row['tooth']")
        body.append("defs = []")
        for c in self.memos:  # _memos
            body.append(f"if (v := row[{c!r}]) and '\\n' in v: defs.append(('CSV1', {c!r}, 'repair', False))")
        for c in self.notes:
            body.append(f"if (v := row[{c!r}]) and not v.isascii(): "
                        f"defs.append(('ENC1', {c!r}, 'repair', False))")
            count("CSV4", "v and len(v) > 10")
        count("CSV2")  # _broken_row: one call per row
        body[:0] = [f"n_{_ident(d)} = 0" for d in counted]
        names = {d: f"t_{_ident(d)}" for d in counted}
        fires = " or ".join(f"n_{_ident(d)} >= {names[d]}._left" for d in counted)
        take = [f"{names[d]}._left -= n_{_ident(d)}" for d in counted]
        lines = [*body, f"if {fires}: return None", *take, "return defs"]
        src = "def quiet(row):\n" + "".join(f"    {ln}\n" for ln in lines)
        ns: dict[str, Any] = {names[d]: self.t[d] for d in counted}
        exec(compile(src, f"<quiet {self.table}>", "exec"), ns)  # our own columns' source, no input
        fn: Callable[[dict[str, Any]], list[tuple] | None] = ns["quiet"]
        return fn

    # -- dates ---------------------------------------------------------------------------------
    def _sentinels(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        sent = self._sent or ()
        for c in self.dobs:
            if c in sent:
                over[c] = self.rng.choice(SENTINELS)
                defs.append(("DT1", c, "repair", False))
        t = self.t["DT1"]
        for c in self.dates:
            if row[c] is None and (c in sent or t()):
                over[c] = self.rng.choice(SENTINELS)
                defs.append(("DT1", c, "repair", False))

    def _dates(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        if not self.dates and not self.dobs:
            return
        if not self.style.two_digit_year and self.t["DT2"]():
            for c in self.dobs + self.dates:
                v = row[c]
                if v is not None and c not in over:
                    over[c] = fmt_date(v, True)
                    defs.append(("DT2", c, "repair", False))
        t = self.t["DT3"]
        for c in self.dates:
            v = row[c]
            if v is not None and c not in over and t():
                over[c] = v.isoformat()
                defs.append(("DT3", c, "repair", False))

    # -- contact fields ------------------------------------------------------------------------
    def _phones(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        t1, t2 = self.t["PH1"], self.t["PH2"]
        local = self.loc_area.get(row.get("loc_id") or "") if self.table == "patient" else None
        for c in self.phones:
            v = row[c]
            if v is None:
                if t2():
                    over[c] = self.rng.choice(_PLACEHOLDERS)
                    defs.append(("PH2", c, "repair", False))
            elif t1():
                over[c] = phone_variant(self.rng, v, local)
                defs.append(("PH1", c, "repair", False))

    def _emails(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        t = self.t["EM2"]
        for c in self.emails:
            v = row[c]
            if v is None or not t():
                continue
            u = self.rng.random()
            if u < 0.4:
                other = f"{self.rng.choice(('family', 'home', 'work'))}{self.rng.randint(1, 99)}@example.org"
                over[c] = self.rng.choice((f"{v}; {other}", f"{v}, {other}", f"{v} / {other}"))
                defs.append(("EM2", c, "repair", False))
            elif u < 0.7:
                user, dom = v.split("@", 1)
                over[c] = self.rng.choice(
                    (
                        f"{user}@@{dom}",
                        f"{user}{dom}",
                        f"{user}@{dom.split('.')[0]}",
                        f"{user}@{dom.replace('.', ',')}",
                        f"{user} @{dom}",
                    )
                )
                defs.append(("EM2", c, "flag", True))
            else:
                over[c] = self.rng.choice(_JUNK_EMAIL)
                defs.append(("EM2", c, "flag", True))

    def _names(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        """NM2 (suffix/nickname inside the name), NM1 (ALL CAPS before the cutover), ENC3, ENC1."""
        lname, fname, pref, suffix = row["lname"], row["fname"], row["pref_name"], row["suffix"]
        dl, df, dp = lname, fname, pref
        t = self.t["NM2"]
        if suffix and lname and t():
            dl = self.rng.choice(
                (f"{lname} {suffix}", f"{lname}, {suffix.capitalize()}.", f"{lname} {suffix}")
            )
            over["suffix"] = ""
            defs.append(("NM2", "suffix", "repair", False))
        if pref and fname and t():
            df = f'{fname} "{pref}"'
            dp = None
            over["pref_name"] = ""
            defs.append(("NM2", "pref_name", "repair", False))
        created = row["created_dt"]
        caps = created is not None and created.year < NM1_CUTOVER_YEAR
        for col, clean, dirty in (("lname", lname, dl), ("fname", fname, df), ("pref_name", pref, dp)):
            if not clean or dirty is None:
                continue
            if caps:
                over[col] = dirty.upper()
                defs.append(("NM1", col, "repair", title_case_name(clean.upper()) != clean))
            elif not clean.isascii():
                if col != "pref_name" and self.t["ENC3"]():
                    over[col] = dirty.encode("utf-8").decode("cp1252")
                    defs.append(("ENC3", col, "repair", False))
                else:
                    if dirty != clean:
                        over[col] = dirty
                    defs.append(("ENC1", col, "repair", False))
            elif dirty != clean:
                over[col] = dirty

    # -- money, codes, teeth -------------------------------------------------------------------
    def _money(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        t = self.t["$1"]
        for c in self.money:
            v = row[c]
            if v is not None and v != 0 and t():
                over[c] = _money_variant(self.rng, v)
                defs.append(("$1", c, "repair", False))

    def _codes(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        t = self.t["CD1"]
        for c in self.codes:
            v = row[c]
            if v is not None and len(v) == 5 and v[0] == "D" and v[1:].isdigit() and t():
                over[c] = _code_variant(self.rng, v)
                defs.append(("CD1", c, "repair", False))

    def _teeth(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        if not self.teeth:
            return
        v = row["tooth"]
        if not v or not self.t["TH1"]():
            return
        r = self.rng
        if v.isdigit() and 1 <= int(v) <= 32:
            u = r.random()
            if u < 0.5:
                over["tooth"] = r.choice((f"#{v}", f"# {v}", f"#{int(v):02d}"))
                defs.append(("TH1", "tooth", "repair", False))
            elif u < 0.75 and int(v) in _FDI:
                over["tooth"] = _FDI[int(v)]
                defs.append(("TH1", "tooth", "flag", True))
            else:
                over["tooth"] = str(r.randint(33, 50))
                defs.append(("TH1", "tooth", "flag", True))
        elif v.isalpha() and len(v) == 1:
            over["tooth"] = v.lower()
            defs.append(("TH1", "tooth", "repair", False))

    # -- memo and record structure -------------------------------------------------------------
    def _memos(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        for c in self.memos:
            v = row[c]
            if v and "\n" in v:
                defs.append(("CSV1", c, "repair", False))
        t = self.t["CSV4"]
        for c in self.notes:
            v = row[c]
            if v and not v.isascii():
                defs.append(("ENC1", c, "repair", False))
            if v and len(v) > 10 and t():
                cut = v.find(" ", len(v) // 3)
                if cut < 0:
                    continue
                clean = v[:cut] + "      \t    " + v[cut:]
                row[c] = clean  # whitespace runs are kept by the canonical memo rule
                junk = self.rng.choice(("\x00", "\x00\x00\x00", "\x07", "\x1b", "\x01\x02", "\x7f"))
                dirty = clean[:cut] + junk + clean[cut:] + self.rng.choice(("", "\x00"))
                over[c] = dirty.replace("\n", "\r\n")
                defs.append(("CSV4", c, "repair", False))

    def _broken_row(self, row: dict[str, Any], over: dict[str, str], defs: list[tuple]) -> None:
        if not self.t["CSV2"]():
            return
        st = self.style
        for c in self.texts:
            v = row[c]
            if c in over or not v or len(v) < 4 or " " not in v.strip():
                continue
            if st.delimiter in v or st.quote in v or "\n" in v:
                continue
            cut = v.strip().index(" ")
            over[c] = RawText(v[:cut] + "\r\n" + v[cut + 1 :])
            # The break may have been a typed line break or a space: the reader rejoins the halves
            # (or quarantines them) and must say so; the exact whitespace cannot be recovered.
            defs.append(("CSV2", c, "flag", True))
            return
