"""Rules that look at more than one cell: names (NM1/NM2), ledger sign conventions, lookup codes,
location area codes for 7-digit phones, and wide appointment procedure columns.

``RowContext`` remembers what the reference tables said (LOOKUP codes per category, each
location's area code) as they stream past, since the reader reads parents before children.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from ..model import TABLES, Column
from .names import split_nickname, split_suffix, title_case_name
from .profile import Profile, WideProcedures
from .staged import FINDINGS_SCHEMA, findings_table, staged_schema
from .values import ParseContext, Parsed, parse_column

__all__ = ["CodeMap", "LOC_COLUMN", "RowContext", "apply_row_rules", "derive_wide_procedures"]

# canonical column -> [(source column, code per cell, action per cell), ...]
CodeMap = dict[str, list[tuple[str, pa.Array, pa.Array]]]

NAME_COLUMNS = {
    "patient": ("lname", "fname", "mi", "pref_name"),
    "provider": ("lname", "fname", "mi"),
    "refsrc": ("lname", "fname"),
}
LOC_COLUMN = {"patient": "loc_id", "provider": "home_loc_id", "appt": "loc_id", "ledger": "loc_id"}
_AREA_RE = re.compile(r"^\+1(\d{3})")


class RowContext:
    """Cross-table knowledge gathered while reading parents first."""

    def __init__(self) -> None:
        self.lookups: dict[str, set[str]] = {}
        self.area_by_loc: dict[str, str] = {}
        self.loc_codes: set[str] = set()  # the location file's codes, when the export has one

    def observe(self, table: str, data: pa.Table) -> None:
        if table == "lookup" and data.num_rows:
            for cat, code in zip(data["category"].to_pylist(), data["code"].to_pylist(), strict=True):
                if cat and code:
                    self.lookups.setdefault(cat, set()).add(code)
        elif table == "location" and data.num_rows:
            self.loc_codes.update(c for c in data["loc_id"].to_pylist() if c)
            for loc, phone in zip(data["loc_id"].to_pylist(), data["phone"].to_pylist(), strict=True):
                m = _AREA_RE.match(phone or "")
                if loc and m:
                    self.area_by_loc[loc] = m.group(1)

    def default_area_code(self) -> str | None:
        areas = set(self.area_by_loc.values())
        return areas.pop() if len(areas) == 1 else None

    def extra_columns(self, table: str, profile: Profile) -> list[str]:
        """Source columns a rule consumes although no canonical column has their name."""
        if table != "ledger":
            return []
        la = profile.ledger_amount
        return (
            [la.drcr_column] if la.mode == "drcr" else list(la.columns) if la.mode == "split_columns" else []
        )

    def parse_phones(self, table: str, rows: pa.RecordBatch, raw: pa.Array, col: Column,
                     ctx: ParseContext, profile: Profile) -> Parsed:
        """Parse a phone column, giving 7-digit numbers the area code of the row's location."""
        loc_col = LOC_COLUMN.get(table)
        names = {n.upper(): n for n in rows.schema.names}
        src_loc = names.get(profile.source_column(table, loc_col).upper()) if loc_col else None
        areas = set(self.area_by_loc.values())
        if src_loc is None or len(areas) <= 1:
            return parse_column(raw, col, ctx)
        locs = pc.utf8_upper(pc.utf8_trim_whitespace(rows.column(src_loc)))
        out_vals: list[pa.Array] = []
        out_codes: list[pa.Array] = []
        out_actions: list[pa.Array] = []
        order: list[pa.Array] = []
        idx = pa.array(range(len(raw)), pa.int64())
        for loc in pc.unique(locs).to_pylist():
            mask = pc.equal(locs, loc)
            sub = dataclasses.replace(ctx, default_area_code=self.area_by_loc.get(loc))
            p = parse_column(raw.filter(mask), col, sub)
            out_vals.append(p.values)
            out_codes.append(p.codes)
            out_actions.append(p.actions)
            order.append(idx.filter(mask))
        perm = pc.sort_indices(pa.concat_arrays(order))
        return Parsed(
            pc.take(pa.concat_arrays(out_vals), perm),
            pc.take(pa.concat_arrays(out_codes), perm),
            pc.take(pa.concat_arrays(out_actions), perm),
        )


def _merge_codes(codes: CodeMap, canon: str, src: str, mask: pa.Array, code: str, action: str) -> None:
    """Record ``code``/``action`` on the cells of ``mask`` (a cell may carry several codes)."""
    new_c = pc.if_else(mask, pa.scalar(code), pa.scalar(None, pa.string()))
    new_a = pc.if_else(mask, pa.scalar(action), pa.scalar(None, pa.string()))
    codes.setdefault(canon, []).append((src, new_c, new_a))


