"""Test harness: copy a generated reference export with files and header columns renamed the way
other vendors name them, and return the truth to score the matcher against.

The names here are written from how real systems label these fields (Open Dental's CamelCase schema,
terse legacy flat files, verbose report writers, spreadsheet-style headers); they are deliberately
NOT taken from ``dos2hl.mapping.synonyms`` (this module must not import it), so the accuracy measured
with them is honest. Each variant renames every file, renames most columns through its own explicit
map (the busiest tables) or its own word style (the rest), and keeps a few columns as they are.
Only the header line is rewritten; data rows are copied byte for byte.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dos2hl.model import TABLES

__all__ = ["Variant", "VARIANTS", "write_variant", "reference_truth"]

Truth = dict[str, tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Variant:
    """One vendor's naming: file names, explicit column names per table, a word style for the rest."""

    name: str
    files: dict[str, str]  # canonical table -> new file name
    columns: dict[str, dict[str, str]]  # canonical table -> {canonical column: new header}
    style: Callable[[str, str], str]  # (table, canonical column) -> new header
    keep_every: int = 7  # keep roughly one in ``keep_every`` styled columns unchanged (stable hash)
    keep: frozenset[str] = field(default_factory=frozenset)

    def header(self, table: str, column: str) -> str:
        explicit = self.columns.get(table, {})
        if column in explicit:
            return explicit[column]
        if column in self.keep or zlib.crc32(f"{self.name}:{table}:{column}".encode()) % self.keep_every == 0:
            return column.upper()
        return self.style(table, column)


def _words(column: str, vocab: dict[str, str]) -> list[str]:
    out: list[str] = []
    for part in column.split("_"):
        w = vocab.get(part, part)
        if w:
            out.extend(w.split(" "))
    return out


# ---- opendental_like: CamelCase, "Num" ids, "Date" first, clinic for location ---------------------
_OD = {"id": "Num", "pat": "Pat", "prov": "Prov", "dt": "Date", "tm": "Time", "dttm": "DateTime", "flg": "",
       "amt": "Amt", "addr1": "Address", "addr2": "Address2", "st": "State", "no": "Num", "loc": "Clinic",
       "appt": "Apt", "est": "Est", "ins": "Ins", "ded": "Deductible", "pct": "Percent", "sub": "Sub",
       "rec": "", "elig": "Elig", "cov": "Coverage", "txitem": "ProcTP", "txplan": "TreatPlan",
       "trans": "Trans",
       "claimln": "ClaimProc", "op": "Op", "hyg": "Hyg", "dds": "Dentist", "def": "Default",
       "ref": "Referral",
       "wo": "WriteOff", "cur": "Cur", "doc": "Doc", "img": "Img", "comm": "Comm", "stat": "Status",
       "desc": "Descript", "description": "Descript", "recv": "Received", "orig": "Orig", "svc": "Service",
       "note": "Note", "fee": "Fee", "sched": "Sched", "proc": "Proc", "is": "Is", "lic": "License",
       "fam": "Family", "ind": "Individual", "calc": "Calc", "max": "Max", "min": "Min", "tz": "TimeZone",
       "fmt": "Format", "sig": "Signature", "b64": "Base64", "ext": "Ext", "dos": "DateService"}


def _od_style(table: str, column: str) -> str:
    parts = column.split("_")
    words = _words(column, _OD)
    if "dt" in parts and words and words[-1] == "Date" and len(words) > 1:
        words = ["Date", *words[:-1]]  # OD: DateCreated, DateSent
    if "flg" in parts:
        words = ["Is", *words] if words[:1] != ["Is"] else words
    return "".join(w[:1].upper() + w[1:] for w in words)


