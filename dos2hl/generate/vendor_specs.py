"""The vendor styles' specs (data only; the format is explained in ``vendors.py``).

Four styles the proposer was tuned on, and a holdout written after tuning (``holdout`` True), which is
never tuned on: its score is the honest one.
"""

from __future__ import annotations

__all__ = ["SPECS"]

# PascalCase CRM-style export: three files, coverage flattened, codes joined by "; "
_PASCAL = """
file patient = Patients.csv
patient.pat_id = PatientId
patient.chart_no = ChartNumber
patient.lname = LastName
patient.fname = FirstName
patient.mi = MiddleInitial
patient.pref_name = NickName
patient.sex = Gender
patient.birthdate = DateOfBirth
patient.marital = MaritalStatus
patient.addr1 = Street
patient.addr2 = Street2
patient.city = City
patient.st = State
patient.zip = PostCode
patient.hphone = HomePhone
patient.wphone = WorkPhone
patient.cphone = MobilePhone
patient.email = EmailAddress
patient.guar_id = GuarantorId
patient.pat_stat = PatientStatus
patient.pri_prov = PrimaryDentist
patient.first_visit = FirstVisit
patient.last_visit = LastVisit
patient.med_alert = MedicalAlert
patient.bal_total = Balance
patient.created_dt = CreatedOn
+ flag = PortalActive
+ text = PreferredLanguage

file patins = InsuranceCoverage.csv
patins.pat_id = PatientId
patins.cov_order = Priority
patins.rel_to_sub = RelationshipToSubscriber
patins.elig_stat = EligibilityStatus
patins.elig_check_dt = EligibilityCheckedOn
patins.remain_max = RemainingBenefit
patins.ded_met = DeductibleMet
inssub.member_id = SubscriberId
inssub.eff_dt = EffectiveDate
insplan.group_no = GroupNumber
insplan.group_name = GroupName
insplan.employer_name = Employer
insplan.plan_type = PlanType
insplan.annual_max = AnnualMaximum
insplan.ded_ind = Deductible
insco.carrier_name = CarrierName
insco.payer_id = PayerId
insco.phone = CarrierPhone
+ int = VerificationBatch

file appt = Appointments.csv
appt.appt_id = AppointmentId
appt.pat_id = PatientId
appt.appt_date = StartDate
appt.appt_time = StartTime
appt.length_min = Duration
appt.status = Status
appt.prov_id = ProviderId
appt.op_id = ChairId
appt.reason = Reason
appt.note = Notes
appt.is_new_pat = NewPatient
appt.created_dt = CreatedOn
apptproc.proc_code[; ] = ProcedureCodes
+ flag = ReminderSent

file provider = Providers.csv
provider.prov_id = ProviderId
provider.lname = LastName
provider.fname = FirstName
provider.npi = Npi
provider.specialty = Specialty
"""

# snake_case with the patient split over demographics and contacts; pipe-delimited; codes joined by ","
_SNAKE = """
file patient = patient_demographics.csv
patient.pat_id = patient_id
patient.chart_no = chart_num
patient.lname = surname
patient.fname = given_name
patient.mi = middle_initial
patient.pref_name = preferred_name
patient.sex = gender
patient.birthdate = birth_date
patient.marital = marital_status
patient.guar_id = guarantor_id
patient.pat_stat = patient_status
patient.pri_prov = primary_provider
patient.first_visit = first_visit_date
patient.last_visit = last_visit_date
patient.med_alert = medical_alerts
patient.bal_total = account_balance
patient.created_dt = date_created
+ text = preferred_language

file patient = patient_contacts.csv
patient.pat_id = patient_id
patient.addr1 = street_address
patient.addr2 = address_line_2
patient.city = city
patient.st = state_code
patient.zip = postal_code
patient.hphone = home_phone
patient.wphone = work_phone
patient.cphone = cell_phone
patient.email = email
+ flag = do_not_mail

file patins = insurance_eligibility.csv
patins.pat_id = patient_id
patins.cov_order = coverage_rank
patins.rel_to_sub = relationship
patins.elig_stat = eligibility
patins.elig_check_dt = eligibility_date
patins.remain_max = benefits_remaining
patins.ded_met = deductible_met
inssub.member_id = subscriber_id
inssub.eff_dt = coverage_start
insplan.group_no = group_number
insplan.group_name = group_name
insplan.employer_name = employer
insplan.plan_type = plan_type
insplan.annual_max = annual_max
insplan.ded_ind = individual_deductible
insco.carrier_name = insurance_company
insco.payer_id = payer_id
insco.phone = insurance_phone
+ text = verified_via

file appt = appointment_schedule.csv
appt.appt_id = appointment_id
appt.pat_id = patient_id
appt.appt_date = appt_date
appt.appt_time = start_time
appt.length_min = minutes
appt.status = appt_status
appt.prov_id = provider_code
appt.op_id = operatory_code
appt.reason = visit_reason
appt.note = appt_note
appt.is_new_pat = new_patient_flag
appt.created_dt = date_booked
apptproc.proc_code[,] = cdt_codes
+ date = confirmation_sent

file location = location_list.csv
location.loc_id = location_code
location.loc_name = location_name
location.city = city
location.phone = phone
"""