def _apply_python(arr: pa.Array, mask: pa.Array, fn: Callable[[str], str]) -> pa.Array:
    """Apply a Python function to the masked cells only (rare cells; the rest stay vectorised)."""
    vals = arr.to_pylist()
    for i in pc.indices_nonzero(mask).to_pylist():
        if vals[i] is not None:
            vals[i] = fn(vals[i])
    return pa.array(vals, pa.string())


def _names(table: str, rows: pa.RecordBatch, values: dict[str, pa.Array],
           codes: CodeMap, profile: Profile) -> None:
    cols = NAME_COLUMNS.get(table)
    if not cols:
        return
    src = {c: profile.source_column(table, c) for c in ("lname", "fname", "suffix", "pref_name")}
    if table == "patient":
        # NM2: "GARCIA JR" -> lname GARCIA + suffix JR; 'ROBERT "BOB"' -> fname ROBERT + pref_name BOB.
        ln = values["lname"]
        m = pc.fill_null(pc.and_(pc.match_substring_regex(
            ln, r"(?i)[\s,]+(JR|SR|II|III|IV|V|MD|DDS|PHD)\.?$"), pc.is_null(values["suffix"])), False)
        if pc.any(m).as_py():
            pairs = [split_suffix(v) if (v is not None and k) else (v, None)
                     for v, k in zip(ln.to_pylist(), m.to_pylist(), strict=True)]
            values["lname"] = pa.array([p[0] for p in pairs], pa.string())
            values["suffix"] = pc.coalesce(values["suffix"], pa.array([p[1] for p in pairs], pa.string()))
            _merge_codes(codes, "lname", src["lname"], m, "NM2", "repaired")
        fn = values["fname"]
        m = pc.fill_null(pc.and_(pc.match_substring_regex(fn, r"[\"'(][^\"')]+[\"')]\s*$"),
                                 pc.is_null(values["pref_name"])), False)
        if pc.any(m).as_py():
            pairs = [split_nickname(v) if (v is not None and k) else (v, None)
                     for v, k in zip(fn.to_pylist(), m.to_pylist(), strict=True)]
            values["fname"] = pa.array([p[0] for p in pairs], pa.string())
            values["pref_name"] = pc.coalesce(values["pref_name"],
                                              pa.array([p[1] for p in pairs], pa.string()))
            _merge_codes(codes, "fname", src["fname"], m, "NM2", "repaired")
        if "suffix" in values:
            values["suffix"] = pc.utf8_upper(pc.replace_substring(values["suffix"], ".", ""))
    for c in cols:
        arr = values[c]
        # NM1: ALL-CAPS names (two letters or more) are title-cased.
        m = pc.fill_null(pc.and_(pc.utf8_is_upper(arr), pc.greater(pc.utf8_length(arr), 1)), False)
        if pc.any(m).as_py():
            values[c] = _apply_python(arr, m, title_case_name)
            _merge_codes(codes, c, profile.source_column(table, c), m, "NM1", "repaired")


def _dst_gap(dates: pa.Array, times: pa.Array) -> pa.Array:
    """True where a local time falls in the US spring-forward gap (02:00-02:59, 2nd Sunday of March)."""
    month = pc.month(dates)
    day = pc.day(dates)
    sunday = pc.equal(pc.day_of_week(dates), 6)  # Monday = 0
    second_sunday = pc.and_(
        pc.and_(pc.equal(month, 3), sunday), pc.and_(pc.greater_equal(day, 8), pc.less_equal(day, 14))
    )
    hour = pc.divide(pc.cast(pc.cast(times, pa.int32()), pa.int64()), 3600)
    return pc.fill_null(pc.and_(second_sunday, pc.equal(hour, 2)), False)


def _ledger_amount(rows: pa.RecordBatch, values: dict[str, pa.Array], profile: Profile,
                   ctx: ParseContext) -> None:
    la = profile.ledger_amount
    names = {n.upper(): n for n in rows.schema.names}
    money = TABLES["ledger"].by_name["amount"]
    if la.mode == "drcr" and la.drcr_column.upper() in names:
        flag = pc.utf8_upper(pc.utf8_trim_whitespace(rows.column(names[la.drcr_column.upper()])))
        amt = pc.abs(values["amount"])
        values["amount"] = pc.if_else(pc.equal(flag, "C"), pc.negate(amt), amt)
    elif la.mode == "split_columns":
        parts = [parse_column(rows.column(names[c.upper()]), money, ctx).values
                 for c in la.columns if c.upper() in names]
        if parts:
            total = parts[0]
            for p in parts[1:]:
                total = pc.add(pc.fill_null(total, 0), pc.fill_null(p, 0))
            any_part = pc.is_valid(parts[0])
            for p in parts[1:]:
                any_part = pc.or_(any_part, pc.is_valid(p))
            credit = pc.if_else(any_part, pc.negate(pc.abs(total)), pa.scalar(None, total.type))
            values["amount"] = pc.coalesce(values["amount"], credit.cast(values["amount"].type))


