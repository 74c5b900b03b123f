"""Shared pieces of the value parsers: the parse context, null tokens, defect codes and their reasons.

Kept apart so that the scalar parsers (``_scalar``) and the vectorised kernels (``_vector``) use one
definition of "blank", one set of sentinels and one list of codes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ParseContext", "Result", "REASONS", "NULL_TOKENS", "WS", "MASK_CHARS", "REPAIRED", "NULLED",
    "FLAGGED", "clean_text", "is_mask",
]

REPAIRED = "repaired"
NULLED = "nulled"
FLAGGED = "flagged"

#: (value, defect code or None, action or None): what every scalar parser returns.
Result = tuple[Any, str | None, str | None]


@dataclass(frozen=True)
class ParseContext:
    """Export-wide settings the value parsers need (from the profile and the export itself).

    Attributes:
        date_order: order of day and month in slash dates (``MDY`` = ``MM/DD/YYYY``).
        decimal_comma: money uses ``,`` as the decimal mark (``1.234,50``; Greek locale).
        export_date: the day the export was taken; anchors two-digit years.
        phone_region: ISO region for phone numbers without a country code.
        default_area_code: area code for 7-digit phone numbers (the location's), or None.
        cdt: procedure codes are CDT (``D0120``); False for locales with local code sets, where
            ``parse_proc_code`` only upper-cases.
    """

    date_order: Literal["MDY", "DMY"] = "MDY"
    decimal_comma: bool = False
    export_date: dt.date = field(default_factory=dt.date.today)
    phone_region: str = "US"
    default_area_code: str | None = None
    cdt: bool = True


#: Cell texts that mean "no value" (exact, after trimming); case variants are listed, not folded.
NULL_TOKENS: tuple[str, ...] = (
    "NULL", "null", "Null", "(null)", "(NULL)", "<NULL>", "<null>", "N/A", "n/a", "#N/A", "NaN",
)
#: Whitespace trimmed from every cell (explicit so the scalar and Arrow trims agree exactly).
WS = " \t\r\n\x0b\x0c\xa0\u2007\u202f\u200b\ufeff\u3000"
#: A cell made only of these characters (after trimming) is a mask such as ``"  /  /  "`` or
#: ``"(   )   -    "``: blank.
MASK_CHARS = WS + "/-().:,_"
_TOKENS = frozenset(NULL_TOKENS)

#: Defect code -> what the reader did and how to fix it at the source. Never contains a value.
REASONS: dict[str, str] = {
    "DT1": "a placeholder date (such as 01/01/1900, 12/30/1899, 0001-01-01, 0000-00-00 or an empty "
           "date mask) was read as blank; leave unknown dates empty in the source system",
    "DT2": "a two-digit year was expanded to four digits (birth dates: the latest year not after the "
           "export date; other dates: 20yy up to 20 years after the export, else 19yy); export dates "
           "with four-digit years",
    "DT3": "a date written in another format than the rest of the column (ISO year-month-day, "
           "swapped day and month, month name or digits only) was converted; export one date format "
           "per column",
    "TYPE": "the value could not be read as the column's type (for example an impossible date or a "
            "number with letters) and was left blank; correct the field in the source system",
    "FMT": "the value was not in the expected layout: it was rewritten to the standard form where "
           "that was certain, otherwise kept as written and flagged; correct the field in the source "
           "system",
    "ENUM": "the value is not one of the codes allowed for this column and was left blank; correct "
            "the code in the source system or map it in the export profile",
    "ID1": "leading zeros were removed from a zero-padded numeric id; no action needed, ids are "
           "matched as numbers",
    "$1": "an amount with a currency sign, thousands separators, parentheses, a trailing minus or a "
          "CR/DR marker was converted to a signed decimal (debits +, credits -); no action needed",
    "PH1": "a phone number in a non-standard layout (punctuation, extension, note text or missing "
           "area code) was rewritten in international E.164 form, or left blank when no valid number "
           "was found in it; keep only the number in phone fields",
    "PH2": "a placeholder phone number (all digits the same, such as 000-000-0000 or 999-999-9999) "
           "was read as blank; leave unknown phone numbers empty in the source system",
    "EM2": "the email field held several addresses or an invalid address: the first valid one was "
           "kept, or the field was left blank when none was valid; keep exactly one valid address "
           "per email field",
    "ENC3": "text that had been decoded twice (UTF-8 bytes read as Windows-1252, 'mojibake') was "
            "repaired; check the character set of the system the record was entered or imported from",
    "CSV4": "control characters (NUL and other non-printing characters) were removed from the text; "
            "clean the field in the source system",
    "ZIP1": "a ZIP code that lost its leading zero or its ZIP+4 dash was rewritten as NNNNN or "
            "NNNNN-NNNN; store ZIP codes as text in the source system",
    "CD1": "a procedure code without its 'D' prefix or with a decimal suffix was rewritten as a CDT "
           "code (Dnnnn); record full CDT codes in the source system",
    "CSV2": "the row had the wrong number of fields (an unquoted line break or delimiter inside a "
            "value, or a truncated file): a record split in two by a bare line break was put back "
            "together (the break kept as a line break), anything else was quarantined; fix the row at "
            "the source and re-export",
    "CSV5": "the record is longer than the reader's limit for one record (a runaway memo, a file cut or "
            "padded with a huge line, or an unclosed quote swallowing the rest of the file): it was "
            "quarantined "
            "unread and reading went on with the next line; shorten the field or fix the row at the source "
            "and re-export",
    "KEY1": "a primary key or required reference was blank or unreadable, so the row was quarantined; "
            "fill it in at the source",
    "KEY2": "the same primary key appears on more than one row; keep one row per key at the source",
    "LST1": "an item of a list column (e.g. procedure codes separated by ';') is not a valid value of its "
            "column: that item's row was quarantined, its parent row and the other items were kept",
    "JOIN1": "a table whose rows are spread over several files holds the same key twice in one file, or "
             "with different values of a column in two files: that file's record was quarantined and the "
             "first file's values kept; correct the record at the source",
    "FK1": "the row refers to a patient (or parent row) that is not in the export, so it was "
           "quarantined; re-export with the missing patient",
    "LKP1": "the code is not defined in LOOKUP for its category; it was kept: add it to the "
            "practice's lookup list or map it in the mapping file",
    "DT4": "a date after the export date (a post-dated entry) or an appointment time inside the "
           "spring-forward daylight-saving gap was kept and flagged; check it with the practice",
    "DUP2": "a placeholder appointment without a patient (PAT_ID 0 or blank): it is reported, never "
            "turned into an invented contact",
    "NM1": "a name typed in ALL CAPS was title-cased; no action needed",
    "NM2": "a suffix inside the last name or a quoted nickname inside the first name was moved to "
           "the suffix or preferred-name field; keep them in their own fields at the source",
    "TH1": "a tooth value was normalised ('#' sign, lower-case letter, leading zero or separators), "
           "or it is not a valid Universal tooth number and was kept as written and flagged; record "
           "teeth as 1-32, A-T, 51-82, AS-TS, quadrants (UR, UL, LL, LR) or arches (U, L)",
    # Semantic checks of the source audit (dos2hl.audit.checks): rows are kept and flagged.
    "DUP1": "patient records that look like the same person entered twice (same or adjacent birth date "
            "and matching, swapped or maiden names; counted per group of records): merge them in the "
            "source system before the migration, or confirm they are different people",
    "DUP3": "a test or demo patient (a name such as TEST, DEMO, ZZTEST or DO NOT USE): delete it in the "
            "source system or leave it out of the migration",
    "FAM1": "the patient's guarantor (GUAR_ID) is not in the export or is a deleted or archived record: "
            "assign a current guarantor in the source system",
    "FAM2": "a guarantor who is not a patient (subscriber or payer only) has no birth date: it migrates as "
            "a contact without one; add the date if the practice needs it",
    "ST1": "a deleted or archived patient still has ledger rows, claims or a balance: decide with the "
           "practice whether the account is migrated, written off or reactivated",
    "$2": "a claim's header totals (billed, paid or write-off) differ from the sum of its lines, or a "
          "write-off is negative: correct the claim in the source system; the lines are taken as the "
          "detail",
    "$3": "the guarantor's aging snapshot (balance on the patient record) differs from the sum of the "
          "account's ledger rows: run the practice's aging update before exporting; the ledger is the "
          "balance that migrates",
    "$4": "a ledger row that needs review: a zero amount, a voided entry (a VOID reversal pair), or an "
          "insurance payment or write-off whose claim is blank or not in the export; clean it up in the "
          "source system or confirm it",
    "CD2": "a retired procedure code (such as the pre-2013 fluoride codes), a practice-specific custom "
           "code, or a code missing from the procedure code list: map it to a current CDT code or a "
           "custom code in the mapping file",
    "PR1": "a provider referenced by the row is missing from the provider list, or a terminated provider "
           "is on a later scheduled appointment: add the provider to the export or reassign the rows",
    "PR2": "a provider has no email address, so no HighLevel user can be matched or invited for them: "
           "ask the practice for the provider's email",
    "RC1": "a recall that needs review: a second recall of the same type for the patient, or an active "
           "recall for an inactive or deceased patient; remove or disable it in the source system",
    "INS1": "a coverage with COV_ORDER 0, or a second primary coverage (COV_ORDER 1) that overlaps "
            "another for the same patient: set the coverage order in the source system",
    "INS2": "a member id that is shaped like a Social Security number: replace it with the plan's member "
            "id in the source system; it is sensitive and should not be migrated as an id",
    "INS3": "an insurance carrier whose name is a near duplicate of another carrier's (case, abbreviation "
            "or legal-form variants): merge the carriers or map them to one in the mapping file",
    "REF1": "a referral source typed as free text without a referral source id: map the text to a "
            "referral source in the mapping file",
    "NOTE2": "a clinical note linked to several procedure codes at once, or whose author is not in the "
             "provider list: check the note's procedure link and author before migrating",
    "DOC1": "a document problem: the file is missing, its size is blank, zero or different from the real "
            "file, its extension is blank or wrong, its file name contains the patient's name, or a file "
            "on disk belongs to no document row; fix the document list or the files before migrating",
    "DOC2": "a document in a proprietary image format (such as .dxr or .img, or stored as "
            "application/octet-stream) that cannot be previewed: convert it to JPEG, PNG or PDF with the "
            "imaging software first",
    "UDF1": "a custom-field value that does not fit its definition (a date field with a date that is not "
            "written in full, a pick-list value that is not in the list, a number or checkbox field with "
            "text): correct the value or extend the definition",
    "EM3": "the same email address or cell phone is on several patients (usually one household): "
           "choose whose it is, since HighLevel matches and messages contacts by email and phone",
}


def clean_text(s: str | None) -> str | None:
    """Trim ``s`` and map null tokens, whitespace and masks to None (the scalar ``clean_raw``)."""
    if s is None:
        return None
    t = s.strip(WS)
    if not t or t in _TOKENS or (not t.strip(MASK_CHARS) and s != "-"):
        return None
    return t


def is_mask(s: str | None) -> bool:
    """True when ``s`` is a non-empty mask such as ``"  /  /  "`` (not a null token, not blank)."""
    if s is None:
        return False
    t = s.strip(WS)
    return bool(t) and t not in _TOKENS and not t.strip(MASK_CHARS) and s != "-"
