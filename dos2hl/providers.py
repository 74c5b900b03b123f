"""Provider -> HighLevel user resolution: no patient lands without an assigned HighLevel user.

Every contact and appointment a migration writes is assigned to a HighLevel user. Dent-O-Soft knows
*providers* (PROVIDER.CSV); HighLevel knows *users*, one list per sub-account. This module joins the
two, per export location:

* a provider matches a user of its location's sub-account when their emails are equal, ignoring case
  and surrounding blanks. That is the only automatic match: an email is an identity, a name is not
  (two "Dr. Hall"s are common in a group practice, and assigning a patient to the wrong dentist is a
  privacy incident, not a cosmetic defect);
* a provider without such a user gets a *suggestion* (a user whose name is similar) for a person to
  confirm by adding the email, never an assignment;
* ``fallback_owner`` (``locations.yaml``) is a user's email that takes the records of every provider
  left without a user, so that a practice can migrate before every provider has an account.

A patient's owner is their primary provider (``pri_prov``), or their hygienist (``hyg_prov``) when
``pri_prov`` is blank; a patient with neither is counted on the pseudo-provider ``""`` ("no provider")
and can only be owned by the fallback. An appointment's owner is its ``prov_id`` (``hyg_id`` when
blank). Patients are counted at their own ``loc_id``, appointments at their patient's home location
(where the run writes them, whatever office they took place at; a placeholder without a patient at its
own ``loc_id``): the same provider can show up at two locations and then gets one row per location, matched
against that location's users. ``require_owners`` refuses while any patient *or appointment* would be
ownerless (an appointment-only row still means records written without an assignee).

The report holds ids, counts and staff data (provider names and emails) only: never a patient value.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import csvsafe
from .errors import ConfigError
from .locations import LocationsFile, open_client
from .storage import LocalStore

if TYPE_CHECKING:
    from .highlevel import HighLevelClient
    from .highlevel.models import User
    from .settings import Dos2hlSettings

__all__ = ["ProviderRow", "ProviderReport", "resolve_providers", "NO_PROVIDER", "SUGGESTION_RATIO"]

NO_PROVIDER = ""  # prov_id of the pseudo-provider counting patients/appointments that name none
SUGGESTION_RATIO = 0.8  # difflib ratio of normalised names from which a user is suggested
_NO_PROVIDER_NAME = "(no provider)"
_UNKNOWN_NAME = "(not in the provider file)"

Match = Literal["email", "fallback", "none"]
CSV_COLUMNS = ("location", "prov_id", "name", "email", "user_id", "user_email", "match", "suggestion",
               "patients", "appointments", "active")


@dataclass(frozen=True)
class ProviderRow:
    """One provider at one export location and the HighLevel user its records go to."""

    location: str
    prov_id: str
    name: str
    email: str | None
    user_id: str | None
    user_email: str | None
    match: Match
    suggestion: str | None  # "Name <email>" of a similarly named user; only when not matched by email
    patients: int
    appointments: int
    active: bool

    @property
    def in_use(self) -> bool:
        """Whether any record would be assigned through this row (a row with no records is harmless)."""
        return self.patients > 0 or self.appointments > 0


@dataclass
class ProviderReport:
    """Every provider of an export, per location, with its user (or none) and its record counts."""

    rows: list[ProviderRow]
    fallback_owner: str | None = None  # the email from locations.yaml, as written there
    fallback_users: dict[str, str] = field(default_factory=dict)  # location -> the fallback's user id

    def _row(self, location: str, prov_id: str | None) -> ProviderRow | None:
        key = (location.strip().upper(), (prov_id or "").strip().upper())
        for row in self.rows:
            if (row.location, row.prov_id) == key:
                return row
        return None

    def owner_of(self, location: str, prov_id: str | None) -> str | None:
        """The HighLevel user id owning records of ``prov_id`` at ``location``; None if nobody does.

        A provider the report has never seen (or ``None``/blank) still gets the location's fallback:
        the fallback exists precisely for records whose provider has no user.
        """
        row = self._row(location, prov_id)
        if row is not None and row.user_id:
            return row.user_id
        return self.fallback_users.get(location.strip().upper())

    def owner_of_patient(self, location: str, pri_prov: str | None, hyg_prov: str | None) -> str | None:
        """A patient's owner: the primary provider's, or the hygienist's when ``pri_prov`` is blank."""
        prov = pri_prov if (pri_prov or "").strip() else hyg_prov
        return self.owner_of(location, prov)

    @property
    def unmatched(self) -> list[ProviderRow]:
        """Rows whose records would land without an owner (no user, no fallback, some records)."""
        return [r for r in self.rows if r.match == "none" and r.in_use]

    def require_owners(self) -> None:
        """Refuse (ConfigError) while any patient or appointment would land without an owner."""
        bad = self.unmatched
        if not bad:
            return
        lines = "; ".join(
            f"{r.location or '(no location)'}/{r.prov_id or _NO_PROVIDER_NAME}"
            f"{f' ({r.name})' if r.prov_id else ''}: {r.patients} patient(s), {r.appointments} appointment(s)"
            for r in bad)
        patients, appts = sum(r.patients for r in bad), sum(r.appointments for r in bad)
        raise ConfigError(
            f"{patients} patient(s) and {appts} appointment(s) would land without a HighLevel owner: "
            f"{lines}. Fix: give each provider "
            "the email of its HighLevel user (in the export's PROVIDER file or on the user in that "
            "sub-account), or set fallback_owner in locations.yaml to the email of a user of each "
            "sub-account; `dos2hl providers` writes the full mapping report")

    def to_dict(self) -> dict[str, Any]:
        return {
            "fallback_owner": self.fallback_owner,
            "fallback_users": dict(sorted(self.fallback_users.items())),
            "summary": self.summary(),
            "rows": [asdict(r) for r in self.rows],
        }

    def summary(self) -> dict[str, int]:
        by = Counter(r.match for r in self.rows)
        return {
            "providers": len(self.rows),
            "email": by["email"], "fallback": by["fallback"], "none": by["none"],
            "unmatched_in_use": len(self.unmatched),
            "patients_without_owner": sum(r.patients for r in self.unmatched),
            "appointments_without_owner": sum(r.appointments for r in self.unmatched),
        }

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Write ``providers.csv`` (one line per row) and ``providers.md`` (for a person to act on)."""
        out_dir = Path(out_dir)
        store = LocalStore(out_dir)  # 0600 files in 0700 folders, atomic and durable
        csv_path, md_path = out_dir / "providers.csv", out_dir / "providers.md"
        rows = [CSV_COLUMNS, *([_csv_cell(getattr(r, c)) for c in CSV_COLUMNS] for r in self.rows)]
        store.write_bytes(csv_path.name,
                          csvsafe.text(rows).encode("utf-8"))  # names are export text: no formulas
        store.write_bytes(md_path.name, self._markdown().encode("utf-8"))
        return csv_path, md_path

    def _markdown(self) -> str:
        s = self.summary()
        out = ["# Provider -> HighLevel user mapping", ""]
        out.append(f"{s['providers']} provider row(s): {s['email']} matched by email, {s['fallback']} on the "
                   f"fallback owner, {s['none']} without a user.")
        out.append(f"Fallback owner: {self.fallback_owner or '(none set)'}")
        out.append("")
        if self.unmatched:
            out += [f"**{s['patients_without_owner']} patient(s) and {s['appointments_without_owner']} "
                    "appointment(s) would land without an owner; the migration refuses to start.** Give "
                    "each provider below the email of its HighLevel user, or set `fallback_owner` in "
                    "locations.yaml.", "",
                    "## Unmatched providers", "",
                    "| location | provider | name | email | suggestion | patients | appointments |",
                    "|---|---|---|---|---|---:|---:|"]
            out += [f"| {r.location} | {_md(r.prov_id or _NO_PROVIDER_NAME)} | {_md(r.name)} | "
                    f"{_md(r.email or '')} | {_md(r.suggestion or '')} | {r.patients} | {r.appointments} |"
                    for r in self.unmatched]
            out.append("")
        else:
            out += ["Every patient and appointment has an owner.", ""]
        out += ["## All providers", "",
                "Suggestions are by name similarity only: they are never applied; confirm one by giving "
                "the provider that user's email.", "",
                "| location | provider | name | email | active | match | user | suggestion | patients | "
                "appointments |",
                "|---|---|---|---|---|---|---|---|---:|---:|"]
        for r in self.rows:
            user = f"{r.user_email or ''} ({r.user_id})" if r.user_id else ""
            out.append(f"| {r.location} | {_md(r.prov_id or _NO_PROVIDER_NAME)} | {_md(r.name)} | "
                       f"{_md(r.email or '')} | {'yes' if r.active else 'no'} | {r.match} | {_md(user)} | "
                       f"{_md(r.suggestion or '')} | {r.patients} | {r.appointments} |")
        return "\n".join(out) + "\n"


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "Y" if v else "N"
    return v


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ---- resolution -------------------------------------------------------------------------------------

def _key(v: Any) -> str:
    return "" if v is None else str(v).strip().upper()


def _email(v: Any) -> str:
    return "" if v is None else str(v).strip().lower()


def _norm_name(text: str) -> str:
    """Lower-case letters and single spaces: "Dr. BAIRD, Brady" ~ "brady baird" after token sorting."""
    words = re.sub(r"[^a-z ]+", " ", text.lower()).split()
    words = [w for w in words if w not in {"dr", "dds", "dmd", "rdh", "rda", "cda"}]
    return " ".join(sorted(words))


def _user_name(u: User) -> str:
    extra = u.model_extra or {}
    return (u.name or " ".join(str(extra.get(k) or "") for k in ("firstName", "lastName"))).strip()


def _suggest(name: str, users: Iterable[User]) -> str | None:
    """The most similar user by name (token order ignored), if similar enough; a hint, never a match."""
    target = _norm_name(name)
    if not target:
        return None
    best: tuple[float, str] | None = None
    for u in users:
        uname = _user_name(u)
        ratio = difflib.SequenceMatcher(None, target, _norm_name(uname)).ratio()
        if ratio >= SUGGESTION_RATIO and (best is None or ratio > best[0]):
            best = (ratio, f"{uname} <{u.email}>" if u.email else uname)
    return best[1] if best else None


@dataclass
class _Provider:
    prov_id: str
    name: str
    email: str | None
    home: str
    active: bool


def _read_export(source: str | Path, *, profile: str, settings: Dos2hlSettings | None,
                 export_date: dt.date | None) -> tuple[dict[str, _Provider], Counter[tuple[str, str]],
                                                       Counter[tuple[str, str]]]:
    """Providers, patients per (loc_id, owner code) and appointments per (loc_id, owner code).

    Only id columns of patients and appointments are looked at; staged (clean or repaired) rows count,
    quarantined ones do not (they are not migrated).
    """
    from .api import open_export
    from .sources.reader import ExportReader

    export = open_export(source, profile=profile, s3=settings.s3 if settings else None, documents=False)
    reader = ExportReader(export, export_date=export_date)
    providers: dict[str, _Provider] = {}
    for chunk in reader.iter_table("provider"):
        if chunk.table != "provider":
            continue
        for r in chunk.data.select(["prov_id", "fname", "lname", "email", "home_loc_id",
                                    "active_flg"]).to_pylist():
            pid = _key(r["prov_id"])
            if not pid:
                continue
            name = " ".join(str(r[k]).strip() for k in ("fname", "lname") if r[k])
            providers.setdefault(pid, _Provider(pid, name, (r["email"] or "").strip() or None,
                                                _key(r["home_loc_id"]), r["active_flg"] is not False))
    patients: Counter[tuple[str, str]] = Counter()
    home: dict[int, str] = {}  # pat_id -> home loc_id: an appointment is written (and owned) there
    for chunk in reader.iter_table("patient"):
        if chunk.table != "patient":
            continue
        d = chunk.data.select(["pat_id", "loc_id", "pri_prov", "hyg_prov"]).to_pydict()
        for pat, loc, pri, hyg in zip(d["pat_id"], d["loc_id"], d["pri_prov"], d["hyg_prov"], strict=True):
            patients[(_key(loc), _key(pri) or _key(hyg))] += 1
            if pat is not None:
                home[pat] = _key(loc)
    appointments: Counter[tuple[str, str]] = Counter()
    for chunk in reader.iter_table("appt"):
        if chunk.table != "appt":
            continue
        d = chunk.data.select(["pat_id", "loc_id", "prov_id", "hyg_id"]).to_pydict()
        for pat, loc, prov, hyg in zip(d["pat_id"], d["loc_id"], d["prov_id"], d["hyg_id"], strict=True):
            appointments[(home.get(pat) or _key(loc), _key(prov) or _key(hyg))] += 1
    return providers, patients, appointments


def resolve_providers(source: str | Path, locations: LocationsFile, *,
                      clients: Mapping[str, HighLevelClient] | None = None,
                      settings: Dos2hlSettings | None = None, profile: str = "reference",
                      export_date: dt.date | None = None, permits: Any = None) -> ProviderReport:
    """Map every provider of the export at ``source`` to a HighLevel user of its location.

    ``clients`` maps export location (``L001``) to a client of its sub-account; missing ones are
    opened from ``locations`` (and closed again here), taking ``permits`` (the governor). Every location
    holding patients or appointments must be in ``locations.yaml`` (``LocationsFile.require`` raises
    otherwise); a provider whose home location has no records and no entry is still reported, without a user.
    A ``fallback_owner`` that is no user of some location is a ConfigError naming it.
    """
    providers, patients, appointments = _read_export(source, profile=profile, settings=settings,
                                                     export_date=export_date)
    # A record with no location at all (an appointment of an unknown patient without LOC_ID) is
    # counted at location "": it has no sub-account, so no user, and require_owners names it.
    used = ({loc for loc, _ in patients} | {loc for loc, _ in appointments}) - {""}
    targets = {t.source for t in locations.require(used)}
    mapped = {t.source for t in locations.locations}
    # Locations whose users we look up: every location with records, plus providers' home locations
    # that locations.yaml knows (so an idle provider's row still shows its user).
    lookup = sorted(targets | ({p.home for p in providers.values()} & mapped))

    users: dict[str, list[User]] = {}
    opened: list[Any] = []
    try:
        for loc in lookup:
            client = (clients or {}).get(loc)
            if client is None:
                client = open_client(locations, loc, settings=settings, permits=permits)
                opened.append(client)
            users[loc] = client.list_users()
    finally:
        for c in opened:
            c.close()

    fallback_users: dict[str, str] = {}
    if locations.fallback_owner:
        want = _email(locations.fallback_owner)
        missing = []
        for loc in lookup:
            hit = next((u for u in users[loc] if _email(u.email) == want), None)
            if hit is None:
                missing.append(loc)
            else:
                fallback_users[loc] = hit.id
        if missing:
            raise ConfigError(
                f"{locations.path or 'locations.yaml'}: fallback_owner {locations.fallback_owner!r} is not "
                f"a user of location(s) {', '.join(missing)}; set it to the email of a HighLevel user "
                "present in every sub-account, or add that user there")

    # One row per (location, provider): each provider at its home location, plus every location
    # where it owns records; codes only seen on records (not in PROVIDER) get rows too.
    keys: set[tuple[str, str]] = {(p.home, pid) for pid, p in providers.items()}
    keys |= {k for k, n in patients.items() if n} | {k for k, n in appointments.items() if n}
    rows: list[ProviderRow] = []
    for loc, pid in sorted(keys):
        p = providers.get(pid)
        name = p.name if p else (_NO_PROVIDER_NAME if pid == NO_PROVIDER else _UNKNOWN_NAME)
        email = p.email if p else None
        loc_users = users.get(loc, [])
        user = None
        if email:
            user = next((u for u in loc_users if _email(u.email) == _email(email)), None)
        user_id: str | None  # the matched user's, else the location's fallback user's (if any)
        if user is not None:
            match: Match = "email"
            user_id, user_email, suggestion = user.id, user.email, None
        else:
            suggestion = _suggest(name, loc_users) if p else None
            fb = fallback_users.get(loc)
            match = "fallback" if fb else "none"
            user_id = fb
            user_email = next((u.email for u in loc_users if u.id == fb), None) if fb else None
        rows.append(ProviderRow(
            location=loc, prov_id=pid, name=name, email=email, user_id=user_id, user_email=user_email,
            match=match, suggestion=suggestion, patients=patients.get((loc, pid), 0),
            appointments=appointments.get((loc, pid), 0), active=p.active if p else False,
        ))
    return ProviderReport(rows=rows, fallback_owner=locations.fallback_owner, fallback_users=fallback_users)
