"""Word lists the generator samples from: Faker's en_US lists (read once), places, carriers.

Faker is used only as a vocabulary: its provider lists are copied into tuples at import, and every
draw goes through the generator's own ``random.Random`` streams (per-row Faker calls are slow and
would tie reproducibility to Faker's internal RNG).
"""

from __future__ import annotations

from faker.providers.address.en_US import Provider as _Addr
from faker.providers.person.en_US import Provider as _Person

from ..sources.names import split_nickname, split_suffix

__all__ = [
    "LAST_NAMES",
    "FIRST_MALE",
    "FIRST_FEMALE",
    "STREET_SUFFIXES",
    "CITY_PREFIXES",
    "CITY_SUFFIXES",
    "STATES",
    "ZERO_ZIP_STATES",
    "STATE_TZ",
    "NICKNAMES",
    "ACCENTED_FIRST",
    "ACCENTED_LAST",
    "CARRIERS",
    "EMPLOYERS",
    "SUFFIX_CHOICES",
]


def _clean(names: object) -> tuple[str, ...]:
    """Alphabetic names the reader's NM2 splitters leave alone (so truth never looks like a defect)."""
    out = []
    for n in names:  # type: ignore[attr-defined]
        n = str(n)
        if n.isascii() and n.isalpha() and split_suffix(n)[1] is None and split_nickname(n)[1] is None:
            out.append(n)
    return tuple(sorted(set(out)))


LAST_NAMES = _clean(_Person.last_names)
FIRST_MALE = _clean(_Person.first_names_male)
FIRST_FEMALE = _clean(_Person.first_names_female)
STREET_SUFFIXES = tuple(_Addr.street_suffixes)
CITY_PREFIXES = tuple(_Addr.city_prefixes)
CITY_SUFFIXES = tuple(_Addr.city_suffixes)

# state -> (real ZIP range from Faker, real area codes). Any area code is safe: the 555-01xx
# exchange/line range is what keeps the numbers fictional (GENERATOR.md §3).
_AREA = {
    "MA": (413, 508, 617, 781, 978),
    "NJ": (201, 609, 732, 856, 908, 973),
    "CT": (203, 860),
    "RI": (401,),
    "NH": (603,),
    "NY": (212, 315, 518, 585, 716, 914),
    "PA": (215, 412, 610, 717),
    "OH": (216, 513, 614, 937),
    "IL": (217, 312, 630, 847),
    "TX": (214, 512, 713, 210, 817),
    "CA": (213, 415, 619, 916, 714),
    "FL": (305, 407, 813, 904),
    "GA": (404, 706, 912),
    "NC": (704, 919, 336),
    "CO": (303, 719, 970),
    "AZ": (480, 520, 602),
    "WA": (206, 253, 509),
}
STATES: dict[str, tuple[tuple[int, int], tuple[int, ...]]] = {
    st: (tuple(_Addr.states_postcode[st]), codes)
    for st, codes in _AREA.items()  # type: ignore[misc]
}
ZERO_ZIP_STATES = ("MA", "NJ", "CT", "RI", "NH")
STATE_TZ = {
    "CA": "America/Los_Angeles",
    "WA": "America/Los_Angeles",
    "AZ": "America/Phoenix",
    "CO": "America/Denver",
    "TX": "America/Chicago",
    "IL": "America/Chicago",
}  # others: America/New_York

NICKNAMES = {
    "Robert": "Bob",
    "William": "Bill",
    "Richard": "Dick",
    "James": "Jim",
    "Michael": "Mike",
    "Elizabeth": "Liz",
    "Margaret": "Peggy",
    "Katherine": "Kate",
    "Jennifer": "Jen",
    "Thomas": "Tom",
    "Joseph": "Joe",
    "Christopher": "Chris",
    "Patricia": "Pat",
    "Susan": "Sue",
    "Daniel": "Dan",
    "Anthony": "Tony",
    "Deborah": "Debbie",
    "Rebecca": "Becky",
    "Edward": "Ed",
    "Kenneth": "Ken",
}
SUFFIX_CHOICES = ("JR", "SR", "II", "III")

# ENC1: cp1252-encodable accented names (truth keeps the accent; ftfy repairs their mojibake, ENC3).
ACCENTED_FIRST = ("José", "María", "Zoë", "Renée", "André", "François", "Chloé", "Noël", "Inés", "Björn")
ACCENTED_LAST = ("Muñoz", "Peña", "Ibáñez", "Sørensen", "Núñez", "Ortíz", "Gómez", "Müller", "Dupré")

# carrier name, payer id, weight, plan types (GENERATOR.md §4.5)
CARRIERS: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("Delta Dental", "DELTA", 25, ("PPO", "INDEM")),
    ("MetLife", "65978", 12, ("PPO",)),
    ("Cigna Dental", "62308", 10, ("PPO", "DHMO")),
    ("Aetna Dental", "60054", 9, ("PPO", "DHMO")),
    ("Guardian", "64246", 8, ("PPO",)),
    ("UnitedHealthcare Dental", "52133", 8, ("PPO",)),
    ("Blue Cross Blue Shield Dental", "BCBSD", 8, ("PPO", "INDEM")),
    ("Humana Dental", "73288", 5, ("PPO", "DHMO")),
    ("Principal Financial", "61271", 4, ("PPO",)),
    ("Ameritas", "47009", 4, ("PPO", "INDEM")),
    ("State Medicaid Dental", "MCAID", 5, ("MCAID",)),
    ("Careington Discount Plan", "", 2, ("DISC",)),
)
EMPLOYERS = (
    "City Schools",
    "County Government",
    "Regional Hospital",
    "Acme Manufacturing",
    "Lakeside Bank",
    "State University",
    "Riverside Logistics",
    "Northwind Traders",
    "Summit Insurance Co",
    "Metro Transit",
    "Pinecrest Foods",
    "Bluewater Tech",
    "Harbor Retail Group",
    "Granite Construction Co",
    "Oakridge Software",
    "Valley Credit Union",
    "Union Local 12",
    "Self-employed",
)
