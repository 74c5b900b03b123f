"""Constants shared by the workflow facts and their Markdown rendering."""

from __future__ import annotations

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
