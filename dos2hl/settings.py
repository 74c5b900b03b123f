"""Settings from the environment (prefix ``DOS2HL_``) and an optional ``.env``-style file.

Built once at an entry point (CLI command, flow) and passed down; there is no module-level
instance. Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Dos2hlSettings", "GovernorSettings", "HighLevelSettings", "S3Settings"]


class S3Settings(BaseSettings):
    """Where ``s3://`` URIs go. Leave ``endpoint_url`` empty for AWS itself."""

    model_config = SettingsConfigDict(env_prefix="DOS2HL_S3_", extra="ignore")
    endpoint_url: str | None = None  # e.g. http://127.0.0.1:5055 for moto's server
    region: str = "us-east-1"
    kms_key_id: str | None = None  # SSE-KMS key for everything written; None = bucket default
    require_sse_kms: bool = True  # send ServerSideEncryption=aws:kms on every PUT


class HighLevelSettings(BaseSettings):
    """How the HighLevel client connects and retries (``DOS2HL_HIGHLEVEL_*``).

    Tokens are per location (``locations.yaml`` names the environment variable holding each);
    ``token`` here is for single-location use. Secrets are ``SecretStr``: never printed or logged.
    """

    model_config = SettingsConfigDict(env_prefix="DOS2HL_HIGHLEVEL_", extra="ignore")
    base_url: str = "https://services.leadconnectorhq.com"
    token: SecretStr | None = None
    connect_timeout: float = Field(10.0, gt=0)  # seconds to open a connection
    read_timeout: float = Field(30.0, gt=0)  # seconds for each read/write/pool wait
    max_attempts: int = Field(5, ge=1, le=20)  # sends per request, the first included
    backoff_base: float = Field(1.0, ge=0)  # first retry delay (seconds), doubled each attempt
    backoff_cap: float = Field(60.0, ge=0)  # no backoff delay is longer
    jitter: float = Field(0.5, ge=0, le=1)  # up to this fraction of a delay is randomly removed
    # an OAuth access token is refreshed this long before it expires (at most a fifth of its lifetime)
    token_refresh_margin_s: float = Field(300.0, ge=0)
    max_retry_after: float = Field(300.0, ge=0)  # a longer Retry-After is shortened to this
    verify_delay: float = Field(3.0, ge=0)  # wait before looking up an ambiguous create (search lag)
    # 5xx or unanswered requests in a row (each after its retries) that pause a location (issue 17)
    pause_after: int = Field(5, ge=1, le=1000)


class GovernorSettings(BaseSettings):
    """The rate governor (``DOS2HL_GOVERNOR_*``): where it lives and HighLevel's limits per location.

    ``address`` empty: an in-process governor (one process, tests, tiny runs). ``local``: an in-process
    Ray cluster holding the shared actor. ``HOST:PORT``: the Ray cluster every worker connects to (the
    actor is named and detached there, so every flow run shares it).
    """

    model_config = SettingsConfigDict(env_prefix="DOS2HL_GOVERNOR_", extra="ignore")
    address: str = ""
    name: str = "rate-governor"  # the actor's name in Ray namespace "dos2hl"
    app: str = "default"  # HighLevel counts per app and location: one governor key each
    burst: int = Field(100, ge=1)  # requests per window per location
    window_s: float = Field(10.0, gt=0)
    daily: int = Field(200_000, ge=1)  # requests per day per location
    margin_s: float | None = Field(None, ge=0)  # default 0.6 % of the window, widened by measured lateness
    reserve: float = Field(0.10, ge=0, lt=1)  # of the daily budget kept for verification and the practice
    reset_offset_s: float = Field(0.0, ge=0, lt=86_400)  # daily reset, seconds after UTC midnight
    # a permit further away (the day's quota spent) frees the worker: its location waits for the reset
    max_wait_s: float = Field(300.0, gt=0)
    state: str | None = None  # usage snapshot URI; default <storage>/state/governor.json
    batch: int = Field(16, ge=1, le=100)  # a location's stock at a process until its take rate is known


class Dos2hlSettings(BaseSettings):
    """Top-level settings."""

    model_config = SettingsConfigDict(env_prefix="DOS2HL_", env_file=None, extra="ignore")
    storage: str = "runs"  # local folder or s3://bucket/prefix holding runs/<run_id>/...
    shards: int = Field(16, ge=1, le=4096)  # shards per location (stable hash of patient id mod N)
    # rows stage holds in memory, every table's partition buffers together (DOS2HL_STAGE_MEMORY_MB)
    stage_memory_mb: int = Field(64, ge=1, le=65_536)
    s3: S3Settings = Field(default_factory=S3Settings)
    highlevel: HighLevelSettings = Field(default_factory=HighLevelSettings)
    governor: GovernorSettings = Field(default_factory=GovernorSettings)
    phi_key_file: str | None = None  # AES-256 key for fields the map marks 'encrypt' (DOS2HL_PHI_KEY_FILE)
    # seconds between progress lines (no terminal) and progress.json writes (DOS2HL_PROGRESS_EVERY_S)
    progress_every_s: float = Field(30.0, gt=0)
    # sealed OAuth token records (DOS2HL_TOKEN_STORE; local folder or s3://); default <storage>/state/oauth
    token_store: str | None = None

    def token_store_uri(self) -> str:
        """Where OAuth locations' rotated refresh tokens live (sealed with the PHI key)."""
        return (self.token_store or f"{self.runs_root()}/state/oauth").rstrip("/")

    def runs_root(self, storage: str | None = None) -> str:
        """Where runs live: ``storage`` (a run's own option) or ``DOS2HL_STORAGE``, without a trailing slash.
        The one place a run's paths are derived from: a run is ``<root>/<run_id>``."""
        return str(storage or self.storage).rstrip("/")

    def run_uri(self, run_id: str, storage: str | None = None) -> str:
        return f"{self.runs_root(storage)}/{run_id}"

