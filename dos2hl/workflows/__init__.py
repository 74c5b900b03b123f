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

import json

from ..storage import Store
from ._common import DEFAULT_RECALL_LEAD_DAYS, REMINDER_WINDOW_DAYS
from .facts import workflow_facts
from .render import workflow_reference

__all__ = [
    "workflow_facts",
    "workflow_reference",
    "write_workflow_reference",
    "DEFAULT_RECALL_LEAD_DAYS",
    "REMINDER_WINDOW_DAYS",
]


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
