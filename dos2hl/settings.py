"""Settings from the environment (prefix ``DOS2HL_``) and an optional ``.env``-style file.

Built once at an entry point (CLI command, flow) and passed down; there is no module-level
instance. Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Dos2hlSettings", "HighLevelSettings", "S3Settings"]


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
    max_retry_after: float = Field(300.0, ge=0)  # a longer Retry-After is shortened to this
    verify_delay: float = Field(3.0, ge=0)  # wait before looking up an ambiguous create (search lag)


class Dos2hlSettings(BaseSettings):
    """Top-level settings."""

    model_config = SettingsConfigDict(env_prefix="DOS2HL_", env_file=None, extra="ignore")
    storage: str = "runs"  # local folder or s3://bucket/prefix holding runs/<run_id>/...
    shards: int = Field(16, ge=1, le=4096)  # shards per location (stable hash of patient id mod N)
    s3: S3Settings = Field(default_factory=S3Settings)
    highlevel: HighLevelSettings = Field(default_factory=HighLevelSettings)