_OD_FILES = {
    "location": "clinic.txt", "provider": "provider.txt", "operatory": "operatory.txt",
    "proccode": "procedurecode.txt", "lookup": "definition.txt", "patient": "patient.txt",
    "insco": "carrier.txt", "insplan": "insplan.txt", "inssub": "inssub.txt", "patins": "patplan.txt",
    "appt": "appointment.txt", "apptproc": "procedurelog.txt", "txplan": "treatplan.txt",
    "txitem": "proctp.txt", "clinnote": "procnote.txt", "commlog": "commlog.txt", "ledger": "paysplit.txt",
    "claim": "claim.txt", "claimln": "claimproc.txt", "recall": "recall.txt", "recalltyp": "recalltype.txt",
    "refsrc": "referral.txt", "patref": "refattach.txt", "document": "document.txt",
    "userfld": "patfielddef.txt", "patudf": "patfield.txt",
}
_OD_COLS = {
    "patient": {
        "pat_id": "PatNum", "chart_no": "ChartNumber", "loc_id": "ClinicNum", "lname": "LName",
        "fname": "FName",
        "mi": "MiddleI", "pref_name": "Preferred", "title": "Salutation", "sex": "Gender",
        "birthdate": "Birthdate", "ssn": "SSN", "marital": "Position", "addr1": "Address",
        "addr2": "Address2",
        "city": "City", "st": "State", "zip": "Zip", "hphone": "HmPhone", "wphone": "WkPhone",
        "cphone": "WirelessPhone", "email": "Email", "pref_contact": "PreferContactMethod",
        "txt_ok": "TxtMsgOk", "guar_id": "Guarantor", "pat_stat": "PatStatus", "pri_prov": "PriProv",
        "hyg_prov": "SecProv", "bill_type": "BillingType", "fee_sched": "FeeSched",
        "first_visit": "DateFirstVisit", "med_alert": "MedUrgNote", "premed": "Premed",
        "bal_cur": "Bal_0_30", "bal_30": "Bal_31_60", "bal_60": "Bal_61_90", "bal_90": "BalOver90",
        "bal_total": "BalTotal", "ins_est": "InsEst", "created_dt": "SecDateEntry",
        "modified_dt": "DateTStamp",
        "employer": "EmployerName", "deceased_dt": "DateTimeDeceased", "pat_note": "FamFinUrgNote",
    },
    "appt": {
        "appt_id": "AptNum", "pat_id": "PatNum", "status": "AptStatus", "length_min": "Pattern",
        "confirm": "Confirmed", "op_id": "Op", "note": "Note", "prov_id": "ProvNum", "hyg_id": "ProvHyg",
        "appt_date": "AptDate", "appt_time": "AptTime", "is_new_pat": "IsNewPatient",
        "reason": "ProcDescript",
        "asst_id": "Assistant", "loc_id": "ClinicNum", "is_hyg": "IsHygiene", "created_dt": "DateTimeCreated",
        "arrived_tm": "DateTimeArrived", "seated_tm": "DateTimeSeated", "dismissed_tm": "DateTimeDismissed",
        "planned_from_id": "NextAptNum", "appt_type": "AppointmentTypeNum",
    },
    "ledger": {
        "trans_id": "SplitNum", "pat_id": "PatNum", "trans_dt": "DatePay", "amount": "SplitAmt",
        "prov_id": "ProvNum", "loc_id": "ClinicNum", "post_dttm": "SecDateTEntry", "pay_method": "PayType",
        "trans_type": "EntryType", "check_no": "CheckNum", "applies_to_id": "ProcNum",
    },
    "provider": {"prov_id": "ProvNum", "lname": "LName", "fname": "FName", "mi": "MI", "cred": "Suffix",
                 "npi": "NationalProvID", "state_lic": "StateLicense", "tin_ssn": "SSN", "color": "ProvColor",
                 "specialty": "Specialty", "active_flg": "IsHidden", "email": "EmailAddress"},
}


# ---- abbreviated: terse legacy flat-file names, Xx_Yy with short words -----------------------------
_AB = {"pat": "Pt", "prov": "Prv", "id": "No", "dt": "Dt", "name": "Nm", "appt": "Apt", "amt": "Amt",
       "description": "Dsc", "desc": "Dsc", "status": "Sts", "stat": "Sts", "type": "Typ", "code": "Cd",
       "note": "Nte", "ins": "Ins", "flg": "YN", "date": "Dt", "addr1": "Adr1", "addr2": "Adr2", "loc": "Loc",
       "phone": "Ph", "fax": "Fax", "carrier": "Carr", "group": "Grp", "plan": "Pln", "claim": "Clm",
       "trans": "Trn", "proc": "Prc", "tooth": "Th", "surf": "Srf", "fee": "Fee", "est": "Est",
       "total": "Tot", "created": "Crt", "modified": "Mod", "by": "By", "check": "Chk", "recall": "Rcl",
       "interval": "Intv", "contact": "Cntct", "referral": "Rfl", "ref": "Rfl", "document": "Doc",
       "file": "Fil", "size": "Sz", "path": "Pth", "field": "Fld", "value": "Val", "sort": "Srt",
       "active": "Act", "deleted": "Del", "signed": "Sgn", "sequence": "Sq", "seq": "Sq", "tm": "Tm",
       "dttm": "DtTm", "amount": "Amt", "paid": "Pd", "billed": "Bld", "sub": "Sbr", "member": "Mbr",
       "elig": "Elg", "txplan": "TxPln", "txitem": "TxItm", "claimln": "ClmLn", "line": "Ln",
       "operatory": "Opr", "op": "Opr", "comm": "Cm", "direction": "Dir", "mode": "Md", "user": "Usr",
       "login": "Lgn", "phase": "Phs", "priority": "Pri", "discount": "Disc", "completed": "Cmpl",
       "category": "Cat", "label": "Lbl", "specialty": "Spec", "reason": "Rsn", "cancel": "Cncl"}


