"""File-level choices of one export: names, headers, encodings and the per-file defects
(ENC2, CSV3, whole-file DT2/CD1 in softdent_like, ZIP1, ID1), decided once from the seed."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import TABLES
from ..sources.profile import Profile, load_profile
from .formats import FileStyle
from .params import GenerateParams, Plan
from .rng import sub_rng

__all__ = ["FileLayout", "Layout", "decide_layout"]

_BOM_CANDIDATES = ("commlog", "patref", "recall", "clinnote", "document", "patudf")


@dataclass(slots=True)
class FileLayout:
    table: str
    file_name: str | None  # None: no file in this format (APPTPROC in softdent_like)
    headers: dict[str, str]
    style: FileStyle


@dataclass(slots=True)
class Layout:
    profile: Profile
    files: dict[str, FileLayout]
    file_defects: list[dict[str, object]]  # DefectLog.add kwargs
    ledger_columns: tuple[str, ...]
    wide: tuple[str, str, str, int] | None


def decide_layout(p: GenerateParams, pl: Plan) -> Layout:
    profile = load_profile("softdent_like" if p.format == "softdent_like" else "reference")
    rng = sub_rng(p.seed, "layout")
    sd = p.format == "softdent_like"
    mess = pl.mess_factor > 0
    files: dict[str, FileLayout] = {}
    fdef: list[dict[str, object]] = []
    wp = profile.spec("appt").wide_procedures
    wide = (wp.code, wp.tooth, wp.surf, wp.count) if wp is not None else None
    la = profile.ledger_amount
    ledger_cols: tuple[str, ...] = ()
    if p.ledger_sign == "drcr":
        ledger_cols = (la.drcr_column,)
    elif p.ledger_sign == "split_columns":
        ledger_cols = tuple(la.columns)
    bom: list[str] = []
    utf16: list[str] = []
    if mess:
        cands = list(_BOM_CANDIDATES)
        rng.shuffle(cands)
        bom = cands[: (2 if pl.mess_factor > 1 else 1)]
        utf16 = cands[2:3] if pl.mess_factor > 1 else []
    for t in TABLES:
        stem = profile.file_stem(t)
        name: str | None = f"{stem}.CSV"
        if t == "apptproc" and wide is not None:
            name = None
        headers = {c: profile.source_column(t, c) for c in TABLES[t].column_names}
        st = FileStyle()
        if sd:
            st.quote = "~"
            st.banner = f"Dent-O-Soft Export 2.3 - {p.export_date:%m/%d/%Y} 10:22"
            st.trailer = True
            st.two_digit_year = True
            st.codes_without_d = True
            st.ragged = t == "ledger"
        if t in bom:
            st.encoding = "utf-8-sig"
        elif t in utf16:
            st.encoding = "utf-16"
        if mess and t == "patient":
            st.zip_strip = True
            st.pad_id_cols = frozenset({"pat_id", "guar_id"})
        if mess and pl.mess_factor > 1 and t == "appt":
            st.pad_id_cols = frozenset({"pat_id"})
        files[t] = FileLayout(t, name, headers, st)
        if name is None or not mess:
            continue

        def add(
            defect: str,
            col: str | None,
            expect: str = "repair",
            name: str = name,
            t: str = t,
            headers: dict[str, str] = headers,
        ) -> None:
            fdef.append(
                dict(
                    defect_id=defect,
                    file=name,
                    table=t,
                    record=None,
                    line=None,
                    key=None,
                    column=headers.get(col, col.upper()) if col else None,
                    canonical_column=col,
                    expect=expect,
                    destroyed=False,
                    scope_file=True,
                )
            )

        if st.encoding != "cp1252":
            add("ENC2", None)
        if sd:
            add("CSV3", None)
            for c in TABLES[t].columns:
                if c.kind in ("date", "dob", "datetime"):
                    add("DT2", c.name)
                if c.name == "proc_code" and c.kind == "code":
                    add("CD1", c.name)
            if t == "appt" and wide is not None:
                fdef.append(
                    dict(
                        defect_id="CD1",
                        file=name,
                        table=t,
                        record=None,
                        line=None,
                        key=None,
                        column=wide[0].format(n=1),
                        canonical_column="proc_code",
                        expect="repair",
                        destroyed=False,
                        scope_file=True,
                    )
                )
        if st.zip_strip:
            add("ZIP1", "zip")
        for c in sorted(st.pad_id_cols):
            add("ID1", c)
    return Layout(profile, files, fdef, ledger_cols, wide)