# UPPER terse abbreviations, tab-delimited .TXT files, codes joined by a space
_UPPER = """
file patient = PAT.TXT
patient.pat_id = PATNO
patient.chart_no = CHARTNO
patient.lname = LNAME
patient.fname = FNAME
patient.mi = MINIT
patient.pref_name = NICKNM
patient.sex = SEX
patient.birthdate = DOB
patient.marital = MARSTAT
patient.addr1 = ADDR1
patient.addr2 = ADDR2
patient.city = CITY
patient.st = STATE
patient.zip = ZIP
patient.hphone = HPHONE
patient.wphone = WPHONE
patient.cphone = CELL
patient.email = EMAIL
patient.guar_id = GUARNO
patient.pat_stat = PATSTAT
patient.pri_prov = PROVNO
patient.first_visit = FVISITDT
patient.last_visit = LVISITDT
patient.med_alert = MEDALRT
patient.bal_total = BALANCE
patient.created_dt = ENTRYDT
+ text = LANGCD
+ flag = STMTHOLD

file patins = INSCOV.TXT
patins.pat_id = PATNO
patins.cov_order = COVORD
patins.rel_to_sub = RELSUB
patins.elig_stat = ELIGSTAT
patins.elig_check_dt = ELIGDT
patins.remain_max = REMMAX
patins.ded_met = DEDMET
inssub.member_id = SUBSCRID
inssub.eff_dt = EFFDT
insplan.group_no = GRPNO
insplan.group_name = GRPNAME
insplan.employer_name = EMPLOYER
insplan.plan_type = PLNTYPE
insplan.annual_max = ANNMAX
insplan.ded_ind = DEDIND
insco.carrier_name = CARRNAME
insco.payer_id = PAYERID
insco.phone = CARRPHONE
+ int = BATCHNO

file appt = SCHED.TXT
appt.appt_id = APPTNO
appt.pat_id = PATNO
appt.appt_date = APPTDT
appt.appt_time = APPTTM
appt.length_min = LENGTH
appt.status = STATUS
appt.prov_id = PROVNO
appt.op_id = OPNO
appt.reason = REASON
appt.note = NOTE
appt.is_new_pat = NEWPAT
appt.created_dt = ENTRYDT
apptproc.proc_code[ ] = PROCS
+ text = COLORCD

file provider = PROV.TXT
provider.prov_id = PROVNO
provider.lname = LNAME
provider.fname = FNAME
provider.npi = NPI
"""

# Title Case with spaces (a report writer's CSV), patient split, codes joined by ";"
_TITLE = """
file patient = Patient Demographics.csv
patient.pat_id = Patient ID
patient.chart_no = Chart #
patient.lname = Last Name
patient.fname = First Name
patient.mi = Middle Initial
patient.pref_name = Goes By
patient.sex = Sex
patient.birthdate = Birth Date
patient.marital = Marital Status
patient.guar_id = Guarantor
patient.pat_stat = Status
patient.pri_prov = Provider
patient.first_visit = First Visit
patient.last_visit = Last Visit
patient.med_alert = Medical Alert
patient.bal_total = Balance Due
patient.created_dt = Entered On
+ flag = Photo On File

file patient = Patient Address Book.csv
patient.pat_id = Patient ID
patient.addr1 = Address Line 1
patient.addr2 = Address Line 2
patient.city = Town
patient.st = State
patient.zip = Post Code
patient.hphone = Home Phone
patient.wphone = Work Phone
patient.cphone = Mobile Phone
patient.email = E-mail Address
+ flag = Mail Returned

file patins = Coverage Report.csv
patins.pat_id = Patient ID
patins.cov_order = Coverage Order
patins.rel_to_sub = Relation to Subscriber
patins.elig_stat = Eligibility Status
patins.elig_check_dt = Last Verified
patins.remain_max = Remaining Benefits
patins.ded_met = Deductible Satisfied
inssub.member_id = Subscriber ID
inssub.eff_dt = Effective Date
insplan.group_no = Group #
insplan.group_name = Group Name
insplan.employer_name = Employer
insplan.plan_type = Plan Type
insplan.annual_max = Annual Max
insplan.ded_ind = Deductible
insco.carrier_name = Carrier
insco.payer_id = Payer ID
insco.phone = Carrier Phone
+ int = Batch

file appt = Appointment Report.csv
appt.appt_id = Appt ID
appt.pat_id = Patient ID
appt.appt_date = Date
appt.appt_time = Time
appt.length_min = Length
appt.status = Status
appt.prov_id = Provider
appt.op_id = Operatory
appt.reason = Reason
appt.note = Notes
appt.is_new_pat = New Patient?
appt.created_dt = Scheduled On
apptproc.proc_code[;] = Procedures
+ flag = Reminder Sent
"""