def _ab_style(table: str, column: str) -> str:
    return "_".join(w[:1].upper() + w[1:] for w in _words(column, _AB))


_AB_FILES = {
    "location": "LOCS.DAT", "provider": "PRVDRS.DAT", "operatory": "OPRS.DAT", "proccode": "PRCCDS.DAT",
    "lookup": "CODETBL.DAT", "patient": "PTDEMO.DAT", "insco": "INSCARR.DAT", "insplan": "INSPLNS.DAT",
    "inssub": "INSSBR.DAT", "patins": "PTINS.DAT", "appt": "APTS.DAT", "apptproc": "APTPRCS.DAT",
    "txplan": "TXPLNS.DAT", "txitem": "TXITMS.DAT", "clinnote": "CLNNTS.DAT", "commlog": "CMLOG.DAT",
    "ledger": "TRNHIST.DAT", "claim": "CLMS.DAT", "claimln": "CLMLNS.DAT", "recall": "RCLS.DAT",
    "recalltyp": "RCLTYPS.DAT", "refsrc": "RFLSRCS.DAT", "patref": "PTRFLS.DAT", "document": "DOCIDX.DAT",
    "userfld": "USRFLDS.DAT", "patudf": "PTUSRFLDS.DAT",
}
_AB_COLS = {
    "patient": {
        "pat_id": "Pt_No", "chart_no": "Pt_Chart", "lname": "Pt_Surname", "fname": "Pt_Given", "mi": "Pt_MI",
        "pref_name": "Pt_Nick", "sex": "Pt_Sex", "birthdate": "BirthDt", "ssn": "Pt_SSN",
        "marital": "Pt_MarStat", "addr1": "Pt_Adr1", "addr2": "Pt_Adr2", "city": "Pt_City", "st": "Pt_St",
        "zip": "Pt_Zip", "hphone": "HomeNo", "wphone": "WorkNo", "wphone_ext": "WorkExt", "cphone": "CellNo",
        "email": "EMailAdr", "guar_id": "Guar_No", "rel_to_guar": "Guar_Rel", "pat_stat": "Pt_Sts",
        "pri_prov": "Prv1", "hyg_prov": "Prv2", "first_visit": "FirstVisDt", "last_visit": "LastVisDt",
        "med_alert": "MedAlrt", "bal_total": "TotBal", "created_dt": "CrtDt", "modified_dt": "ModDt",
        "deleted_flg": "Del_YN", "txt_ok": "Txt_YN", "email_ok": "EMail_YN",
    },
    "appt": {"appt_id": "Apt_No", "pat_id": "Pt_No", "appt_date": "Apt_Dt", "appt_time": "Apt_Tm",
             "length_min": "Apt_Len", "status": "Apt_Sts", "prov_id": "Prv_No", "hyg_id": "Hyg_No",
             "op_id": "Opr_No", "reason": "Apt_Rsn", "appt_name": "Apt_Nm"},
    "ledger": {"trans_id": "Trn_No", "pat_id": "Pt_No", "trans_dt": "Trn_Dt", "amount": "Trn_Amt",
               "trans_type": "Trn_Typ", "pay_method": "Pay_Typ", "guar_id": "Guar_No"},
}


