"""The canonical model: one typed definition for every table of a Dent-O-Soft practice.

Every export profile maps its files and columns onto these tables, the generator writes its clean
``truth/`` in exactly this shape, the reader produces it, and staging stores it as Parquet.

Naming rule (kept on purpose, so the reference export profile is the identity map):
- a canonical table is the lower-case stem of the reference file (``PATIENT.CSV`` -> ``patient``);
- a canonical column is the lower-case reference column name (``BIRTHDATE`` -> ``birthdate``).

Column kinds (the canonical, parsed representation, see ``ARROW_TYPES``):

=========  ====================================================================================
kind       canonical value
=========  ====================================================================================
int        64-bit integer; zero-padded text ``000123`` is 123 (ID1)
code       upper-case, trimmed text code (``dr1`` -> ``DR1``): provider, location, operatory ids
str        trimmed text (single line)
memo       text kept as-is (multi-line; RTF/HTML untouched), NUL and control characters removed
date       calendar date; sentinels (``01/01/1900`` ...) are null
dob        a birth date: like ``date``, but two-digit years use the birth-date rule
time       time of day (seconds since midnight, ``time32[s]``)
datetime   naive local timestamp (seconds)
money      decimal(14, 2), signed: debits +, credits -
bool       true/false; blank is null
enum       one of the listed values (upper-case)
lookup     a code of a LOOKUP.CSV category (upper-case)
phone      E.164 (``+14135550142``)
email      one lower-cased, syntactically valid address
zip        5 digits, or ``NNNNN-NNNN``
state      two-letter upper-case state code
=========  ====================================================================================

PHI classes (EXPORT_FORMAT.md): D direct identifier, H health, F financial, R reference,
S sensitive non-patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Column",
    "Table",
    "TABLES",
    "Kind",
    "PhiClass",
    "table",
    "patient_scoped_tables",
]

Kind = Literal[
    "int", "code", "str", "memo", "date", "dob", "time", "datetime", "money", "bool", "enum",
    "lookup", "phone", "email", "zip", "state",
]
PhiClass = Literal["D", "H", "F", "R", "S"]

HighLevelTarget = Literal[
    "location", "user", "contact", "contact.custom_field", "contact.tag", "contact.note",
    "opportunity", "calendar_event", "file", "custom_object", "reference", "none",
]


@dataclass(frozen=True, slots=True)
class Column:
    """One canonical column."""

    name: str
    kind: Kind
    phi: PhiClass
    pk: bool = False
    required: bool = False  # a row without it cannot be staged (quarantined)
    fk: str | None = None  # "table" (its primary key) the value refers to
    values: tuple[str, ...] = ()  # allowed values for kind == "enum"
    lookup: str | None = None  # LOOKUP category for kind == "lookup"


@dataclass(frozen=True, slots=True)
class Table:
    """One canonical table (an object of the practice)."""

    name: str
    title: str
    columns: tuple[Column, ...]
    # How rows reach a patient, for sharding: a column of this table holding the patient id, or
    # "<column>-><table>" when the patient is found through a parent row (claimln -> claim).
    patient_via: str | None = None
    # HighLevel destination per the seed's object map; "custom_object:<name>" style detail in target_detail
    target: HighLevelTarget = "none"
    target_detail: str = ""
    required_file: bool = False  # an export without this file is refused before anything is written
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    @property
    def pk(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.pk)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def patient_scoped(self) -> bool:
        return self.patient_via is not None


def _cols(spec: str) -> tuple[Column, ...]:
    """Parse the compact column spec: ``name kind phi [pk] [req] [fk=table] [enum=A|B] [lookup=CAT]``."""
    out: list[Column] = []
    for raw in spec.strip().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, kind, phi, *opts = line.split()
        kw: dict[str, object] = {}
        for opt in opts:
            if opt == "pk":
                kw["pk"] = True
                kw["required"] = True
            elif opt == "req":
                kw["required"] = True
            elif opt.startswith("fk="):
                kw["fk"] = opt[3:]
            elif opt.startswith("enum="):
                kw["values"] = tuple(opt[5:].split("|"))
            elif opt.startswith("lookup="):
                kw["lookup"] = opt[7:]
            else:  # pragma: no cover - guarded by test_model
                raise ValueError(f"unknown column option {opt!r} in {raw!r}")
        out.append(Column(name=name, kind=kind, phi=phi, **kw))  # type: ignore[arg-type]
    return tuple(out)


_T: list[Table] = [
    Table("location", "Locations", _cols("""
        loc_id code R pk
        loc_name str R
        addr1 str R
        addr2 str R
        city str R
        st state R
        zip zip R
        phone phone R
        fax phone R
        tax_id str R
        group_npi str R
        tz str R
        active_flg bool R
    """), target="location", target_detail="HighLevel sub-account"),
    Table("provider", "Providers", _cols("""
        prov_id code R pk
        lname str S
        fname str S
        mi str S
        cred str R
        prov_type enum R enum=D|H|A|S|O
        specialty str R
        npi str R
        state_lic str S
        lic_st state S
        tin_ssn str S
        email email S
        phone phone S
        home_loc_id code R fk=location
        is_billing bool R
        color int R
        active_flg bool S
        hire_dt date S
        term_dt date S
        login str S
    """), target="user", target_detail="User, matched by email"),
    Table("operatory", "Operatories", _cols("""
        op_id code R pk
        loc_id code R fk=location
        op_name str R
        op_abbr str R
        is_hyg bool R
        def_dds_id code R fk=provider
        def_hyg_id code R fk=provider
        sort int R
        active_flg bool R
    """), target="reference", target_detail="calendar resources (reference)"),
    Table("proccode", "Procedure codes", _cols("""
        proc_code code R pk
        label str R
        category str R
        treat_area enum R enum=M|T|S|Q|X|A|R
        def_fee money R
        is_hyg bool R
        active_flg bool R
        retired_dt date R
    """), target="reference", target_detail="CDT pick-list options"),
    Table("lookup", "Lookups", _cols("""
        category code R pk
        code code R pk
        description str R
        sign str R
        sort int R
        active_flg bool R
    """), target="reference", target_detail="value maps for enums and pick-lists"),
    Table("patient", "Patients", _cols("""
        pat_id int D pk
        chart_no str D
        loc_id code R req fk=location
        lname str D
        fname str D
        mi str D
        pref_name str D
        suffix str D
        title str D
        sex enum D enum=M|F|U|O
        birthdate dob D
        ssn str D
        marital enum D enum=S|M|W|D|C
        addr1 str D
        addr2 str D
        city str D
        st state D
        zip zip D
        hphone phone D
        wphone phone D
        wphone_ext str D
        cphone phone D
        email email D
        pref_contact enum D enum=P|T|E|M|N
        txt_ok bool D
        email_ok bool D
        guar_id int D fk=patient
        rel_to_guar lookup D lookup=RELTYPE
        pat_stat enum H enum=A|I|N|X|D|Z|P
        pri_prov code H fk=provider
        hyg_prov code H fk=provider
        bill_type lookup F lookup=BILLTYPE
        fee_sched str F
        first_visit date D
        last_visit date D
        employer str D
        med_alert memo H
        premed bool H
        pat_note memo D
        user_codes str D
        user1 str D
        user2 str D
        user3 str D
        user4 str D
        bal_cur money F
        bal_30 money F
        bal_60 money F
        bal_90 money F
        bal_total money F
        ins_est money F
        deceased_dt date D
        created_dt datetime D
        modified_dt datetime D
        created_by str S
        deleted_flg bool D
        merged_into_id int D fk=patient
    """), patient_via="pat_id", target="contact", required_file=True),
    Table("insco", "Insurance carriers", _cols("""
        carrier_id int R pk
        carrier_name str R
        payer_id str R
        addr1 str R
        addr2 str R
        city str R
        st state R
        zip zip R
        phone phone R
        fax phone R
        active_flg bool R
    """), target="custom_object", target_detail="Insurance Record (carrier)"),
    Table("insplan", "Insurance plans", _cols("""
        plan_id int R pk
        carrier_id int R fk=insco
        employer_name str R
        group_name str R
        group_no str R
        plan_type enum R enum=PPO|INDEM|DHMO|MCAID|DISC
        fee_sched str R
        renew_month int R
        annual_max money R
        ded_ind money R
        ded_fam money R
        ortho_max money R
        pct_prev int R
        pct_basic int R
        pct_major int R
        pct_ortho int R
        freq_notes memo R
        plan_note memo R
    """), target="custom_object", target_detail="Insurance Record (group number, plan)"),
    Table("inssub", "Insurance subscriptions", _cols("""
        sub_rec_id int D pk
        plan_id int R fk=insplan
        subscriber_pat_id int D req fk=patient
        member_id str D
        eff_dt date D
        term_dt date D
        rel_info bool D
        assign_ben bool D
        sub_note memo D
    """), patient_via="subscriber_pat_id", target="custom_object",
          target_detail="Insurance Record (subscriber id)"),
    Table("patins", "Patient coverage and eligibility", _cols("""
        patins_id int D pk
        pat_id int D req fk=patient
        sub_rec_id int D fk=inssub
        cov_order int D
        rel_to_sub lookup D lookup=RELTYPE
        pat_member_id str D
        elig_stat enum H enum=V|U|P|I|X
        elig_check_dt date H
        elig_by str S
        remain_max money F
        ded_met money F
        elig_note memo H
        active_flg bool D
    """), patient_via="pat_id", target="custom_object",
          target_detail="Insurance Record (eligibility), associated to the Contact"),
    Table("appt", "Appointments", _cols("""
        appt_id int H pk
        pat_id int D fk=patient
        appt_name str D
        loc_id code R fk=location
        op_id code R fk=operatory
        prov_id code H fk=provider
        hyg_id code H fk=provider
        asst_id code H fk=provider
        appt_date date H
        appt_time time H
        length_min int H
        status enum H enum=SCH|CNF|ARR|SEAT|CMP|BRK|CAN|UNS|PLN
        confirm lookup H lookup=CONFIRM
        appt_type lookup H lookup=APPTTYPE
        reason str H
        note memo H
        is_new_pat bool H
        is_hyg bool H
        planned_from_id int H fk=appt
        created_dt datetime H
        created_by str S
        cancel_dt date H
        cancel_reason str H
        arrived_tm time H
        seated_tm time H
        dismissed_tm time H
    """), patient_via="pat_id", target="opportunity",
          target_detail="Opportunity in pipeline Appointments + Calendar Event"),
    Table("apptproc", "Appointment procedures", _cols("""
        appt_id int H pk fk=appt
        seq int H pk
        proc_code code H fk=proccode
        tooth str H
        surf str H
        fee money F
        txitem_id int H fk=txitem
        trans_id int F fk=ledger
    """), patient_via="appt_id->appt", target="opportunity",
          target_detail="Opportunity value and CDT pick-list"),
    Table("txplan", "Treatment plans", _cols("""
        txplan_id int H pk
        pat_id int D req fk=patient
        plan_name str H
        created_dt datetime H
        presented_dt date H
        status enum H enum=P|A|R|C|I|S
        prov_id code H fk=provider
        total_fee money F
        est_ins money F
        est_pat money F
        signed_flg bool H
        signed_dt date H
        signed_by_name str D
        doc_id int H fk=document
        note memo H
    """), patient_via="pat_id", target="custom_object", target_detail="Treatment Plan"),
    Table("txitem", "Treatment plan items", _cols("""
        txitem_id int H pk
        txplan_id int H fk=txplan
        pat_id int D req fk=patient
        seq int H
        phase int H
        priority lookup H lookup=TXPRI
        proc_code code H fk=proccode
        tooth str H
        surf str H
        dx str H
        fee money F
        est_ins_pri money F
        est_ins_sec money F
        est_pat money F
        discount money F
        status enum H enum=TP|AC|SC|CP|DC|DL|RO
        appt_id int H fk=appt
        completed_dt date H
        trans_id int F fk=ledger
        prov_id code H fk=provider
    """), patient_via="pat_id", target="custom_object", target_detail="Treatment Plan (items)"),
    Table("clinnote", "Clinical notes", _cols("""
        note_id int H pk
        pat_id int D req fk=patient
        note_dt date H
        note_tm time H
        prov_id code H
        entered_by str S
        appt_id int H fk=appt
        proc_code str H
        tooth str H
        surf str H
        note_type lookup H lookup=NOTETYPE
        note_fmt enum H enum=TXT|RTF|HTML
        note_text memo H
        signed_flg bool H
        signed_dt datetime H
        sig_data memo H
        locked_flg bool H
        amends_note_id int H fk=clinnote
        void_flg bool H
        created_dt datetime H
        modified_dt datetime H
    """), patient_via="pat_id", target="custom_object", target_detail="Clinical Note"),
    Table("commlog", "Communication log", _cols("""
        comm_id int D pk
        pat_id int D req fk=patient
        comm_dttm datetime D
        mode enum D enum=PH|EM|TX|ML|IP|FX
        direction enum D enum=S|R|N
        comm_type enum D enum=APPT|RECALL|FIN|INS|MISC
        note memo D
        user str S
    """), patient_via="pat_id", target="contact.note",
          target_detail="Contact notes with original timestamps"),
    Table("ledger", "Ledger entries", _cols("""
        trans_id int F pk
        pat_id int D req fk=patient
        guar_id int D fk=patient
        loc_id code R fk=location
        trans_dt date F
        post_dttm datetime F
        trans_type enum F enum=CHG|PMT|INSPMT|INSWO|ADJ|REF|FIN|BRK|XFER|PREPAY|VOID
        proc_code code H fk=proccode
        tooth str H
        surf str H
        prov_id code H fk=provider
        amount money F
        pay_method lookup F lookup=PAYTYPE
        check_no str F
        claim_id int F fk=claim
        claimln_id int F fk=claimln
        appt_id int H fk=appt
        txitem_id int H fk=txitem
        adj_code lookup F lookup=ADJTYPE
        applies_to_id int F fk=ledger
        reverses_id int F fk=ledger
        deposit_id str F
        description str F
        note memo F
        entered_by str S
        deleted_flg bool F
    """), patient_via="pat_id", target="custom_object", target_detail="Patient Ledger"),
    Table("claim", "Insurance claims", _cols("""
        claim_id int F pk
        pat_id int D req fk=patient
        sub_rec_id int D fk=inssub
        plan_id int R fk=insplan
        carrier_id int R fk=insco
        claim_type enum F enum=P|S|PA
        svc_dt date H
        created_dt date F
        sent_dt date F
        orig_sent_dt date F
        recv_dt date F
        status enum F enum=U|H|Q|S|A|R|PP|D|V|C
        billed_amt money F
        est_ins_amt money F
        paid_amt money F
        ded_applied money F
        wo_amt money F
        pat_resp_amt money F
        payer_claim_no str D
        claim_ident str F
        treat_prov_id code H fk=provider
        bill_prov_id code F fk=provider
        attach_flg bool H
        attach_id str H
        narrative memo H
        denial_code lookup F lookup=DENIAL
        resubmit_of int F fk=claim
        check_no str F
        check_dt date F
        note memo F
    """), patient_via="pat_id", target="custom_object", target_detail="Insurance Claim"),
    Table("claimln", "Claim lines", _cols("""
        claimln_id int F pk
        claim_id int F req fk=claim
        line_no int F
        trans_id int F fk=ledger
        proc_code code H fk=proccode
        tooth str H
        surf str H
        dos date H
        fee_billed money F
        allowed money F
        est_ins money F
        paid money F
        ded money F
        wo money F
        remarks str F
        line_stat enum F enum=NR|R|D|S|PA
    """), patient_via="claim_id->claim", target="custom_object",
          target_detail="Insurance Claim (lines)"),
    Table("recalltyp", "Recall types", _cols("""
        recall_type code R pk
        description str R
        def_interval str R
        proc_codes str R
        time_units int R
    """), target="reference", target_detail="Recall pipeline / recall type pick-list"),
    Table("recall", "Recalls", _cols("""
        recall_id int H pk
        pat_id int D req fk=patient
        recall_type code H fk=recalltyp
        interval str H
        last_dt date H
        due_dt date H
        calc_due_dt date H
        sched_appt_id int H fk=appt
        status enum H enum=DUE|OVR|SCH|CMP|DIS|INA
        contact_stat lookup H lookup=RECCNT
        last_contact_dt date H
        contact_attempts int H
        disabled_flg bool H
        disable_until date H
        note memo H
    """), patient_via="pat_id", target="opportunity",
          target_detail="Opportunity in pipeline Recall, one per patient and type"),
    Table("refsrc", "Referral sources", _cols("""
        ref_id int R pk
        ref_kind enum R enum=DOC|PAT|MKT|OTH
        name str R
        lname str R
        fname str R
        practice str R
        specialty str R
        phone phone R
        email email R
        npi str R
        ref_pat_id int D fk=patient
        active_flg bool R
        note memo R
    """), target="contact.tag", target_detail="primary/secondary tags + Referral_Source pick-list"),
    Table("patref", "Patient referrals", _cols("""
        patref_id int D pk
        pat_id int D req fk=patient
        ref_id int R fk=refsrc
        direction enum D enum=IN|OUT
        ref_dt date D
        seq int D
        proc_code code H fk=proccode
        tooth str H
        out_status enum H enum=NONE|DECL|SCHED|CONS|INTX|DONE
        source_text str D
        note memo D
    """), patient_via="pat_id", target="contact.tag",
          target_detail="referral tags; outgoing referrals as contact notes"),
    Table("document", "Documents", _cols("""
        doc_id int D pk
        pat_id int D req fk=patient
        doc_dttm datetime D
        category lookup D lookup=DOCCAT
        img_type enum H enum=R|P|D|F|A
        description str D
        file_path str D
        file_name str D
        file_ext str D
        mime_type str D
        file_size int D
        tooth_list str H
        prov_id code H fk=provider
        series_id str D
        source str D
        signed_flg bool D
        embed_b64 memo D
        deleted_flg bool D
        note memo D
    """), patient_via="pat_id", target="file", target_detail="HighLevel files linked to the Contact"),
    Table("userfld", "User-defined field definitions", _cols("""
        field_id int R pk
        field_name str R
        field_type enum R enum=T|L|D|C|N
        picklist str R
        sort int R
        hidden_flg bool R
    """), target="contact.custom_field", target_detail="Contact custom field definitions"),
    Table("patudf", "User-defined field values", _cols("""
        pat_id int D pk fk=patient
        field_id int D pk fk=userfld
        value memo D
    """), patient_via="pat_id", target="contact.custom_field",
          target_detail="Contact custom field values"),
]

TABLES: dict[str, Table] = {t.name: t for t in _T}


def table(name: str) -> Table:
    """The canonical table called ``name``; the error lists the valid names."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown canonical table {name!r}; valid: {', '.join(TABLES)}") from None


def patient_scoped_tables() -> list[Table]:
    """Tables whose rows belong to one patient (and so to one shard), parents first."""
    return [t for t in _T if t.patient_scoped]