# HOLDOUT, written after the proposer was tuned on the four styles above and never tuned on:
# camelCase, semicolon-delimited, patient split, coverage with the patient's own member id and a
# family deductible, codes joined by ", "
_CAMEL = """
file patient = patientList.csv
patient.pat_id = patientNumber
patient.chart_no = chartId
patient.lname = lastName
patient.fname = firstName
patient.mi = middleInitial
patient.pref_name = preferredName
patient.sex = sex
patient.birthdate = birthDate
patient.marital = maritalStatus
patient.ssn = socialSecurityNumber
patient.guar_id = responsiblePartyNumber
patient.pat_stat = patientStatus
patient.pri_prov = primaryProviderCode
patient.hyg_prov = hygienistCode
patient.first_visit = firstVisitDate
patient.last_visit = lastVisitDate
patient.employer = employerName
patient.med_alert = medicalAlerts
patient.created_dt = createdAt
+ text = spokenLanguage
+ flag = hasPortalAccount

file patient = patientAddresses.csv
patient.pat_id = patientNumber
patient.addr1 = addressLine1
patient.addr2 = addressLine2
patient.city = city
patient.st = stateOrProvince
patient.zip = postalCode
patient.hphone = homePhone
patient.cphone = mobilePhone
patient.wphone = businessPhone
patient.email = emailAddress

file patins = eligibilityAndBenefits.csv
patins.pat_id = patientNumber
patins.cov_order = coverageLevel
patins.rel_to_sub = relationToInsured
patins.pat_member_id = patientMemberId
patins.elig_stat = eligibilityStatus
patins.elig_check_dt = verifiedDate
patins.remain_max = remainingMaximum
inssub.member_id = insuredId
inssub.eff_dt = effectiveDate
inssub.term_dt = terminationDate
insplan.group_no = groupNumber
insplan.employer_name = employerName
insplan.plan_type = planType
insplan.annual_max = annualMaximum
insplan.ded_fam = familyDeductible
insco.carrier_name = insuranceCarrier
insco.payer_id = electronicPayerId
insco.phone = carrierPhoneNumber
+ text = verificationMethod

file appt = appointmentList.csv
appt.appt_id = appointmentNumber
appt.pat_id = patientNumber
appt.appt_date = appointmentDate
appt.appt_time = appointmentTime
appt.length_min = durationMinutes
appt.status = appointmentStatus
appt.prov_id = providerCode
appt.hyg_id = hygienistCode
appt.op_id = operatoryCode
appt.reason = appointmentReason
appt.note = appointmentNote
appt.is_new_pat = isNewPatient
appt.cancel_dt = cancelledDate
apptproc.proc_code[, ] = procedureCodes
+ flag = textReminderSent

file provider = providerList.csv
provider.prov_id = providerCode
provider.lname = lastName
provider.fname = firstName
provider.npi = nationalProviderId
provider.email = emailAddress
"""

#: name -> (spec, delimiter, holdout)
SPECS: dict[str, tuple[str, str, bool]] = {
    "pascal_crm": (_PASCAL, ",", False),
    "snake_split": (_SNAKE, "|", False),
    "upper_terse": (_UPPER, "\t", False),
    "title_spaces": (_TITLE, ",", False),
    "camel_holdout": (_CAMEL, ";", True),
}