# ---- verbose: report-writer snake case, every word spelled out --------------------------------------
_VB = {"pat": "patient", "prov": "provider", "id": "id", "dt": "date", "tm": "time", "dttm": "date_time",
       "flg": "flag", "amt": "amount", "addr1": "address_line_1", "addr2": "address_line_2", "st": "state",
       "no": "number", "loc": "location", "appt": "appointment", "est": "estimated", "ins": "insurance",
       "ded": "deductible", "pct": "percentage", "sub": "subscriber", "rec": "record", "elig": "eligibility",
       "cov": "coverage", "txitem": "treatment_item", "txplan": "treatment_plan", "trans": "transaction",
       "claimln": "claim_line", "op": "operatory", "hyg": "hygienist", "dds": "dentist", "def": "default",
       "ref": "referral", "wo": "write_off", "cur": "current", "doc": "document", "img": "image",
       "comm": "communication", "stat": "status", "recv": "received", "orig": "original", "svc": "service",
       "sched": "scheduled", "proc": "procedure", "lic": "license", "fam": "family", "ind": "individual",
       "calc": "calculated", "tz": "time_zone", "fmt": "format", "sig": "signature", "b64": "base64",
       "ext": "extension", "dos": "date_of_service", "cred": "credentials", "surf": "surface",
       "dx": "diagnosis", "desc": "description", "mi": "middle_initial", "npi": "npi", "seq": "sequence",
       "attach": "attachment", "resp": "responsibility", "abbr": "abbreviation", "max": "maximum",
       "prev": "preventive", "asst": "assistant", "bal": "balance", "rel": "relationship",
       "pref": "preferred"}


def _vb_style(table: str, column: str) -> str:
    return "_".join(_words(column, _VB))


_VB_FILES = {
    "location": "practice_locations.csv", "provider": "provider_list.csv", "operatory": "treatment_rooms.csv",
    "proccode": "procedure_code_list.csv", "lookup": "code_definitions.csv", "patient": "patient_master.csv",
    "insco": "insurance_companies.csv", "insplan": "insurance_plan_list.csv",
    "inssub": "insurance_subscriber_list.csv", "patins": "patient_insurance_coverage.csv",
    "appt": "appointment_book.csv", "apptproc": "appointment_procedure_list.csv",
    "txplan": "treatment_plan_list.csv", "txitem": "treatment_plan_item_list.csv",
    "clinnote": "clinical_note_list.csv", "commlog": "communication_history.csv",
    "ledger": "account_transaction_history.csv", "claim": "insurance_claim_list.csv",
    "claimln": "insurance_claim_line_list.csv", "recall": "recall_list.csv",
    "recalltyp": "recall_type_list.csv",
    "refsrc": "referral_source_list.csv", "patref": "patient_referral_list.csv",
    "document": "document_index.csv", "userfld": "custom_field_definitions.csv",
    "patudf": "patient_custom_field_values.csv",
}
_VB_COLS = {
    "patient": {
        "pat_id": "patient_id", "chart_no": "patient_chart_number", "lname": "patient_last_name",
        "fname": "patient_first_name", "mi": "patient_middle_initial", "pref_name": "patient_preferred_name",
        "birthdate": "patient_date_of_birth", "sex": "patient_gender",
        "ssn": "patient_social_security_number",
        "marital": "patient_marital_status", "hphone": "patient_home_phone_number",
        "wphone": "patient_work_phone_number", "cphone": "patient_mobile_phone_number",
        "email": "patient_email_address", "guar_id": "guarantor_patient_id",
        "rel_to_guar": "relationship_to_guarantor", "pat_stat": "patient_status",
        "pri_prov": "primary_provider_id", "hyg_prov": "hygienist_provider_id",
        "first_visit": "first_visit_date", "last_visit": "last_visit_date", "med_alert": "medical_alert_text",
        "pref_contact": "preferred_contact_method", "txt_ok": "text_messages_allowed",
        "email_ok": "email_messages_allowed", "bal_total": "total_account_balance",
    },
    "appt": {"appt_date": "appointment_start_date", "appt_time": "appointment_start_time",
             "length_min": "appointment_duration_minutes", "status": "appointment_status",
             "prov_id": "treating_provider_id", "hyg_id": "hygienist_provider_id", "op_id": "operatory_id"},
}


