"""``locations.yaml``: which HighLevel sub-account each source location goes to, and where its token is.

::

    target: https://services.leadconnectorhq.com   # or the sandbox's URL
    locations:
      - source: L001                 # LOC_ID in the export
        location_id: ve9EPM428h8vShlRW1KT
        token_env: DOS2HL_TOKEN_L001 # environment variable holding this sub-account's token
        time_zone: America/New_York  # optional; default: the export's LOCATION.TZ, then the sub-account's
      - source: L002
        location_id: 2bQx7Lm0RkTz9YhWc4Dp
        auth: oauth                  # a Marketplace app's tokens, renewed during the run (default: pit)
        client_id_env: DOS2HL_APP_ID
        client_secret_env: DOS2HL_APP_SECRET
        refresh_token_env: DOS2HL_REFRESH_L002   # the first refresh token; later ones: the token store
    time_zones:                      # optional: offices without a sub-account of their own (patients
      L003: America/Phoenix          #   are seen there, none lives there), by LOC_ID
    fallback_owner: user@practice.example   # optional: owner of records whose provider has no user
    shared_sub_accounts: [ve9EPM428h8vShlRW1KT]  # optional: sub-accounts that knowingly take several
                                     #   export locations (refused otherwise: a mistyped id merges offices)

Tokens never appear in this file: only the names of the environment variables that hold them (or, for
a private integration token, ``token_file``: a file holding it, re-read when HighLevel refuses the old
one). README "Credentials" explains both kinds and how renewal works (``highlevel/tokens.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

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

__all__ = ["LocationTarget", "LocationsFile", "check_credentials", "load_locations", "open_client",
           "token_provider"]

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_OAUTH_FIELDS = ("client_id_env", "client_secret_env", "refresh_token_env")


class LocationTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1)  # LOC_ID in the export (upper-cased)
    location_id: str = Field(min_length=1)
    auth: Literal["pit", "oauth"] = "pit"  # a private integration token, or a Marketplace app's tokens
    token_env: str | None = Field(None, pattern=_ENV_NAME)  # pit: the variable holding the token
    token_file: str | None = None  # pit: or a file holding it (re-read after a 401: rotation, no restart)
    client_id_env: str | None = Field(None, pattern=_ENV_NAME)  # oauth: the app's client id
    client_secret_env: str | None = Field(None, pattern=_ENV_NAME)  # oauth: the app's client secret
    refresh_token_env: str | None = Field(None, pattern=_ENV_NAME)  # oauth: the first refresh token
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

    @model_validator(mode="after")
    def _credentials(self) -> LocationTarget:
        """pit: token_env or token_file (one); oauth: the three *_env names and nothing of pit's."""
        oauth_set = [f for f in _OAUTH_FIELDS if getattr(self, f)]
        if self.auth == "pit":
            if bool(self.token_env) == bool(self.token_file):
                raise ValueError("auth: pit needs exactly one of token_env and token_file")
            if oauth_set:
                raise ValueError(f"{', '.join(oauth_set)}: only for auth: oauth")
        else:
            missing = [f for f in _OAUTH_FIELDS if not getattr(self, f)]
            if missing:
                raise ValueError(f"auth: oauth needs {', '.join(missing)}")
            if self.token_env or self.token_file:
                raise ValueError("token_env and token_file are for auth: pit; auth: oauth renews its own")
        return self

    @property
    def credential(self) -> str:
        """Where this location's credential comes from, for messages (names only, never a value)."""
        if self.auth == "oauth":
            return f"the OAuth app (${self.client_id_env}, refresh token ${self.refresh_token_env})"
        return f"${self.token_env}" if self.token_env else f"token file {self.token_file}"


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
                          f"(known: {known}); add one with its location_id and token_env (or auth: oauth)")

    def require(self, sources: Iterable[str]) -> list[LocationTarget]:
        """Every export location must be mapped: one error naming all that are missing."""
        missing = sorted({s.strip().upper() for s in sources} - {loc.source for loc in self.locations})
        if missing:
            raise ConfigError(f"{self.path or 'locations.yaml'}: export location(s) {', '.join(missing)} "
                              "have no entry; add each with its location_id and token_env")
        return [self.for_source(s) for s in sorted({s.strip().upper() for s in sources})]

    def token(self, loc: LocationTarget) -> SecretStr:
        """A pit location's token as it is now (``token_provider`` for one that renews)."""
        if loc.auth != "pit":
            raise ConfigError(f"location {loc.source} uses auth: oauth: its token comes from the provider")
        from .highlevel.tokens import StaticToken

        return StaticToken(loc.token_env, loc.token_file, what=f"token of location {loc.source}").token()


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
    """A ``HighLevelClient`` for the sub-account of export location ``source``; its token comes from
    ``token_provider`` (asked per request: renewals are picked up at once)."""
    from .highlevel import HighLevelClient, RetryPolicy

    settings = settings or Dos2hlSettings()
    loc = lf.for_source(source)
    return HighLevelClient(lf.target, token_provider(lf, loc, settings, transport=kw.get("transport")),
                           loc.location_id, permits=permits,
                           retry=RetryPolicy.from_settings(settings.highlevel), **kw)


