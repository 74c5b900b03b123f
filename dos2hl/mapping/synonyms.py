"""The matcher's vocabulary: dental and CRM synonyms and abbreviations (data only, no logic).

Three layers, from the smallest unit up, because vendors rename at every level:

- ``TOKEN_SYNONYMS``: one word or abbreviation -> its normal form (one or more words). Both the source
  header and the canonical phrases are normalised with it, so ``PatLast``, ``Pt_Surname`` and
  ``LNAME`` all meet at ``patient last name`` / ``last name``.
- ``COLUMN_SYNONYMS``: per canonical column name (shared by every table that has the column), extra
  phrases a vendor may use for it. The canonical name itself is always a phrase too.
  ``TABLE_COLUMN_SYNONYMS`` adds phrases that only make sense in one table (``status`` of a claim).
- ``TABLE_SYNONYMS``: file-name stems per canonical table (``Patients``, ``pt``, ``sched`` ...).

``NOISE_TOKENS`` carry no meaning for matching (``flg``, ``is``); ``TABLE_CONTEXT`` lists the words a
vendor prefixes a table's columns with (``Pat``/``Pt`` in a patient file), which the matcher may drop.
"""

from __future__ import annotations

__all__ = [
    "TOKEN_SYNONYMS", "COLUMN_SYNONYMS", "TABLE_COLUMN_SYNONYMS", "TABLE_SYNONYMS", "NOISE_TOKENS",
    "TABLE_CONTEXT", "NUMBER_RANGES",
]


def _parse(spec: str) -> dict[str, tuple[str, ...]]:
    """``key: phrase; phrase`` lines -> {key: phrases} (compact to write, easy to review)."""
    out: dict[str, tuple[str, ...]] = {}
    for raw in spec.strip().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(":")
        out[key.strip()] = tuple(p.strip() for p in rest.split(";") if p.strip())
    return out


def _tokens(spec: str) -> dict[str, str]:
    """``normal: variant variant`` lines -> {variant: normal} (the normal maps to itself)."""
    out: dict[str, str] = {}
    for raw in spec.strip().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        normal, _, rest = line.partition(":")
        normal = normal.strip()
        for v in rest.split():
            out[v] = normal
        out.setdefault(normal.replace(" ", ""), normal) if " " in normal else out.setdefault(normal, normal)
    return out