# ---- mixed_case_spaces: spreadsheet headers, Title Case with spaces -----------------------------------
_SP = {"pat": "Patient", "prov": "Provider", "id": "ID", "dt": "Date", "tm": "Time", "dttm": "Date/Time",
       "flg": "", "amt": "Amount", "addr1": "Address 1", "addr2": "Address 2", "st": "State", "no": "#",
       "loc": "Office", "appt": "Appt", "est": "Est.", "ins": "Insurance", "ded": "Deductible", "pct": "%",
       "sub": "Subscriber", "rec": "Record", "elig": "Eligibility", "cov": "Coverage", "txitem": "Tx Item",
       "txplan": "Tx Plan", "trans": "Transaction", "claimln": "Claim Line", "op": "Operatory",
       "hyg": "Hygienist", "dds": "Dentist", "def": "Default", "ref": "Referral", "wo": "Write-off",
       "cur": "Current", "doc": "Document", "img": "Image", "comm": "Contact", "stat": "Status",
       "recv": "Received", "orig": "Original", "svc": "Service", "sched": "Scheduled", "proc": "Procedure",
       "is": "Is", "fmt": "Format", "tz": "Time Zone", "dos": "Service Date", "surf": "Surface",
       "cred": "Credentials", "mi": "M.I.", "desc": "Description", "bal": "Balance", "rel": "Relationship",
       "asst": "Assistant", "seq": "Seq", "calc": "Calculated", "sig": "Signature", "b64": "Base64",
       "ext": "Ext", "lic": "License", "max": "Max", "pref": "Preferred"}


def _sp_style(table: str, column: str) -> str:
    words = _words(column, _SP)
    return " ".join(w[:1].upper() + w[1:] for w in words)


_SP_FILES = {t: f"{TABLES[t].title} Export.csv" for t in TABLES}
_SP_COLS = {
    "patient": {
        "pat_id": "Patient ID", "chart_no": "Chart #", "lname": "Last Name", "fname": "First Name",
        "mi": "Middle Init", "pref_name": "Goes By", "birthdate": "Date of Birth", "sex": "Gender",
        "ssn": "Social Security #", "marital": "Marital Status", "addr1": "Street", "addr2": "Apt/Suite",
        "zip": "Zip Code", "hphone": "Home Phone", "wphone": "Work Phone", "wphone_ext": "Work Ext",
        "cphone": "Mobile", "email": "E-mail", "guar_id": "Responsible Party", "pat_stat": "Status",
        "pri_prov": "Dentist", "hyg_prov": "Hygienist", "last_visit": "Last Seen",
        "med_alert": "Medical Alerts", "bal_total": "Balance", "created_dt": "Date Added",
        "modified_dt": "Last Updated",
    },
    "appt": {"appt_date": "Date", "appt_time": "Start Time", "length_min": "Length (min)",
             "status": "Appt Status", "prov_id": "Dentist", "appt_name": "Patient Name", "op_id": "Chair"},
}

# ---- legacy_upper (holdout, written after the matcher was tuned): glued UPPER names, .TXT files ------
_LU = {"pat": "PATIENT", "prov": "PROVIDER", "id": "ID", "dt": "DATE", "tm": "TIME", "dttm": "DATETIME",
       "flg": "FLAG", "amt": "AMOUNT", "addr1": "STREET1", "addr2": "STREET2", "st": "STATE", "no": "NUM",
       "loc": "CLINIC", "appt": "APPT", "est": "EST", "ins": "INS", "ded": "DEDUCT", "pct": "PCT",
       "sub": "SUBSCRIBER", "rec": "REC", "elig": "ELIG", "cov": "COVERAGE", "txitem": "TXPROC",
       "txplan": "TXCASE", "trans": "TRANS", "claimln": "CLAIMPROC", "op": "CHAIR", "hyg": "HYG",
       "dds": "DDS", "def": "DEFAULT", "ref": "REFERRAL", "wo": "WRITEOFF", "cur": "CURRENT", "doc": "DOC",
       "img": "IMAGE", "comm": "CONTACT", "stat": "STATUS", "recv": "RECEIVED", "orig": "ORIG",
       "svc": "SERVICE", "sched": "SCHED", "proc": "PROC", "desc": "DESC", "seq": "SEQNUM", "surf": "SURFACE"}


def _lu_style(table: str, column: str) -> str:
    return "".join(w.upper() for w in _words(column, _LU))


