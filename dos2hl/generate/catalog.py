"""The practice's reference catalogues: code categories and areas, custom and retired procedure
codes, recall types, marketing channels and user-defined field definitions."""

from __future__ import annotations

_CAT = {
    "0": "DIAG",
    "1": "PREV",
    "2": "REST",
    "3": "ENDO",
    "4": "PERIO",
    "5": "PROSR",
    "7": "OS",
    "8": "ORTHO",
    "9": "ADJ",
}
_AREA = {"mouth": "M", "tooth": "T", "surface": "S", "quad": "Q", "arch": "A", "sextant": "X", "range": "R"}
CUSTOM_CODES = (
    ("BROKEN", "Broken appointment", "M", 25),
    ("NC", "No-charge visit", "M", 0),
    ("X1234", "Office special", "M", 99),
    ("WHTKIT", "Take-home whitening kit", "A", 350),
    ("SPGRD", "Sports guard", "A", 150),
    ("COPYREC", "Records copy fee", "M", 25),
)
RETIRED = (("D1203", "Fluoride, child (retired)", 30, 45), ("D1204", "Fluoride, adult (retired)", 30, 45))
LOOKUPS: dict[str, tuple[str, ...]] = {
    "BILLTYPE": ("STD", "PRECOL", "COLL", "NOSTMT", "INSONLY"),
    "PAYTYPE": ("CASH", "CHK", "VISA", "MC", "AMEX", "DISC", "DEBIT", "EFT", "CRCR", "OTHER"),
    "ADJTYPE": (
        "PROFDISC-",
        "CASHDISC-",
        "SRDISC-",
        "REFDISC-",
        "INSWO-",
        "BADDEBT-",
        "MISC+",
        "MISCCR-",
        "BRKFEE+",
        "NSF+",
        "RETCHK+",
        "REFUND+",
        "FINCHG+",
        "XFER",
    ),
    "CONFIRM": ("UNC", "LMAM", "CNF", "LMFAM", "NOHOME", "DISC", "BUSY", "TXTCNF", "EMCNF"),
    "APPTTYPE": ("NP", "RCL", "PERIO", "TX", "EMER", "CONS", "POST", "ORTHO"),
    "DOCCAT": (
        "XBW",
        "XPA",
        "XFMX",
        "XPANO",
        "CBCT",
        "PHIO",
        "PHEO",
        "CONSENT",
        "INSCF",
        "INSCB",
        "MEDHX",
        "TXPL",
        "EOB",
        "REFLTR",
        "IDCARD",
        "OTHER",
    ),
    "NOTETYPE": ("PROG", "EXAM", "PERIO", "TX", "MED", "RX", "PHONE", "LAB", "ADMIN"),
    "RECCNT": ("LM", "LMFAM", "NA", "BADPH", "MAILED", "TXT", "EMAIL", "PTCALL", "CALLBK", "DND", "SCHED"),
    "DENIAL": ("FREQ", "NOTCOV", "MAXMET", "WAIT", "NEEDINFO", "DUP", "ELIG", "MISSTOOTH"),
    "TXPRI": ("1", "2", "3", "NEXT", "WAIT", "LOW"),
    "RELTYPE": ("SELF", "SPOUSE", "CHILD", "DEP", "OTHER"),
}
RECALL_TYPES = (
    ("PRO", "Adult prophy", "6M", "D0120, D1110", 6),
    ("CHPRO", "Child prophy", "6M", "D0120, D1120, D1208", 4),
    ("PERIO", "Perio maintenance", "3M", "D4910", 6),
    ("EXAM", "Annual exam", "1Y", "D0150", 2),
    ("BWX", "Bitewings", "1Y", "D0272, D0274", 1),
    ("PANO", "Panoramic", "5Y", "D0330", 1),
    ("FMX", "Full-mouth series", "5Y", "D0210", 2),
)
MKT_CHANNELS = (
    ("Google", 35),
    ("Insurance directory", 15),
    ("Facebook/Instagram", 10),
    ("Yelp", 8),
    ("Drive-by/sign", 10),
    ("Mailer", 5),
    ("Other", 17),
)
UDF_DEFS = (
    ("Preferred Language", "L", "English|Spanish|Portuguese|Chinese|Other"),
    ("Favorite Hygienist", "T", ""),
    ("School", "T", ""),
    ("Emergency Contact", "T", ""),
    ("Ortho Start Date", "D", ""),
    ("Marketing Opt-out", "C", ""),
    ("Pharmacy", "T", ""),
    ("Last Medical Update", "D", ""),
    ("Copay Amount", "N", ""),
)