# normal form: variants (a normal form may be several words: a compound abbreviation expands)
TOKEN_SYNONYMS: dict[str, str] = _tokens("""
    patient: pat pt pts pnt ptnt patients patnt client clt
    id: num number nbr no nr nmbr key ids pk seqno
    last: lst family fam sur
    last name: surname lname lastname lastnm lnm familyname
    first: fst given giv fore
    first name: fname firstname firstnm fnm givenname forename
    middle initial: mi midinit middleinitial mname
    middle: mid mdl
    initial: init inits initials
    name: nm nme
    preferred: pref nick nickname preferredname goesby alias
    suffix: sfx suf
    title: salutation honorific ttl prefix
    sex: gender gndr gend sx
    birth date: dob birthdate bdate bday birthday birthdt dateofbirth
    birth: born brth
    date: dt dte dat day
    time: tm tim hr
    datetime: dttm timestamp ts stamp
    ssn: socsec socialsecurity ssno sin
    social: soc
    marital: maritalstatus married martial mar
    address: addr adr addres adress street str streetaddress
    address 1: addr1 address1 street1 line1 adr1
    address 2: addr2 address2 street2 line2 adr2 apt suite
    city: town cty municipality
    state: st province prov_st region
    zip: zipcode postal postcode postalcode zip5 zipcd
    phone: ph phn phon tel telephone telno fone
    home: hm hom res residence house
    work: wk wrk business bus biz
    cell: mobile mob cel cellular wireless cellphone mobil
    home phone: hphone homephone hmphone
    work phone: wphone workphone wkphone bphone busphone
    cell phone: cphone mphone mobilephone cellno
    ext: extension xtn extn
    email: mail emailaddress emailaddr eml emal
    fax: facsimile fx
    contact: cont cntct contct
    method: meth mthd way
    text: txt sms texting msg message
    ok: allowed allow consent optin permission permit okay yes
    guarantor: guar grntr gtor guarant resp_party respparty
    relationship: rel relation relat reln relto relationship_to
    status: stat sts stts state_code statcd
    provider: dr doctor dentist doc_id_prov dds dmd physician clinician prov
    primary: pri prim prmry main
    secondary: sec scnd second
    hygienist: hyg rdh hygiene hygn
    assistant: asst assist ast da
    bill: billing bil billed
    type: typ kind ty
    fee: charge chg price ucr
    schedule: sched sch schd
    visit: vst visits
    employer: emp empl employer_name
    medical: med medic
    alert: alerts warn warning caution
    premedication: premed premedicate antibiotic
    note: notes nt comment comments cmt memo remark_text nte
    user: usr operator oper staff
    code: cd cde
    balance: bal bals
    current: cur curr cr_bal
    total: tot ttl_amt sum
    insurance: ins insur insurer_est
    estimate: est estim estd estimated
    deceased: dec death died dod
    created: create crt crtd add added entered_on
    modified: mod modify updated upd update changed chg_dt lastmod edited edit
    by: who
    deleted: del delete removed rmvd
    merged: merge mrg
    into: to
    location: loc clinic site branch office ofc locn
    carrier: carr company co insurer inscompany
    payer: pyr payor
    plan: pln plans
    group: grp
    renew: renewal renews anniv anniversary
    month: mo mon mth mnth
    annual: yearly year yr ann
    max: maximum mx maxim limit
    deductible: ded deduct dedct
    individual: ind indiv single
    family: fam_ded
    orthodontic: ortho orth
    percent: pct perc pcnt percentage pc
    preventive: prev preventative prv
    basic: bas
    major: maj
    frequency: freq frq
    subscriber: sub subscr subs insured policyholder holder
    record: rec rcd
    member: mbr memb
    effective: eff start
    effective date: effdt effdate
    termination: term trm terminated termdt end
    release: rel_info relinfo
    info: information inf
    assignment: assign asgn assigned
    benefits: ben bene benefit
    coverage: cov covg
    order: ord ordr rank
    eligibility: elig eligible verification verify verif
    check: chk chq cheque checked
    remaining: remain rem left remaining_amt
    met: satisfied used
    active: act actv enabled
    appointment: appt apt appts appointments visit_id
    operatory: op oper_room chair room operatories opr
    length: len duration dur
    minutes: min mins minute
    confirmation: confirm conf confirmed cnf
    reason: rsn why
    new: nw
    planned: pln_from plan_from planned_from
    from: frm
    cancel: cancelled canceled cancellation cxl canc cncl
    arrived: arrive arrival arr checkin
    seated: seat seating
    dismissed: dismiss dismissal checkout discharged
    procedure: proc procs procedure_code cdt prc procedures
    tooth: th teeth tth toothnum tooth_no
    surface: surf surfaces srf sfc
    sequence: seq sequ seqn ordinal
    item: itm line_item
    treatment: tx treat trt trmt treatmnt
    treatment plan: txplan tp_plan treatplan treatmentplan
    treatment item: txitem treatitem
    transaction: trans tran txn trn transact
    presented: present presn shown
    signed: sgn signoff
    signature: sig sign_data signat
    document: doc docs documents
    phase: ph_no stage
    priority: prio prty urgency
    diagnosis: dx diag diagnostic
    discount: disc dsc
    completed: complete comp cmpl cmp done
    clinical: clin clinic_note
    entered: entry entered_by_user enterer
    format: fmt frmt
    locked: lock lck
    amends: amend amended amendment revises
    void: voided vd
    communication: comm comms communications correspondence
    communication log: commlog commlogs
    mode: channel medium via
    direction: dir inout
    amount: amt amnt amount_amt
    payment: pay pmt paymt pymnt
    adjustment: adj adjust
    applies: apply applied alloc allocated
    reverses: reverse reversal reversed rev
    deposit: dep dpst batch
    description: desc descr descrip dscr
    claim: clm claims
    line: ln lines
    service: svc serv srv
    sent: send snt submitted
    original: orig org
    received: recv rcvd recd rcv
    billed: bld
    write off: wo writeoff wrtoff
    responsibility: resp portion
    identifier: ident identification
    attachment: attach att attch
    narrative: narr narrtv
    denial: deny denied
    resubmit: resubmission resub resent
    allowed_amt: allowable
    paid: pd
    remarks: rmk remark rmks eob_remarks
    recall: rcl recalls reminder
    interval: intvl intrvl int_period period
    due: duedate
    calculated: calc calcd computed
    attempts: tries tried
    disabled: disable dis
    until: till thru
    referral: ref refer referred referring referrer referrals
    practice: prac practice_name firm
    specialty: spec specialty_code speciality
    out: outbound outgoing
    source: src
    image: img imaging picture
    path: folder directory filepath location_path
    file: fil fle
    extension: ext_file
    mime: mimetype content_type contenttype
    size: sz bytes filesize length_bytes
    series: mount srs
    embedded: embed b64 base64 blob inline
    field: fld fields
    hidden: hide hid invisible
    picklist: pick_list options choices
    value: val vals
    default: def dflt deflt
    abbreviation: abbr abbrev short shortname
    hygiene: hyg_flag
    sort: sortorder sort_order display_order disp_order position pos
    label: lbl
    category: cat categ cls class
    area: treatarea
    retired: retire obsolete deprecated
    sign: polarity plus_minus
    credential: cred creds credentials degree
    license: lic licence lisc
    tax: tin_tax
    npi: national_provider_id
    color: colour clr
    hire: hired hiredate start_dt
    login: logon username user_name userid
    claim line: claimln claimline
    procedure code: proccode proccodes procedurecode procedurecodes
    appointment procedure: apptproc apptprocs
    recall type: recalltyp recalltype recalltypes
    referral source: refsrc refsource
    patient referral: patref patrefs
    insurance subscriber: inssub inssubs
    insurance plan: insplan insplans
    patient insurance: patins patplan patplans
    insurance carrier: insco inscos
    user field: userfld userfield userfields
    patient user field: patudf patfield patfields
    clinical note: clinnote clinnotes procnote procnotes
    timezone: tz time_zone zone
    units: unit
""")

