"""A written reference of the HighLevel workflows a practice must rebuild by hand, derived from its export.

HighLevel has no API to create workflows (NOTES.md §2.11), so the migration hands the practice's
HighLevel admin a Markdown document, per location: what to pause before the migration, which
pipelines to create, and the recall, reminder, contact-preference and re-booking workflows the
practice's own data suggests (recall types and due counts, how many days before an appointment the
office used to send reminders and by which channel, how patients want to be contacted).

Everything is computed from the *staged* export (``stage_export``) and reported as codes, counts,
intervals and percentages only: never a name, phone, email, note text, birth date or patient id.
``workflow_facts`` gives the numbers as JSON-able data (written next to the document as
``workflows.json``); ``workflow_reference`` renders them. Output is deterministic (sorted keys).
A table the export lacks turns its section into a statement of what is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .mapping.objectmap import PIPELINES, VALUE_LABELS, target_for
from .migrate.run import read_staged
from .storage import Store

__all__ = [
    "workflow_facts",
    "workflow_reference",
    "write_workflow_reference",
    "DEFAULT_RECALL_LEAD_DAYS",
    "REMINDER_WINDOW_DAYS",
]

MANIFEST = "manifest.json"
DEFAULT_RECALL_LEAD_DAYS = 30  # recall outreach before the due date when the data shows no pattern
MIN_OBSERVATIONS = 5  # fewer observed contacts than this: no pattern, use the default
REMINDER_WINDOW_DAYS = 14  # a sent APPT message links to the patient's next appointment within this many days
DUE_WINDOWS = (30, 60, 90)
FOLLOWUP_DAYS = 365
OPEN_RECALL = {"DUE", "OVR", None}  # statuses still waiting for a booking
BOOKED = {"SCH", "CNF", "ARR", "SEAT", "CMP"}
BLANK = "(blank)"

MODE_LABELS = {"PH": "call", "TX": "text", "EM": "email", "ML": "mail", "IP": "in person", "FX": "fax"}
DIRECTION_LABELS = {"S": "sent", "R": "received", "N": "neither"}
# the channel a CONFIRM code implies (Dent-O-Soft LOOKUP CONFIRM, EXPORT_FORMAT.md §2)
CONFIRM_CHANNELS = {
    "UNC": "not confirmed",
    "CNF": "confirmed (channel not recorded)",
    "LMAM": "call (voicemail)",
    "LMFAM": "call (message with family)",
    "NOHOME": "call (no answer)",
    "DISC": "call (number disconnected)",
    "BUSY": "call (busy)",
    "TXTCNF": "text",
    "EMCNF": "email",
}
CONTACT_COLUMNS = ("pref_contact", "txt_ok", "email_ok")


# ---- facts -----------------------------------------------------------------------------------------------
def _rows(staged: Store, table: str, location: str, columns: Iterable[str]) -> list[dict[str, Any]] | None:
    t = read_staged(staged, table, location)
    if t is None:
        return None
    keep = [c for c in columns if c in t.column_names]
    return t.select(keep).to_pylist()


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


# ---- Markdown --------------------------------------------------------------------------------------------
def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.0f}%" if total else "n/a"


def _cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out + [""]


def _dist(counts: Mapping[str, int], labels: Mapping[str, str] | None = None) -> str:
    total = sum(counts.values())
    return (
        ", ".join(f"{(labels or {}).get(k, k)} {v} ({_pct(v, total)})" for k, v in counts.items()) or "none"
    )


def _missing_text(tables: Iterable[str], exported: Iterable[str]) -> str:
    have = set(exported)
    parts = [
        f"{t.upper()} ({'no rows for this location' if t in have else 'not in the export'})"
        for t in sorted(tables)
    ]
    return "Missing from the staged export: " + ", ".join(parts) + "."


def workflow_reference(staged: Store, locations: list[str], *, facts: dict[str, Any] | None = None) -> str:
    """The Markdown reference for the practice's HighLevel admin (no PHI: codes and counts only)."""
    facts = facts if facts is not None else workflow_facts(staged, locations)
    export_date = facts.get("export_date")
    lines = [
        "# HighLevel workflows to rebuild",
        "",
        "HighLevel has no API to create workflows: build these by hand in **Automation > Workflows** of "
        "each sub-account. Everything below is derived from the Dent-O-Soft export"
        + (f" dated {export_date}" if export_date else " (export date unknown)")
        + " and contains only codes, counts, intervals and percentages, no patient data.",
        "",
    ]
    for loc, lf in facts["locations"].items():
        name = f" ({lf['name']})" if lf.get("name") else ""
        lines += [f"## Location {loc}{name}", ""]
        if lf["missing_tables"]:
            lines += [_missing_text(lf["missing_tables"], facts.get("tables_in_export", [])), ""]
        lines += _pause_section()
        lines += _pipeline_section(facts["pipelines"])
        lines += _recall_section(lf["recall"], export_date, facts)
        lines += _appointment_section(lf["appointments"], facts)
        lines += _contact_section(lf["contact"], facts)
        lines += _followup_section(lf["followup"], facts)
        lines += _checklist(loc, lf, facts)
    return "\n".join(lines).rstrip() + "\n"


