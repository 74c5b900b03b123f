"""Obviously fake identities (GENERATOR.md §3): the only phones, SSNs, NPIs and addresses the
generator ever writes. Phones are 555-0100..0199, SSNs have area 900-999 (never issued), NPIs are
10 digits that fail the NPI check digit; streets and cities are built from Faker's word lists.
"""

from __future__ import annotations

import random

from .vocab import CITY_PREFIXES, CITY_SUFFIXES, FIRST_FEMALE, FIRST_MALE, LAST_NAMES, STREET_SUFFIXES

__all__ = ["safe_phone", "safe_ssn", "npi", "street", "city"]


def safe_phone(rng: random.Random, area: int | str) -> str:
    """E.164 in the fictional 555-0100..0199 range (GENERATOR.md §3)."""
    return f"+1{area}5550{rng.randint(100, 199)}"


def safe_ssn(rng: random.Random) -> str:
    return f"{rng.randint(900, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"


def _npi_check(nine: str) -> int:
    digits = [int(c) for c in "80840" + nine]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def npi(rng: random.Random) -> str:
    """10 digits that FAIL the NPI Luhn check, so no real provider can match (GENERATOR.md §3)."""
    nine = str(rng.choice((1, 2))) + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return nine + str((_npi_check(nine) + rng.randint(1, 9)) % 10)


def city(rng: random.Random) -> str:
    f = rng.random()
    if f < 0.4:
        return f"{rng.choice(CITY_PREFIXES)} {rng.choice(FIRST_FEMALE + FIRST_MALE)}"
    return f"{rng.choice(LAST_NAMES)}{rng.choice(CITY_SUFFIXES)}"


def street(rng: random.Random) -> str:
    return f"{rng.randint(1, 9999)} {rng.choice(LAST_NAMES)} {rng.choice(STREET_SUFFIXES)}"
