"""Settings from the environment (prefix ``DOS2HL_``) and an optional ``.env``-style file.

Built once at an entry point (CLI command, flow) and passed down; there is no module-level
instance. Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Dos2hlSettings", "S3Settings"]


class S3Settings(BaseSettings):
    """Where ``s3://`` URIs go. Leave ``endpoint_url`` empty for AWS itself."""

    model_config = SettingsConfigDict(env_prefix="DOS2HL_S3_", extra="ignore")
    endpoint_url: str | None = None  # e.g. http://127.0.0.1:5055 for moto's server
    region: str = "us-east-1"
    kms_key_id: str | None = None  # SSE-KMS key for everything written; None = bucket default
    require_sse_kms: bool = True  # send ServerSideEncryption=aws:kms on every PUT


class Dos2hlSettings(BaseSettings):
    """Top-level settings."""

    model_config = SettingsConfigDict(env_prefix="DOS2HL_", env_file=None, extra="ignore")
    storage: str = "runs"  # local folder or s3://bucket/prefix holding runs/<run_id>/...
    shards: int = Field(16, ge=1, le=4096)  # shards per location (stable hash of patient id mod N)
    s3: S3Settings = Field(default_factory=S3Settings)