def _pause_section() -> list[str]:
    return [
        "### 1. Before the migration: pause workflows",
        "",
        "Creating contacts, opportunities and records fires the sub-account's workflows, once per migrated "
        "record. Appointments are written with `toNotify: false` (no automation runs for them), "
        "but contacts, "
        "opportunities, notes and custom-object records have no such switch. Before the migration starts:",
        "",
        "- set every workflow triggered by **Contact Created**, **Opportunity Created**, **Pipeline Stage "
        "Changed**, **Note Added** or a custom-object record event to **Draft**;",
        "- leave them in Draft until the migration report says the location is done and verified;",
        "- the workflows below are built in Draft and published only after the migration.",
        "",
    ]


def _pipeline_section(pipelines: Mapping[str, list[str]]) -> list[str]:
    lines = [
        "### 2. Pipelines to create",
        "",
        "Create these under **Opportunities > Pipelines** if they are not there yet, with exactly these "
        "names and stages in this order (the migration looks them up by name):",
        "",
    ]
    for name, stages in pipelines.items():
        lines.append(f"- Pipeline **{name}**: " + " → ".join(stages))
    return lines + [""]


def _recall_section(rf: Mapping[str, Any], export_date: str | None, facts: Mapping[str, Any]) -> list[str]:
    lines = ["### 3. Recall program", ""]
    if rf["missing"]:
        lines += [_missing_text(rf["missing"], facts.get("tables_in_export", [])), ""]
    if "types" not in rf:
        return lines + [
            "No recall data: build the recall workflow from the practice's own recall policy.",
            "",
        ]
    types = rf["types"]
    lines += [
        "Each patient and recall type becomes one opportunity in pipeline **Recall**; the type is in "
        "`opportunity.recall_type` (Recall Type) and the due date in `opportunity.recall_due_date` "
        "(Recall Due Date).",
        "",
    ]
    head = ["Recall type", "Description", "Default interval", "Procedure codes", "Patients", "Status"]
    if export_date:
        head += [f"Due ≤{n} d" for n in DUE_WINDOWS] + ["Overdue"]
    rows = []
    for code, t in types.items():
        desc = t["description"] or ("(not in RECALLTYP)" if not t["in_recalltyp"] else "")
        row = [
            code,
            desc,
            t["def_interval"],
            ", ".join(t["proc_codes"]),
            t["patients"],
            ", ".join(f"{k} {v}" for k, v in t["status"].items()) or "none",
        ]
        if export_date:
            row += [t[f"due_{n}"] for n in DUE_WINDOWS] + [t["overdue"]]
        rows.append(row)
    lines += _table(head, rows)
    if export_date:
        lines += [
            f"Due counts are patients whose open recall (status DUE/OVR, not disabled) falls due between the "
            f"export date {export_date} and 30/60/90 days later; overdue ones were due before it.",
            "",
        ]
    odd = {c: t["intervals"] for c, t in types.items() if len(t["intervals"]) > 1}
    if odd:
        lines += [
            "More than one interval is in use for: "
            + "; ".join(f"{c}: {_dist(v)}" for c, v in odd.items())
            + ".",
            "",
        ]
    if rf["status_stage"]:
        lines += [
            "Recall status → stage: "
            + ", ".join(f"{s} → {st}" for s, st in rf["status_stage"].items())
            + ". Overdue recalls (OVR) land in stage **Missed**, not **Due**.",
            "",
        ]
    lead = rf["lead"]
    n = lead["days_before"]
    if lead["source"] == "observed":
        basis = (
            f"the office contacted patients a median of {lead['median_days_before_due']} days before the due "
            f"date ({lead['before_due']} recalls with a last contact date)"
        )
    else:
        basis = (
            f"the export shows no pre-due contact pattern ({lead['before_due']} recalls contacted before the "
            f"due date, fewer than {MIN_OBSERVATIONS}), "
            f"so this is the default of {DEFAULT_RECALL_LEAD_DAYS} days"
        )
        if lead["after_due"]:
            basis += (
                f"; {lead['after_due']} recalls were contacted after the due date, a median of "
                f"{lead['median_days_after_due']} days late"
            )
    lines += [f"**Lead time: {n} days before the due date.** Basis: {basis}.", ""]
    if rf["contact_attempts"]:
        attempts = rf["contact_attempts"]
        lines += [
            "Contact attempts recorded on recalls: "
            + _dist(attempts, {k: f"{k} attempt(s):" for k in attempts})
            + (f"; contact results (RECCNT): {_dist(rf['contact_stat'])}" if rf["contact_stat"] else "")
            + ".",
            "",
        ]
    modes = rf["commlog_modes"]
    if modes is None:
        lines += [
            "Recall channels: COMMLOG is missing, so the channels the office used for recall cannot be "
            "derived.",
            "",
        ]
    elif modes:
        lines += ["Recall messages sent (COMMLOG type RECALL): " + _dist(modes, MODE_LABELS) + ".", ""]
    follow = rf["follow_ups"] or 2
    lines += [
        "Workflow **Recall reminder**:",
        "",
        "- Trigger: **Opportunity Changed / Pipeline Stage Changed** to pipeline **Recall**, stage **Due**, "
        f"or a date trigger on custom field `opportunity.recall_due_date` minus {n} days.",
        "- Wait until the due date minus the lead time if the trigger is the stage.",
        "- If/Else on `contact.pref_contact` (Pref Contact) and the consent fields (section 5): "
        "Text → SMS, Email → email, Phone → task for the front desk to call, Mail → task to mail a card, "
        "None → stop.",
        f"- Repeat the reminder {follow} time(s), a week apart, "
        "while the opportunity is still in stage **Due**.",
        "- When the patient books (appointment created): move the opportunity to stage **Scheduled** and "
        "end the workflow; after the visit it moves to **Completed**.",
        "- Optional second workflow for stage **Missed**: a reactivation message and a task to call.",
        "",
    ]
    return lines