#: two numbers in a row (``Bal_31_60``) are an A/R aging bucket: the bucket's canonical token
NUMBER_RANGES: dict[str, str] = {
    "0 30": "current", "1 30": "current", "0 29": "current", "30 59": "30", "30 60": "30", "31 60": "30",
    "60 89": "60", "60 90": "60", "61 90": "60", "90 119": "90", "90 120": "90", "91 120": "90",
}

#: tokens that say nothing about which column it is (dropped unless nothing else is left)
NOISE_TOKENS: frozenset[str] = frozenset({
    "flg", "flag", "is", "yn", "bool", "the", "of", "for", "cd_flag", "fld_", "f", "ind_flag", "has", "over",
    "plus", "days", "older", "than", "gt",
})

# Phrases per canonical column name: the canonical name is always matched too (EXPORT_FORMAT.md).
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = _parse("""
    active_flg: active; is active; enabled; status active; inactive flag
    addr1: address; street address; address line 1; street 1; mailing address
    addr2: address line 2; apartment; suite; unit; street 2
    adj_code: adjustment type; adjustment code; adjustment reason
    allowed: allowed amount; allowed fee; allowable
    amends_note_id: amended note; revision of; previous note id; prior version
    amount: amount; transaction amount; value; total
    annual_max: annual maximum; yearly max; benefit max; plan maximum
    applies_to_id: applied to; allocated to charge; applies to transaction
    appt_date: appointment date; scheduled date; date; visit date
    appt_id: appointment id; appointment number; apt id
    appt_name: patient name; appointment name; display name
    appt_time: appointment time; start time; time
    appt_type: appointment type; visit type; category
    arrived_tm: arrival time; check in time; time arrived
    asst_id: assistant; assistant id; dental assistant
    assign_ben: assignment of benefits; assign benefits; benefits assigned
    attach_flg: has attachment; attachment flag; attachments
    attach_id: attachment id; attachment reference; nea number
    bal_30: balance 30; over 30; 31 60 days; aging 30
    bal_60: balance 60; over 60; 61 90 days; aging 60
    bal_90: balance 90; over 90; 90 plus; aging 90
    bal_cur: current balance; balance current; aging current; 0 30 days
    bal_total: total balance; balance; account balance; estimated balance
    bill_prov_id: billing provider; billing dentist
    bill_type: billing type; bill type; statement type
    billed_amt: billed amount; claim fee; total billed; charges
    birthdate: date of birth; birth date; dob; birthday
    calc_due_dt: calculated due date; computed due date; date due calculated
    cancel_dt: cancel date; cancelled date; cancellation date
    cancel_reason: cancellation reason; cancel reason; reason cancelled
    carrier_id: carrier id; insurance company id; carrier number
    carrier_name: carrier name; insurance company; company name; carrier
    category: category; class; type; group
    chart_no: chart number; chart; chart id; account number
    check_dt: check date; payment date; eft date
    check_no: check number; cheque number; reference number
    city: city; town
    claim_id: claim id; claim number
    claim_ident: claim identifier; practice claim id; claim ref
    claim_type: claim type; primary secondary
    claimln_id: claim line id; claim procedure id; claim line number
    code: code; value code; definition code
    color: color; colour; display color
    comm_dttm: communication date time; date time; contact date; sent date
    comm_id: communication id; log id; commlog id
    comm_type: communication type; subject; regarding; topic
    completed_dt: completed date; date completed; completion date
    confirm: confirmation status; confirmed; confirmation
    contact_attempts: contact attempts; number of attempts; contact count; times contacted
    contact_stat: contact status; recall contact status; last contact result
    cov_order: coverage order; ordinal; priority; primary secondary
    cphone: cell phone; mobile phone; wireless phone; cell; mobile
    created_by: created by; entered by; user; added by
    created_dt: created date; date created; entry date; date entered; created on
    cred: credentials; credential; degree; suffix
    deceased_dt: deceased date; date of death; death date
    ded: deductible; deductible applied
    ded_applied: deductible applied; deductible
    ded_fam: family deductible; deductible family
    ded_ind: individual deductible; deductible individual; deductible single; deductible
    ded_met: deductible met; deductible used
    def_dds_id: default dentist; default provider; dentist
    def_fee: default fee; standard fee; ucr fee; fee
    def_hyg_id: default hygienist; hygienist
    def_interval: default interval; interval
    deleted_flg: deleted; is deleted; removed
    denial_code: denial code; denial reason; rejection code
    deposit_id: deposit id; deposit batch; batch number
    description: description; descript; text; desc
    direction: direction; in out; sent received
    disable_until: disabled until; suppress until; snooze until
    disabled_flg: disabled; suppressed; is disabled
    discount: discount; discount amount
    dismissed_tm: dismissed time; checkout time; time dismissed
    doc_dttm: document date; date taken; acquired date; image date; created date
    doc_id: document id; image id; file id
    dos: date of service; service date; procedure date
    due_dt: due date; date due; next due
    dx: diagnosis; diagnosis code; dx code
    eff_dt: effective date; start date; coverage start
    elig_by: verified by; checked by; eligibility checked by
    elig_check_dt: eligibility check date; verified date; date verified; eligibility date; last verified
    elig_note: eligibility note; verification note
    elig_stat: eligibility status; verification status; verified; eligibility
    email: email; email address; e mail
    email_ok: email allowed; email consent; email opt in; can email
    embed_b64: embedded data; base64 data; raw base64; file data
    employer: employer; employer name; company; work place
    employer_name: employer name; employer; company
    entered_by: entered by; user; operator; created by
    est_ins: estimated insurance; insurance estimate; ins est
    est_ins_amt: estimated insurance amount; insurance estimate
    est_ins_pri: primary insurance estimate; est primary insurance
    est_ins_sec: secondary insurance estimate; est secondary insurance
    est_pat: patient portion; estimated patient; patient estimate
    fax: fax; fax number; fax phone
    fee: fee; amount; charge; procedure fee
    fee_billed: fee billed; billed fee; submitted amount; billed
    fee_sched: fee schedule; fee table
    field_id: field id; field number; custom field id; user field id
    field_name: field name; label; custom field name; name
    field_type: field type; data type; type
    file_ext: file extension; extension; file type
    file_name: file name; filename; document name
    file_path: file path; folder; directory; path
    file_size: file size; size; bytes
    first_visit: first visit; first visit date; date first visit
    fname: first name; given name; forename; first
    freq_notes: frequency notes; frequencies; frequency limitations
    group_name: group name; plan name; group
    group_no: group number; group id; policy group
    group_npi: group npi; billing npi; organisation npi
    guar_id: guarantor; guarantor id; responsible party; head of household
    hidden_flg: hidden; is hidden; hide
    hire_dt: hire date; date hired; start date
    home_loc_id: home location; default location; primary location
    hphone: home phone; phone home; residence phone; phone
    hyg_id: hygienist; hygienist id
    hyg_prov: hygienist; secondary provider; hygiene provider
    img_type: image type; document type; kind
    ins_est: insurance estimate; estimated insurance; ins pending
    interval: interval; recall interval; frequency
    is_billing: billing provider; is billing; bills
    is_hyg: hygiene; is hygiene; hygiene flag; hyg
    is_new_pat: new patient; is new patient
    label: label; description; short description; abbreviation
    last_contact_dt: last contact date; date last contacted; last contacted
    last_dt: last date; previous date; date last done
    last_visit: last visit; last visit date; date last seen; last seen
    length_min: length; duration; minutes; length minutes; pattern
    lic_st: license state; licensed state; state of license
    line_no: line number; line; sequence
    line_stat: line status; status
    lname: last name; surname; family name; last
    loc_id: location; location id; clinic; office; site
    loc_name: location name; clinic name; office name; description
    locked_flg: locked; is locked
    login: login; user name; username; logon
    marital: marital status; married; position
    med_alert: medical alert; medical alerts; medical urgent; alerts
    member_id: member id; subscriber id; policy number; insured id
    merged_into_id: merged into; merged to; surviving patient
    mi: middle initial; middle name; initial
    mime_type: mime type; content type; media type
    mode: mode; contact method; channel; comm mode
    modified_dt: modified date; last modified; date modified; updated; last updated
    name: name; display name; full name; referral name
    narrative: narrative; claim note; explanation
    note: note; notes; comment; comments; memo
    note_dt: note date; date; entry date
    note_fmt: note format; format; text format
    note_id: note id; progress note id
    note_text: note text; text; body; note
    note_tm: note time; time; entry time
    note_type: note type; category; type
    npi: npi; national provider identifier; npi number
    op_abbr: abbreviation; short name; operatory abbreviation
    op_id: operatory; operatory id; chair; room
    op_name: operatory name; name; room name
    orig_sent_dt: original sent date; first sent; originally sent
    ortho_max: orthodontic maximum; ortho lifetime max; ortho max
    out_status: referral out status; status; referred status
    paid: paid; paid amount; insurance paid
    paid_amt: paid amount; insurance paid; amount paid; total paid
    pat_id: patient id; patient number; patient; account id
    pat_member_id: patient member id; dependent member id; patient subscriber id
    pat_note: patient note; note; notes; comments; family urgent note
    pat_resp_amt: patient responsibility; patient portion; patient owes
    pat_stat: patient status; status; active status
    patins_id: patient insurance id; patplan id; coverage id
    patref_id: patient referral id; referral attachment id; refattach id
    pay_method: payment method; payment type; tender type; paid by
    payer_claim_no: payer claim number; carrier claim number; icn
    payer_id: payer id; electronic id; eid; electronic payer id
    pct_basic: percent basic; basic percent; basic coverage
    pct_major: percent major; major percent; major coverage
    pct_ortho: percent orthodontic; ortho percent; ortho coverage
    pct_prev: percent preventive; preventive percent; preventive coverage
    phase: phase; treatment phase; stage
    phone: phone; phone number; telephone
    picklist: picklist; pick list; options; choices
    plan_id: plan id; insurance plan id; plan number
    plan_name: plan name; treatment plan name; heading; title
    plan_note: plan note; plan notes; plan comments
    plan_type: plan type; insurance type; coverage type
    planned_from_id: planned from; next appointment of; source appointment
    post_dttm: posted date time; post date; entry date time; date posted
    practice: practice; practice name; office name; clinic name
    pref_contact: preferred contact method; contact method; preferred contact
    pref_name: preferred name; nickname; goes by
    premed: premedication; premed required; premedicate
    presented_dt: presented date; date presented
    pri_prov: primary provider; provider; dentist; primary dentist
    priority: priority; treatment priority
    proc_code: procedure code; code; cdt code; ada code
    proc_codes: procedure codes; codes; cdt codes
    prov_id: provider; provider id; dentist; doctor
    prov_type: provider type; type; role
    reason: reason; procedure description; appointment reason; description
    recall_id: recall id; recall number
    recall_type: recall type; type
    recv_dt: received date; date received
    ref_dt: referral date; date referred
    ref_id: referral source id; referral id; referrer id; referral
    ref_kind: referral type; referral kind; source type
    ref_pat_id: referring patient; referred by patient; patient id
    rel_info: release of information; release info; signature on file
    rel_to_guar: relationship to guarantor; relationship; relation
    rel_to_sub: relationship to subscriber; relationship; relation
    remain_max: remaining maximum; benefits remaining; remaining benefits
    remarks: remarks; eob remarks; remark codes
    renew_month: renewal month; benefit year start; month renews
    resubmit_of: resubmission of; original claim; replaces claim
    retired_dt: retired date; date retired; end date
    reverses_id: reverses; reversal of; voids transaction
    sched_appt_id: scheduled appointment; appointment id; appointment
    seated_tm: seated time; time seated
    sent_dt: sent date; date sent; submitted date
    seq: sequence; order; line; item number
    series_id: series id; mount id; series
    sex: sex; gender
    sig_data: signature data; signature; signature image
    sign: sign; plus minus; debit credit
    signed_by_name: signed by; signer name; signed by name
    signed_dt: signed date; date signed; signature date
    signed_flg: signed; is signed; signature on file
    sort: sort; sort order; display order; item order
    source: source; image source; capture source; device
    source_text: source text; referral text; how heard; referred by text
    specialty: specialty; speciality
    ssn: social security number; ssn; social security
    st: state; state code; province
    state_lic: state license; license number; license
    status: status; state
    sub_note: subscriber note; subscriber notes
    sub_rec_id: subscriber record id; subscriber id; insurance subscriber id
    subscriber_pat_id: subscriber patient id; subscriber; insured patient id; subscriber id
    suffix: suffix; name suffix
    surf: surface; surfaces
    svc_dt: service date; date of service
    tax_id: tax id; tin; ein; federal tax id
    term_dt: termination date; term date; end date
    time_units: time units; units; length units
    tin_ssn: tin or ssn; provider ssn; tax id number
    title: title; salutation; prefix
    tooth: tooth; tooth number; tooth num
    tooth_list: tooth list; teeth; tooth numbers
    total_fee: total fee; total; plan total
    trans_dt: transaction date; date; service date; effective date
    trans_id: transaction id; ledger id; transaction number
    trans_type: transaction type; type; entry type
    treat_area: treatment area; area
    treat_prov_id: treating provider; treating dentist; rendering provider
    txitem_id: treatment item id; treatment plan item; planned procedure id
    txplan_id: treatment plan id; treatment plan number
    txt_ok: text ok; text allowed; sms consent; can text
    tz: time zone; timezone
    user: user; staff; user name
    user1: user 1; custom 1; user defined 1
    user2: user 2; custom 2; user defined 2
    user3: user 3; custom 3; user defined 3
    user4: user 4; custom 4; user defined 4
    user_codes: user codes; patient flags; flags
    value: value; field value; data
    void_flg: void; voided; is void
    wo: write off; writeoff amount
    wo_amt: write off amount; write off
    wphone: work phone; business phone; office phone
    wphone_ext: work phone extension; work extension; extension
    zip: zip; zip code; postal code
""")