def token_provider(lf: LocationsFile, loc: LocationTarget, settings: Dos2hlSettings, *,
                   transport: Any = None) -> Any:
    """The location's token provider (``highlevel.tokens``): a ``StaticToken`` per client for a pit; for
    oauth the process's one ``OAuthToken`` per location (or the token actor's facade when the run's
    governor is a Ray actor: one refresher for every worker), its record sealed in the token store."""
    from .highlevel.tokens import StaticToken, shared

    if loc.auth == "pit":
        return StaticToken(loc.token_env, loc.token_file, what=f"token of location {loc.source}")
    store_uri = settings.token_store_uri()
    key = ("oauth", lf.target, loc.location_id, store_uri)
    if settings.governor.address:  # Ray workers: one refresher for all of them, the token actor
        import functools

        from .governor.token_actor import actor_token

        make = functools.partial(_oauth_from_dumps, lf.model_dump(mode="json"), loc.source,
                                 settings.model_dump(mode="json"))
        return shared(key, lambda: actor_token(settings.governor.address, "|".join(key), make,
                                               margin_s=settings.highlevel.token_refresh_margin_s))
    return shared(key, lambda: _oauth_provider(lf, loc, settings, store_uri, transport))


def _oauth_from_dumps(lf: dict[str, Any], source: str, settings: dict[str, Any]) -> Any:
    """The ``OAuthToken`` the token actor holds, from the dumps a worker passes (names, no secrets)."""
    lfile = LocationsFile.model_validate(lf)
    conf = Dos2hlSettings.model_validate(settings)
    return _oauth_provider(lfile, lfile.for_source(source), conf, conf.token_store_uri(), None)


def _env(name: str | None, what: str, required: bool = True) -> SecretStr:
    value = os.environ.get(str(name), "").strip()
    if not value and required:
        raise ConfigError(f"environment variable {name} ({what}) is not set; export it before running")
    return SecretStr(value)


def _oauth_provider(lf: LocationsFile, loc: LocationTarget, settings: Dos2hlSettings, store_uri: str,
                    transport: Any) -> Any:
    import httpx

    from .highlevel._core import _tls, secure_base_url
    from .highlevel.oauth import OAuthApp
    from .highlevel.token_store import TokenStore
    from .highlevel.tokens import OAuthToken
    from .phi import load_sealer

    if not settings.phi_key_file:
        raise ConfigError(f"location {loc.source} uses auth: oauth: its rotated refresh token is stored "
                          "encrypted with the PHI key; set DOS2HL_PHI_KEY_FILE (dos2hl phi new-key --out "
                          "PATH)")
    from .highlevel.lease import lease_ttl_s
    from .storage import open_store

    hl = settings.highlevel
    store = TokenStore(store_uri, load_sealer(settings.phi_key_file),
                       store=open_store(store_uri, settings.s3),
                       lease_ttl_s=lease_ttl_s(hl.connect_timeout, hl.read_timeout))
    app = OAuthApp(_env(loc.client_id_env, f"OAuth client id of location {loc.source}").get_secret_value(),
                   _env(loc.client_secret_env, f"OAuth client secret of location {loc.source}"))
    stored = store.load(loc.location_id)
    first = _env(loc.refresh_token_env, f"first refresh token of location {loc.source}", stored is None)
    http = httpx.Client(base_url=secure_base_url(lf.target), transport=transport, verify=_tls(),
                        timeout=httpx.Timeout(hl.read_timeout, connect=hl.connect_timeout))
    return OAuthToken(loc.location_id, app, first, http=http, store=store,
                      margin_s=hl.token_refresh_margin_s)


def check_credentials(lf: LocationsFile, settings: Dos2hlSettings | None = None) -> list[dict[str, Any]]:
    """Whether each location's credential opens its own sub-account (``dos2hl auth check``): one read of
    the location, renewing (and storing) an OAuth token on the way. Ids, kinds, statuses only."""
    from .errors import HighLevelError

    settings = settings or Dos2hlSettings()
    out: list[dict[str, Any]] = []
    for loc in lf.locations:
        row: dict[str, Any] = {"source": loc.source, "location_id": loc.location_id, "auth": loc.auth}
        try:
            with open_client(lf, loc.source, settings=settings) as client:
                got = client.get_location()
                row.update(ok=got.id == loc.location_id, opens=got.id,
                           requests=client.tally.total, auth_requests=client.tally.by_class["auth"])
        except (HighLevelError, ConfigError) as exc:
            row.update(ok=False, error=type(exc).__name__, status=getattr(exc, "status", None),
                       cause=getattr(exc, "cause", None))
            if isinstance(exc, ConfigError):
                row["message"] = str(exc)  # names variables and files, never a value
        out.append(row)
    return out