def _appointment_section(af: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    lines = ["### 4. Appointment confirmations and reminders", ""]
    if af["missing"]:
        lines += [_missing_text(af["missing"], facts.get("tables_in_export", [])), ""]
    if "confirm" in af:
        total = sum(af["confirm"].values())
        rows = [
            [
                c,
                af["confirm_labels"].get(c, {}).get("description", ""),
                af["confirm_labels"].get(c, {}).get("channel", ""),
                n,
                _pct(n, total),
            ]
            for c, n in af["confirm"].items()
        ]
        lines += [
            f"APPT.CONFIRM over {af['appointments']} appointments (migrated to `opportunity.confirm`, "
            "options = the LOOKUP CONFIRM descriptions):",
            "",
        ]
        lines += _table(["Confirm code", "Description", "Channel it implies", "Appointments", "Share"], rows)
        if "future_open" in af:
            lines += [
                f"{af['future_open']} appointments on or after the export date are still open. They are "
                "written with `toNotify: false`, so HighLevel sends them no reminder "
                "unless a workflow covers "
                "them: keep confirming them from the old system until they have passed.",
                "",
            ]
    cl = af.get("commlog")
    if cl is None:
        lines += [
            "COMMLOG is missing: the reminder timing and the channels the office used cannot be derived. "
            "Use the CONFIRM codes above for the channels and a default timing of 2 days and 1 day before "
            "the appointment.",
            "",
        ]
    else:
        lines += [
            "COMMLOG types: " + _dist(cl["comm_types"]) + ". COMMLOG has one type (APPT) for both "
            "confirmations and reminders, so the two cannot be told apart.",
            "",
        ]
        for direction, modes in cl["appt_by_direction_mode"].items():
            lines.append(f"- APPT messages {direction}: {_dist(modes, MODE_LABELS)}")
        lines.append("")
        if "lead_days" in cl:
            linked = cl["linked"]
            lines += [
                f"Days between a sent APPT message and the same patient's next appointment (within "
                f"{REMINDER_WINDOW_DAYS} days): {linked} linked, {cl['unlinked']} without an appointment in "
                "that window.",
                "",
            ]
            rows = [
                [
                    MODE_LABELS.get(m, m),
                    sum(d.values()),
                    cl["typical_days_by_mode"][m],
                    ", ".join(f"{k} d: {v}" for k, v in sorted(d.items(), key=lambda kv: int(kv[0]))),
                ]
                for m, d in cl["lead_days_by_mode"].items()
            ]
            lines += _table(["Channel", "Messages", "Typical days before", "Distribution"], rows)
            sug = cl["suggested_days_before"]
            if sug:
                lines += [
                    "Workflow **Appointment reminder** (trigger: **Customer Booked Appointment** / "
                    "appointment status, or a date trigger on `opportunity.appointment_date`): send at "
                    + ", ".join(f"{d} day(s)" for d in sorted(sug, reverse=True))
                    + " before the appointment, by the channel of `contact.pref_contact`; a reply "
                    '"C"/confirmation moves the opportunity in pipeline **Appointments** to stage '
                    "**Confirmed**.",
                    "",
                ]
            else:
                lines += [
                    "No reminder timing could be linked to appointments; use 2 days and 1 day before.",
                    "",
                ]
        else:
            lines += ["APPT is missing: reminder timing cannot be linked to appointment dates.", ""]
    return lines


def _contact_section(cf: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    lines = ["### 5. Contact preferences and consent", ""]
    if cf["missing"]:
        return lines + [
            _missing_text(cf["missing"], facts.get("tables_in_export", [])),
            "",
            "Branch workflows on HighLevel's own DND settings only.",
            "",
        ]
    total = cf["patients"]
    labels = VALUE_LABELS[("patient", "pref_contact")]
    rows = []
    for col in CONTACT_COLUMNS:
        t = cf["targets"][col]
        dist = cf[col] if cf["present"][col] else {}
        shown = (
            _dist(dist, labels if col == "pref_contact" else None) if dist else "not filled in this export"
        )
        rows.append(
            [col.upper(), f"`{t['target']}`" + (f" ({t['label']})" if t["label"] else ""), t["type"], shown]
        )
    lines += [f"Over {total} staged patients:", ""]
    lines += _table(["Export column", "HighLevel field", "Type", "Distribution"], rows)
    conf = cf["conflicts"]
    lines += [
        f"Text preferred but TXT_OK = N: {conf['text_preferred_but_txt_ok_n']}; email preferred but "
        f"EMAIL_OK = N: {conf['email_preferred_but_email_ok_n']}.",
        "",
        "Every message step branches on these fields: send SMS only when `contact.txt_ok` is checked, email "
        "only when `contact.email_ok` is checked, nothing when `contact.pref_contact` is None. The migration "
        "does not set HighLevel's DND: set DND for contacts with Pref Contact = None (smart list + bulk "
        "action), and always respect DND and STOP replies; a workflow never overrides them.",
        "",
    ]
    return lines


def _followup_section(ff: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    lines = ["### 6. Broken / no-show and cancellation follow-up", ""]
    if ff["missing"]:
        return lines + [_missing_text(ff["missing"], facts.get("tables_in_export", [])), ""]
    if ff.get("no_export_date"):
        return lines + ["The export date is unknown, so the last 12 months cannot be counted.", ""]
    lines += [
        f"From {ff['window_start']} to {ff['window_end']}: {ff['broken']} broken / no-show (BRK) and "
        f"{ff['cancelled']} cancelled (CAN) appointments, {ff['patients']} patients; "
        f"{ff['rebooked']} of them "
        f"booked again afterwards, {ff['not_rebooked']} did not.",
        "",
        "Workflow **Re-book broken appointment**: trigger **Pipeline Stage Changed** to pipeline "
        "**Appointments**, stage **Broken / No-show** (and a second one for **Cancelled**); wait 1 day; "
        "message by `contact.pref_contact` with a booking link; after 3 days without a booking, a task for "
        "the front desk to call; stop when a new appointment is booked.",
        "",
    ]
    return lines


def _checklist(loc: str, lf: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    lead = lf["recall"].get("lead", {}).get("days_before", DEFAULT_RECALL_LEAD_DAYS)
    items = [
        "Set contact-, opportunity-, note- and record-triggered workflows to Draft before the migration",
        "Pipelines "
        + " and ".join(f"**{p}**" for p in facts["pipelines"])
        + " exist with the stages of section 2",
        "Recall reminder workflow built "
        f"(trigger stage **Due** or `opportunity.recall_due_date` minus {lead} days)",
        "Appointment reminder workflow built with the timings of section 4",
        "Workflows branch on `contact.pref_contact`, `contact.txt_ok`, `contact.email_ok`; DND set for "
        "Pref Contact = None",
        "Re-booking workflow on stage **Broken / No-show** (and **Cancelled**) built",
        "Open future appointments still confirmed from the old system until they have passed",
        "After the migration is verified: publish the new workflows and re-enable the paused ones",
    ]
    return [f"### 7. Checklist for {loc}", ""] + [f"- [ ] {i}" for i in items] + [""]


def write_workflow_reference(
    staged: Store, out: Store, locations: list[str], key: str = "workflows.md"
) -> str:
    """Write the Markdown reference at ``key`` and its facts as ``workflows.json`` next to it.

    Returns ``key``.
    """
    facts = workflow_facts(staged, locations)
    out.write_bytes(key, workflow_reference(staged, locations, facts=facts).encode())
    folder = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    out.write_bytes(folder + "workflows.json", (json.dumps(facts, indent=2, sort_keys=True) + "\n").encode())
    return key