# Phrases that only make sense in one table (a generic word such as ``status`` or ``name``).
TABLE_COLUMN_SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "appt": {"status": ("appointment status", "appt status"), "appt_date": ("start date",),
             "note": ("appointment note", "appt note"),
             "created_by": ("scheduled by", "booked by"), "created_dt": ("date scheduled", "booked on"),
             "is_hyg": ("hygiene appointment",)},
    "claim": {"status": ("claim status",), "note": ("claim note",), "created_dt": ("date created",)},
    "txplan": {"status": ("plan status", "treatment plan status"), "note": ("plan note",),
               "created_dt": ("plan date",)},
    "txitem": {"status": ("procedure status", "item status")},
    "recall": {"status": ("recall status",), "note": ("recall note",)},
    "ledger": {"note": ("transaction note",), "description": ("transaction description",),
               "entered_by": ("posted by",)},
    "commlog": {"note": ("communication note", "message"), "user": ("entered by", "user name", "staff")},
    "refsrc": {"name": ("source name", "referral name", "display name"), "note": ("referral note",),
               "lname": ("referrer last name",), "fname": ("referrer first name",)},
    "patref": {"note": ("referral note",)},
    "document": {"description": ("document description", "title"), "note": ("document note",),
                 "source": ("image source",)},
    "lookup": {"description": ("definition", "item name"), "category": ("definition category", "list")},
    "recalltyp": {"description": ("recall description",)},
    "provider": {"lname": ("provider last name",), "fname": ("provider first name",),
                 "phone": ("provider phone",), "email": ("provider email",)},
    "location": {"phone": ("office phone", "location phone")},
    "insco": {"phone": ("carrier phone",)},
    "apptproc": {"fee": ("procedure fee",)},
    "patudf": {"value": ("field value",)},
}