_LU_FILES = {
    "location": "CLINICS.TXT", "provider": "PROVIDERS.TXT", "operatory": "CHAIRS.TXT",
    "proccode": "ADACODES.TXT", "lookup": "DEFINITIONS.TXT", "patient": "PATIENTS.TXT",
    "insco": "INSCARRIERS.TXT", "insplan": "EMPLOYERPLANS.TXT", "inssub": "SUBSCRIBERS.TXT",
    "patins": "PATCOVERAGE.TXT", "appt": "APPTS.TXT", "apptproc": "APPTPROCS.TXT", "txplan": "TXCASES.TXT",
    "txitem": "TXPROCS.TXT", "clinnote": "PROGNOTES.TXT", "commlog": "CONTACTLOG.TXT",
    "ledger": "TRANSACTIONS.TXT", "claim": "CLAIMS.TXT", "claimln": "CLAIMPROCS.TXT",
    "recall": "CONTINUINGCARE.TXT", "recalltyp": "CCTYPES.TXT", "refsrc": "REFERRERS.TXT",
    "patref": "PATREFERRALS.TXT", "document": "DOCCENTER.TXT", "userfld": "CUSTOMFIELDS.TXT",
    "patudf": "CUSTOMFIELDVALUES.TXT",
}
_LU_COLS = {
    "patient": {
        "pat_id": "PATIENTID", "chart_no": "CHARTNUM", "lname": "LASTNAME", "fname": "FIRSTNAME",
        "mi": "MIDDLEINIT", "pref_name": "PREFERREDNAME", "birthdate": "BIRTHDATE", "sex": "GENDER",
        "ssn": "SOCSECNUM", "zip": "ZIPCODE", "hphone": "HOMEPHONE", "wphone": "WORKPHONE",
        "wphone_ext": "WORKEXT", "cphone": "CELLPHONE", "email": "EMAILADDR", "guar_id": "GUARANTORID",
        "pat_stat": "PATSTATUS", "pri_prov": "PRIMPROVIDER", "hyg_prov": "SECPROVIDER",
        "first_visit": "FIRSTVISITDATE", "last_visit": "LASTVISITDATE", "med_alert": "MEDALERTS",
        "bal_total": "TOTALBALANCE",
    },
    "appt": {"appt_id": "APPTID", "appt_date": "APPTDATE", "appt_time": "STARTTIME", "length_min": "APPTLEN",
             "op_id": "CHAIRID", "status": "APPTSTATUS", "reason": "APPTREASON"},
}

VARIANTS: dict[str, Variant] = {
    "opendental_like": Variant("opendental_like", _OD_FILES, _OD_COLS, _od_style),
    "abbreviated": Variant("abbreviated", _AB_FILES, _AB_COLS, _ab_style),
    "verbose": Variant("verbose", _VB_FILES, _VB_COLS, _vb_style),
    "mixed_case_spaces": Variant("mixed_case_spaces", _SP_FILES, _SP_COLS, _sp_style),
    "legacy_upper": Variant("legacy_upper", _LU_FILES, _LU_COLS, _lu_style),
}


def _read_header(raw: bytes) -> tuple[str, bytes, str]:
    """The header line text, the rest of the file, and the line ending (reference layout: line 1)."""
    nl = raw.index(b"\n")
    ending = "\r\n" if raw[nl - 1:nl] == b"\r" else "\n"
    line = raw[: nl - len(ending) + 1].decode("cp1252")
    return line, raw[nl + 1:], ending


def write_variant(src_export: Path, dst: Path, variant: Variant) -> Truth:
    """Write ``src_export`` (reference layout, one header line) renamed per ``variant`` into ``dst``.

    Returns ``{new file name: (table, {new header: canonical column})}``.
    """
    dst.mkdir(parents=True, exist_ok=True)
    truth: Truth = {}
    for path in sorted(src_export.iterdir()):
        if not path.is_file() or path.suffix.upper() != ".CSV":
            continue
        table = path.stem.lower()
        raw = path.read_bytes()
        line, rest, ending = _read_header(raw)
        cols = next(csv.reader([line]))
        new = [variant.header(table, c.lower()) for c in cols]
        assert len(set(new)) == len(new), f"{variant.name}: duplicate headers in {table}"
        buf = io.StringIO()
        csv.writer(buf, lineterminator=ending).writerow(new)
        name = variant.files[table]
        (dst / name).write_bytes(buf.getvalue().encode("cp1252") + rest)
        truth[name] = (table, {n: c.lower() for n, c in zip(new, cols, strict=False)})
    return truth


def reference_truth(src_export: Path) -> Truth:
    """The truth of the reference layout itself (identity map)."""
    truth: Truth = {}
    for path in sorted(src_export.iterdir()):
        if path.is_file() and path.suffix.upper() == ".CSV":
            line, _, _ = _read_header(path.read_bytes())
            truth[path.name] = (path.stem.lower(), {c: c.lower() for c in next(csv.reader([line]))})
    return truth
