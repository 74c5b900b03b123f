"""Every office's time zone: where an appointment's, an activity's or a document's local time is placed.

Dent-O-Soft writes local wall times (no offset). A row's instant is its wall time in the zone of the
office where it happened (``APPT.LOC_ID``), which need not be the patient's home office. Per office
(export LOC_ID) the zone is, first that gives a valid IANA name:

1. ``locations.yaml``: the ``time_zone`` of that office's entry, or ``time_zones: {LOC_ID: zone}`` for an
   office without a sub-account of its own;
2. the export's ``LOCATION.TZ`` (often blank: EXPORT_FORMAT.md §2);
3. the HighLevel sub-account's own timezone, for an office that has one (``prepare`` reads it);
4. an office with none of these (a blank TZ and no sub-account of its own): the zone of the visiting
   patient's home office, applied per shard (``crm.office_zone``).

UTC is never a silent default: ``prepare`` refuses a location whose zone is still unknown, and
``dos2hl plan`` and ``prepare`` warn, by LOC_ID, about every office whose LOCATION.TZ is blank or not
an IANA name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["valid_zone", "export_zones", "office_zones", "blank_zone_warnings"]


def valid_zone(name: Any) -> str | None:
    """``name`` when it is an IANA zone this machine knows, else None."""
    text = str(name or "").strip()
    if not text:
        return None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return text


def export_zones(staged: Any) -> dict[str, str]:
    """LOC_ID -> the LOCATION table's TZ text, for every office of the export (blank ones as "")."""
    from .plan import read_staged

    t = read_staged(staged, "location", "_all")
    rows = t.to_pylist() if t is not None else []
    return {str(r["loc_id"]).strip().upper(): str(r.get("tz") or "").strip() for r in rows if r.get("loc_id")}


def export_offices(staged: Any) -> dict[str, str]:
    """LOC_ID -> the office's name in the export (LOCATION.LOC_NAME; a business's name, not PHI)."""
    from .plan import read_staged

    t = read_staged(staged, "location", "_all")
    rows = t.to_pylist() if t is not None else []
    return {str(r["loc_id"]).strip().upper(): " ".join(str(r.get("loc_name") or "").split())[:80]
            for r in rows if r.get("loc_id")}


def office_zones(export: Mapping[str, str], overrides: Mapping[str, str | None],
                 accounts: Mapping[str, str | None]) -> dict[str, str]:
    """LOC_ID -> IANA zone for every office known: ``overrides`` (locations.yaml), else ``export``
    (LOCATION.TZ), else ``accounts`` (the HighLevel sub-account's timezone). An office with none is left
    out: its rows take their home office's zone."""
    out = {}
    for loc in sorted(set(export) | set(overrides) | set(accounts)):
        zone = valid_zone(overrides.get(loc)) or valid_zone(export.get(loc)) or valid_zone(accounts.get(loc))
        if zone:
            out[loc] = zone
    return out


def blank_zone_warnings(export: Mapping[str, str], overrides: Mapping[str, str | None] | None = None,
                        with_account: Iterable[str] = ()) -> list[str]:
    """One sentence per office whose LOCATION.TZ is blank or unknown and that locations.yaml does not
    set (ids only), saying which default applies. ``overrides`` None: locations.yaml is not known here
    (``dos2hl plan``)."""
    accounts = set(with_account)
    out = []
    for loc, tz in sorted(export.items()):
        if valid_zone(tz) or (overrides is not None and valid_zone(overrides.get(loc))):
            continue
        what = "is blank" if not tz else "is not an IANA time zone"
        if overrides is None:
            then = ("its times are read in the zone locations.yaml sets for it, else its HighLevel "
                    "sub-account's "
                    "timezone, else (an office without a sub-account) the visiting patient's home office's "
                    "zone")
        elif loc in accounts:
            then = "its times are read in its HighLevel sub-account's timezone"
        else:
            then = "its times are read in the visiting patient's home office's zone"
        out.append(f"location {loc}: LOCATION.TZ {what}; {then}. Set its zone in locations.yaml to be sure "
                   f"(its entry's time_zone, or time_zones: {{{loc}: <IANA zone>}}): an hour off moves every "
                   "appointment there")
    return out