# File stems per table (besides the canonical stem itself).
TABLE_SYNONYMS: dict[str, tuple[str, ...]] = _parse("""
    location: locations; clinic; clinics; office; offices; site; sites; practice locations
    provider: providers; doctors; dentists; staff providers; prov; dr
    operatory: operatories; ops; op; chairs; rooms; operatory list
    proccode: procedure codes; procedurecode; proc codes; cdt; fee list; procedure list; procs
    lookup: lookups; definitions; definition; codes; code table; pick lists; def
    patient: patients; pt; pts; pat; pats; patient list; patient demographics; clients
    insco: insurance companies; carriers; carrier; insurance carriers; ins co; payers
    insplan: insurance plans; plans; ins plan; insplans; employer plans
    inssub: insurance subscribers; subscribers; subscriber; ins sub; policy holders
    patins: patient insurance; patient plans; patplan; coverage; eligibility; pat ins
    appt: appointments; appointment; appts; schedule; sched; apt; calendar
    apptproc: appointment procedures; appt procs; scheduled procedures; appt proc
    txplan: treatment plans; treatment plan; tx plans; treatplan; tx plan
    txitem: treatment plan items; treatment items; tx items; planned procedures; proctp; tx item
    clinnote: clinical notes; progress notes; chart notes; clin notes; procnote; notes
    commlog: communication log; comm log; communications; contact log; correspondence
    ledger: transactions; ledger entries; account history; payments; charges; ar; journal
    claim: claims; insurance claims; ins claims
    claimln: claim lines; claim procedures; claimproc; claim items; claim detail
    recalltyp: recall types; recalltype; recall type; continuing care types
    recall: recalls; continuing care; reminders; recall list
    refsrc: referral sources; referrals; referral; referrers; referral source
    patref: patient referrals; refattach; patient referral; referral links
    document: documents; images; docs; image index; attachments; files
    userfld: user fields; custom fields; field definitions; patfielddef; user defined fields
    patudf: patient user fields; custom field values; patfield; user field values; patient custom fields
""")

#: words a vendor may put in front of a table's columns (``PatLast``, ``ApptDate``), per table.
TABLE_CONTEXT: dict[str, tuple[str, ...]] = {
    "patient": ("patient",), "provider": ("provider",), "location": ("location",),
    "operatory": ("operatory",), "proccode": ("procedure",), "insco": ("carrier", "insurance"),
    "insplan": ("plan", "insurance"), "inssub": ("subscriber", "insurance"),
    "patins": ("insurance", "patient"),
    "appt": ("appointment",), "apptproc": ("appointment", "procedure"), "txplan": ("treatment", "plan"),
    "txitem": ("treatment", "item"), "clinnote": ("note", "clinical"), "commlog": ("communication",),
    "ledger": ("transaction",), "claim": ("claim",), "claimln": ("claim", "line"), "recall": ("recall",),
    "recalltyp": ("recall",), "refsrc": ("referral",), "patref": ("referral",), "document": ("document",),
    "userfld": ("field",), "patudf": (), "lookup": ("lookup",),
}