def _lookups(table: str, values: dict[str, pa.Array], codes: CodeMap,
             rowctx: RowContext, profile: Profile) -> None:
    for col in TABLES[table].columns:
        if col.kind != "lookup" or not col.lookup or col.lookup not in rowctx.lookups:
            continue
        arr = values[col.name]
        known = pa.array(sorted(rowctx.lookups[col.lookup]), pa.string())
        m = pc.fill_null(pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, known))), False)
        if pc.any(m).as_py():
            _merge_codes(codes, col.name, profile.source_column(table, col.name), m, "LKP1", "flagged")


def apply_row_rules(table: str, rows: pa.RecordBatch, values: dict[str, pa.Array],
                    codes: CodeMap, rowctx: RowContext,
                    profile: Profile, ctx: ParseContext) -> None:
    """Apply every cross-cell rule in place (values and codes)."""
    _names(table, rows, values, codes, profile)
    if table == "appt":
        # PAT_ID 0 (or blank) marks a "new patient" placeholder: no patient yet (DUP2).
        zero = pc.fill_null(pc.equal(values["pat_id"], 0), False)
        if pc.any(zero).as_py():
            values["pat_id"] = pc.if_else(zero, pa.scalar(None, pa.int64()), values["pat_id"])
        placeholder = pc.is_null(values["pat_id"])
        if pc.any(placeholder).as_py():
            _merge_codes(codes, "pat_id", profile.source_column(table, "pat_id"), placeholder, "DUP2",
                         "flagged")
    if table == "ledger":
        _ledger_amount(rows, values, profile, ctx)
        # DT4: a transaction dated after the export (a post-dated check) is kept but flagged.
        future = pc.fill_null(pc.greater(values["trans_dt"], pa.scalar(ctx.export_date, pa.date32())), False)
        if pc.any(future).as_py():
            _merge_codes(codes, "trans_dt", profile.source_column(table, "trans_dt"), future, "DT4",
                         "flagged")
    if table == "appt":
        gap = _dst_gap(values["appt_date"], values["appt_time"])
        if pc.any(gap).as_py():
            _merge_codes(codes, "appt_time", profile.source_column(table, "appt_time"), gap, "DT4", "flagged")
    _lookups(table, values, codes, rowctx, profile)


def derive_wide_procedures(rows: pa.RecordBatch, appt: pa.Table, wide: WideProcedures, ctx: ParseContext,
                           file: str, keys_for: Callable[[pa.Table, tuple[str, ...]], pa.Array]
                           ) -> tuple[pa.Table, pa.Table]:
    """APPT rows with PROC1..n / TOOTH1..n / SURF1..n -> canonical APPTPROC rows (seq = n)."""
    names = {n.upper(): n for n in rows.schema.names}
    t = TABLES["apptproc"]
    schema = staged_schema("apptproc")
    # ``appt`` is aligned with ``rows`` (before quarantine); rows of a quarantined appointment have
    # no appt_id and derive nothing: they stay in the quarantined record.
    parts: list[pa.Table] = []
    finds: list[pa.Table] = []
    for i in range(1, wide.count + 1):
        code_src = names.get(wide.code.format(n=i).upper())
        if code_src is None:
            continue
        code = parse_column(rows.column(code_src), t.by_name["proc_code"], ctx)
        present = pc.and_(pc.is_valid(code.values), pc.is_valid(appt["appt_id"]))
        if not pc.any(present).as_py():
            continue
        cols: dict[str, pa.Array] = {}
        for canon, pattern in (("tooth", wide.tooth), ("surf", wide.surf)):
            src = names.get(pattern.format(n=i).upper())
            cols[canon] = (parse_column(rows.column(src), t.by_name[canon], ctx).values if src
                           else pa.nulls(rows.num_rows, pa.string()))
        n = rows.num_rows
        part = pa.table({
            "appt_id": appt["appt_id"], "seq": pa.array([i] * n, pa.int64()),
            "proc_code": code.values, "tooth": cols["tooth"], "surf": cols["surf"],
            "fee": pa.nulls(n, schema.field("fee").type), "txitem_id": pa.nulls(n, pa.int64()),
            "trans_id": pa.nulls(n, pa.int64()),
            "_file": appt["_file"], "_record": appt["_record"], "_line": appt["_line"],
            "_repaired": pa.repeat(False, n),
        }, schema=schema).filter(present)
        parts.append(part)
        if code.codes.null_count < n:
            finds.append(findings_table(file, "apptproc", code_src, part["_record"], part["_line"],
                                        keys_for(part, t.pk), code.codes.filter(present),
                                        code.actions.filter(present)))
    data = pa.concat_tables(parts) if parts else schema.empty_table()
    fd = pa.concat_tables(finds) if finds else FINDINGS_SCHEMA.empty_table()
    return data, fd
