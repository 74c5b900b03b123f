"""Render the workflow facts as the Markdown reference for the practice's HighLevel admin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..mapping.objectmap import VALUE_LABELS
from ..storage import Store
from ._common import (
    CONTACT_COLUMNS,
    DEFAULT_RECALL_LEAD_DAYS,
    DUE_WINDOWS,
    MIN_OBSERVATIONS,
    MODE_LABELS,
    REMINDER_WINDOW_DAYS,
)
from .facts import workflow_facts

__all__ = ["workflow_reference"]


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
