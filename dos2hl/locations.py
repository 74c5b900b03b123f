"""``locations.yaml``: which HighLevel sub-account each source location goes to, and where its token is.

::

    target: https://services.leadconnectorhq.com   # or the sandbox's URL
    locations:
      - source: L001                 # LOC_ID in the export
        location_id: ve9EPM428h8vShlRW1KT
        token_env: DOS2HL_TOKEN_L001 # environment variable holding this sub-account's token
        time_zone: America/New_York  # optional; default: the export's LOCATION.TZ, then the sub-account's
    time_zones:                      # optional: offices without a sub-account of their own (patients
      L003: America/Phoenix          #   are seen there, none lives there), by LOC_ID
    fallback_owner: user@practice.example   # optional: owner of records whose provider has no user
    shared_sub_accounts: [ve9EPM428h8vShlRW1KT]  # optional: sub-accounts that knowingly take several
                                     #   export locations (refused otherwise: a mistyped id merges offices)

Tokens never appear in files: only the names of the environment variables that hold them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .settings import Dos2hlSettings

__all__ = ["LocationTarget", "LocationsFile", "load_locations", "open_client"]


class LocationTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1)  # LOC_ID in the export (upper-cased)
    location_id: str = Field(min_length=1)
    token_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # IANA zone of the practice (default: the export's LOCATION.TZ, then HighLevel's)
    time_zone: str | None = None
    calendar: str | None = None  # the calendar (id or name) appointments land on (default: the first one)

    @field_validator("source")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.strip().upper()

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return _iana(v) if v is not None else None


def _iana(v: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{v!r} is not an IANA time zone (e.g. America/Denver)") from None
    return v.strip()


class LocationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = "https://services.leadconnectorhq.com"
    locations: list[LocationTarget] = Field(min_length=1)
    fallback_owner: str | None = None  # a HighLevel user's email
    # LOC_ID -> IANA zone of offices without an entry (no sub-account of their own: visited, not home)
    time_zones: dict[str, str] = Field(default_factory=dict)
    # sub-account ids that knowingly take several export locations (two offices, one sub-account)
    shared_sub_accounts: list[str] = Field(default_factory=list)
    path: str = Field("", exclude=True)  # where it was read from, for error messages

    @field_validator("target")
    @classmethod
    def _secure(cls, v: str) -> str:
        from .highlevel._core import secure_base_url

        return secure_base_url(v)  # https, or http to this machine only (the sandbox)

    @field_validator("time_zones")
    @classmethod
    def _zones(cls, v: dict[str, str]) -> dict[str, str]:
        return {str(k).strip().upper(): _iana(z) for k, z in v.items()}

    @model_validator(mode="after")
    def _one_sub_account_each(self) -> LocationsFile:
        """Two export locations in one sub-account is usually a mistyped id (two offices' patients merged,
        each other's records adopted): refused unless the file names that sub-account in
        shared_sub_accounts."""
        by_id: dict[str, list[str]] = {}
        for loc in self.locations:
            by_id.setdefault(loc.location_id, []).append(loc.source)
        shared = [f"{', '.join(srcs)} -> {lid}" for lid, srcs in sorted(by_id.items())
                  if len(srcs) > 1 and lid not in self.shared_sub_accounts]
        if shared:
            raise ValueError(f"several export locations go to one sub-account ({'; '.join(shared)}): check "
                             f"the "
                             "location_ids, or list the sub-account under shared_sub_accounts if that is "
                             "meant")
        return self

    def zone_overrides(self) -> dict[str, str | None]:
        """LOC_ID -> the zone this file sets for that office (an entry's time_zone wins over time_zones)."""
        return {**self.time_zones, **{t.source: t.time_zone for t in self.locations if t.time_zone}}

    def for_source(self, source: str) -> LocationTarget:
        key = source.strip().upper()
        for loc in self.locations:
            if loc.source == key:
                return loc
        known = ", ".join(loc.source for loc in self.locations)
        raise ConfigError(f"{self.path or 'locations.yaml'}: export location {key!r} has no entry "
                          f"(known: {known}); add one with its location_id and token_env")

    def require(self, sources: Iterable[str]) -> list[LocationTarget]:
        """Every export location must be mapped: one error naming all that are missing."""
        missing = sorted({s.strip().upper() for s in sources} - {loc.source for loc in self.locations})
        if missing:
            raise ConfigError(f"{self.path or 'locations.yaml'}: export location(s) {', '.join(missing)} "
                              "have no entry; add each with its location_id and token_env")
        return [self.for_source(s) for s in sorted({s.strip().upper() for s in sources})]

    def token(self, loc: LocationTarget) -> SecretStr:
        value = os.environ.get(loc.token_env, "")
        if not value:
            raise ConfigError(f"environment variable {loc.token_env} (token of location {loc.source}) "
                              "is not set; export it before running")
        return SecretStr(value)


def load_locations(path: str | Path, *, target: str | None = None) -> LocationsFile:
    """Read and validate ``locations.yaml``; ``target`` (the command line's ``--target``) wins."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such locations file")
    try:
        raw: Any = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        lf = LocationsFile.model_validate({**raw, "path": str(p)} if isinstance(raw, dict) else raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc.__class__.__name__})") from None
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{p}: {where}") from None
    dupes = sorted({loc.source for loc in lf.locations if sum(o.source == loc.source
                                                              for o in lf.locations) > 1})
    if dupes:
        raise ConfigError(f"{p}: location(s) {', '.join(dupes)} listed twice")
    if target:
        from .highlevel._core import secure_base_url

        lf = lf.model_copy(update={"target": secure_base_url(target)})  # (model_copy skips validators)
    return lf


def open_client(lf: LocationsFile, source: str, *, permits: Any = None,
                settings: Dos2hlSettings | None = None, **kw: Any) -> Any:
    """A ``HighLevelClient`` for the sub-account of export location ``source``."""
    from .highlevel import HighLevelClient, RetryPolicy

    settings = settings or Dos2hlSettings()
    loc = lf.for_source(source)
    return HighLevelClient(lf.target, lf.token(loc), loc.location_id, permits=permits,
                           retry=RetryPolicy.from_settings(settings.highlevel), **kw)
