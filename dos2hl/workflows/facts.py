"""Compute the workflow facts (codes, counts, intervals; no PHI) from the staged export."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ..mapping.objectmap import PIPELINES, VALUE_LABELS, target_for
from ..planning.plan import read_staged
from ..storage import Store
from ._common import (
    BLANK,
    BOOKED,
    CONFIRM_CHANNELS,
    CONTACT_COLUMNS,
    DEFAULT_RECALL_LEAD_DAYS,
    DIRECTION_LABELS,
    DUE_WINDOWS,
    FOLLOWUP_DAYS,
    MANIFEST,
    MIN_OBSERVATIONS,
    OPEN_RECALL,
    REMINDER_WINDOW_DAYS,
)

__all__ = ["workflow_facts"]


def _rows(staged: Store, table: str, location: str, columns: Iterable[str]) -> list[dict[str, Any]] | None:
    t = read_staged(staged, table, location)
    if t is None:
        return None
    keep = [c for c in columns if c in t.column_names]
    rows: list[dict[str, Any]] = t.select(keep).to_pylist()
    return rows


def _manifest(staged: Store) -> dict[str, Any]:
    return json.loads(staged.read_bytes(MANIFEST)) if staged.exists(MANIFEST) else {}


def _code(v: Any) -> str:
    return BLANK if v is None or str(v).strip() == "" else str(v).strip()


def _counts(values: Iterable[Any]) -> dict[str, int]:
    return dict(sorted(Counter(_code(v) for v in values).items()))


def _yn(v: Any) -> str:
    return BLANK if v is None else ("Y" if v else "N")


def _median(xs: list[int]) -> int | None:
    return int(round(statistics.median(xs))) if xs else None


def _day_counts(xs: Iterable[int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(xs).items())}


def _missing(available: Mapping[str, bool], tables: Iterable[str]) -> list[str]:
    return sorted(t for t in tables if not available[t])


def workflow_facts(staged: Store, locations: list[str]) -> dict[str, Any]:
    """JSON-able facts per location (codes, counts, intervals; no PHI) for the workflow reference."""
    manifest = _manifest(staged)
    raw_date = manifest.get("export_date")
    export_date = dt.date.fromisoformat(raw_date) if raw_date else None
    exported = sorted(t for t, meta in (manifest.get("tables") or {}).items() if (meta or {}).get("rows", 1))
    recalltyp = _rows(
        staged, "recalltyp", "_all", ("recall_type", "description", "def_interval", "proc_codes")
    )
    lookup = _rows(staged, "lookup", "_all", ("category", "code", "description")) or []
    loc_rows = _rows(staged, "location", "_all", ("loc_id", "loc_name")) or []
    loc_names = {r["loc_id"]: r["loc_name"] for r in loc_rows if r.get("loc_id")}
    confirm_desc = {
        r["code"]: r["description"] for r in lookup if r.get("category") == "CONFIRM" and r.get("code")
    }
    out: dict[str, Any] = {
        "version": 1,
        "export_date": export_date.isoformat() if export_date else None,
        "tables_in_export": exported,
        "pipelines": {p.name: list(p.stages) for p in PIPELINES.values()},
        "locations": {},
    }
    for loc in sorted(set(locations)):
        recall = _rows(
            staged,
            "recall",
            loc,
            (
                "pat_id",
                "recall_type",
                "interval",
                "due_dt",
                "status",
                "contact_stat",
                "last_contact_dt",
                "contact_attempts",
                "disabled_flg",
                "disable_until",
            ),
        )
        appt = _rows(staged, "appt", loc, ("pat_id", "appt_date", "status", "confirm"))
        commlog = _rows(staged, "commlog", loc, ("pat_id", "comm_dttm", "mode", "direction", "comm_type"))
        patient = _rows(staged, "patient", loc, ("pat_id", *CONTACT_COLUMNS))
        available = {
            "recall": recall is not None,
            "recalltyp": recalltyp is not None,
            "appt": appt is not None,
            "commlog": commlog is not None,
            "patient": patient is not None,
        }
        out["locations"][loc] = {
            "name": loc_names.get(loc),
            "missing_tables": _missing(available, available),
            "recall": _recall_facts(recall, recalltyp, commlog, export_date, available),
            "appointments": _appointment_facts(appt, commlog, confirm_desc, export_date, available),
            "contact": _contact_facts(patient),
            "followup": _followup_facts(appt, export_date),
        }
    return out


def _recall_facts(
    recall: list[dict[str, Any]] | None,
    recalltyp: list[dict[str, Any]] | None,
    commlog: list[dict[str, Any]] | None,
    export_date: dt.date | None,
    available: Mapping[str, bool],
) -> dict[str, Any]:
    facts: dict[str, Any] = {"missing": _missing(available, ("recall", "recalltyp"))}
    if recall is None and recalltyp is None:
        return facts
    rows = recall or []
    types: dict[str, dict[str, Any]] = {}
    for t in recalltyp or []:
        code = _code(t.get("recall_type"))
        types[code] = {
            "description": t.get("description") or "",
            "def_interval": t.get("def_interval") or "",
            "proc_codes": sorted(c.strip() for c in str(t.get("proc_codes") or "").split(",") if c.strip()),
            "in_recalltyp": True,
        }
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_type[_code(r.get("recall_type"))].append(r)
    for code in by_type:
        types.setdefault(
            code, {"description": "", "def_interval": "", "proc_codes": [], "in_recalltyp": False}
        )
    for code, info in types.items():
        rs = by_type.get(code, [])
        info["patients"] = len({r["pat_id"] for r in rs if r.get("pat_id") is not None})
        info["rows"] = len(rs)
        info["intervals"] = _counts(r.get("interval") for r in rs)
        info["status"] = _counts(r.get("status") for r in rs)
        open_rows = [r for r in rs if _open(r, export_date)]
        if export_date is not None:
            for n in DUE_WINDOWS:
                end = export_date + dt.timedelta(days=n)
                info[f"due_{n}"] = len(
                    {r["pat_id"] for r in open_rows if r.get("due_dt") and export_date <= r["due_dt"] <= end}
                )
            info["overdue"] = len(
                {r["pat_id"] for r in open_rows if r.get("due_dt") and r["due_dt"] < export_date}
            )
    facts["types"] = dict(sorted(types.items()))
    labels = VALUE_LABELS[("recall", "status")]
    facts["status_stage"] = {
        s: labels.get(s, "(unmapped)") for s in sorted({_code(r.get("status")) for r in rows})
    }
    # lead time: how many days before the due date the office contacted patients (RECALL.LAST_CONTACT_DT)
    before = [
        (r["due_dt"] - r["last_contact_dt"]).days
        for r in rows
        if r.get("due_dt") and r.get("last_contact_dt") and r["last_contact_dt"] <= r["due_dt"]
    ]
    after = [
        (r["last_contact_dt"] - r["due_dt"]).days
        for r in rows
        if r.get("due_dt") and r.get("last_contact_dt") and r["last_contact_dt"] > r["due_dt"]
    ]
    observed = len(before) >= MIN_OBSERVATIONS
    attempts = [int(r["contact_attempts"]) for r in rows if r.get("contact_attempts")]
    facts["lead"] = {
        "contacted_rows": len(before) + len(after),
        "before_due": len(before),
        "median_days_before_due": _median(before),
        "after_due": len(after),
        "median_days_after_due": _median(after),
        "days_before": _median(before) if observed else DEFAULT_RECALL_LEAD_DAYS,
        "source": "observed" if observed else "default",
    }
    facts["contact_attempts"] = _day_counts(attempts)
    facts["follow_ups"] = max(1, _median(attempts) or 0) if attempts else None
    facts["contact_stat"] = _counts(r.get("contact_stat") for r in rows if r.get("contact_stat"))
    facts["commlog_modes"] = (
        None
        if commlog is None
        else _counts(
            c.get("mode") for c in commlog if c.get("comm_type") == "RECALL" and c.get("direction") == "S"
        )
    )
    return facts


def _open(r: Mapping[str, Any], export_date: dt.date | None) -> bool:
    if r.get("status") not in OPEN_RECALL or r.get("disabled_flg"):
        return False
    until = r.get("disable_until")
    return not (until and export_date and until > export_date)


def _appointment_facts(
    appt: list[dict[str, Any]] | None,
    commlog: list[dict[str, Any]] | None,
    confirm_desc: Mapping[str, str],
    export_date: dt.date | None,
    available: Mapping[str, bool],
) -> dict[str, Any]:
    facts: dict[str, Any] = {"missing": _missing(available, ("appt", "commlog"))}
    if appt is not None:
        facts["appointments"] = len(appt)
        facts["status"] = _counts(a.get("status") for a in appt)
        confirm = _counts(a.get("confirm") for a in appt)
        facts["confirm"] = confirm
        facts["confirm_labels"] = {
            c: {"description": confirm_desc.get(c, ""), "channel": CONFIRM_CHANNELS.get(c, "unknown")}
            for c in confirm
            if c != BLANK
        }
        if export_date is not None:
            facts["future_open"] = sum(
                1
                for a in appt
                if a.get("appt_date")
                and a["appt_date"] >= export_date
                and a.get("status") in ("SCH", "CNF", "PLN")
            )
    if commlog is None:
        return facts
    cl: dict[str, Any] = {"comm_types": _counts(c.get("comm_type") for c in commlog)}
    appt_msgs = [c for c in commlog if c.get("comm_type") == "APPT"]
    cl["appt_by_direction_mode"] = {
        DIRECTION_LABELS.get(d, d): _counts(
            c.get("mode") for c in appt_msgs if _code(c.get("direction")) == d
        )
        for d in sorted({_code(c.get("direction")) for c in appt_msgs})
    }
    if appt is not None:
        dates: dict[Any, list[dt.date]] = defaultdict(list)
        for a in appt:
            if a.get("pat_id") and a.get("appt_date"):
                dates[a["pat_id"]].append(a["appt_date"])
        leads: list[int] = []
        by_mode: dict[str, list[int]] = defaultdict(list)
        unlinked = 0
        for c in appt_msgs:
            if c.get("direction") != "S" or not c.get("comm_dttm"):
                continue
            day = c["comm_dttm"].date()
            gaps = [
                (d - day).days
                for d in dates.get(c.get("pat_id"), ())
                if 0 <= (d - day).days <= REMINDER_WINDOW_DAYS
            ]
            if not gaps:
                unlinked += 1
                continue
            leads.append(min(gaps))
            by_mode[_code(c.get("mode"))].append(min(gaps))
        cl["linked"] = len(leads)
        cl["unlinked"] = unlinked
        cl["lead_days"] = _day_counts(leads)
        cl["lead_days_by_mode"] = {m: _day_counts(v) for m, v in sorted(by_mode.items())}
        cl["typical_days_by_mode"] = {m: _typical(v) for m, v in sorted(by_mode.items())}
        common = Counter(leads)
        cl["suggested_days_before"] = sorted(d for d, n in common.items() if n >= 0.1 * len(leads))
    facts["commlog"] = cl
    return facts


def _typical(xs: list[int]) -> int:
    """The most frequent value (the smaller one on a tie)."""
    return min(Counter(xs).items(), key=lambda kv: (-kv[1], kv[0]))[0]


def _contact_facts(patient: list[dict[str, Any]] | None) -> dict[str, Any]:
    if patient is None:
        return {"missing": ["patient"]}
    facts: dict[str, Any] = {"missing": [], "patients": len(patient)}
    facts["present"] = {c: any(p.get(c) is not None for p in patient) for c in CONTACT_COLUMNS}
    facts["pref_contact"] = _counts(p.get("pref_contact") for p in patient)
    facts["txt_ok"] = dict(sorted(Counter(_yn(p.get("txt_ok")) for p in patient).items()))
    facts["email_ok"] = dict(sorted(Counter(_yn(p.get("email_ok")) for p in patient).items()))
    facts["conflicts"] = {
        "text_preferred_but_txt_ok_n": sum(
            1 for p in patient if p.get("pref_contact") == "T" and p.get("txt_ok") is False
        ),
        "email_preferred_but_email_ok_n": sum(
            1 for p in patient if p.get("pref_contact") == "E" and p.get("email_ok") is False
        ),
    }
    facts["targets"] = {}
    for c in CONTACT_COLUMNS:
        t = target_for("patient", c)
        facts["targets"][c] = {"target": t.target, "type": t.type, "label": t.label}
    return facts


def _followup_facts(appt: list[dict[str, Any]] | None, export_date: dt.date | None) -> dict[str, Any]:
    if appt is None:
        return {"missing": ["appt"]}
    if export_date is None:
        return {"missing": [], "no_export_date": True}
    start = export_date - dt.timedelta(days=FOLLOWUP_DAYS)
    lost = [
        a
        for a in appt
        if a.get("status") in ("BRK", "CAN") and a.get("appt_date") and start <= a["appt_date"] <= export_date
    ]
    later: dict[Any, dt.date] = {}
    for a in appt:
        if a.get("pat_id") and a.get("appt_date") and a.get("status") in BOOKED:
            later[a["pat_id"]] = max(later.get(a["pat_id"], a["appt_date"]), a["appt_date"])
    pats: dict[Any, dt.date] = {}
    for a in lost:
        if a.get("pat_id"):
            pats[a["pat_id"]] = max(pats.get(a["pat_id"], a["appt_date"]), a["appt_date"])
    rebooked = sum(1 for p, d in pats.items() if later.get(p) and later[p] > d)
    return {
        "missing": [],
        "window_start": start.isoformat(),
        "window_end": export_date.isoformat(),
        "broken": sum(1 for a in lost if a["status"] == "BRK"),
        "cancelled": sum(1 for a in lost if a["status"] == "CAN"),
        "patients": len(pats),
        "rebooked": rebooked,
        "not_rebooked": len(pats) - rebooked,
    }
