"""Field encryption for PHI the map marks ``encrypt``: AES-256-GCM, a key in a local file (or KMS).

A sealed value is ``enc:v1:<base64(nonce | ciphertext+tag)>``; the associated data is the field's
target key, so a value cannot be moved to another field unnoticed. ``dos2hl phi decrypt`` opens one
value with the same key file. The key file holds 32 random bytes (base64), or, created with
``dos2hl phi new-key --kms-key-id K``, a data key wrapped by AWS KMS (``{"kms_wrapped": ...}``): the
file alone opens nothing, each process asks KMS to unwrap it. Keep it out of the run's storage and
out of version control.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfigError

__all__ = ["PREFIX", "Sealer", "create_key_file", "load_sealer"]

PREFIX = "enc:v1:"


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("PHI key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def seal(self, text: str, field: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, text.encode("utf-8"), field.encode())
        return PREFIX + base64.b64encode(nonce + ct).decode("ascii")

    def open(self, sealed: str, field: str) -> str:
        if not sealed.startswith(PREFIX):
            raise ConfigError("not an encrypted value (expected the enc:v1: prefix)")
        raw = base64.b64decode(sealed[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], field.encode()).decode("utf-8")
        except InvalidTag:
            raise ConfigError(f"cannot decrypt this value of {field}: wrong key or wrong field") from None


def create_key_file(path: str | Path, *, kms_key_id: str | None = None, kms: Any = None) -> Path:
    """Write a new random key (mode 0600); refuses to overwrite an existing one. With ``kms_key_id``,
    KMS generates the data key and the file keeps only its wrapped form."""
    p = Path(path)
    if p.exists():
        raise ConfigError(f"{p} exists: a PHI key is never overwritten (values sealed with it would be lost)")
    if kms_key_id:
        kms = kms or _kms()
        blob = kms.generate_data_key(KeyId=kms_key_id, KeySpec="AES_256")["CiphertextBlob"]
        text = json.dumps({"kms_key_id": kms_key_id, "kms_wrapped": base64.b64encode(blob).decode("ascii")})
    else:
        text = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    return p


def _kms() -> Any:
    import boto3

    return boto3.client("kms")


def load_sealer(path: str | Path | None, *, kms: Any = None) -> Sealer:
    if not path:
        raise ConfigError("the map encrypts some fields but no PHI key is configured: set DOS2HL_PHI_KEY_FILE "
                          "(create one with: dos2hl phi new-key --out PATH) or change their phi policy")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"PHI key file {p} not found")
    text = p.read_text().strip()
    if text.startswith("{"):
        wrapped = json.loads(text)
        try:
            key = (kms or _kms()).decrypt(CiphertextBlob=base64.b64decode(wrapped["kms_wrapped"]))["Plaintext"]
        except Exception as exc:  # noqa: BLE001 - botocore's errors: the message names no secret
            raise ConfigError(f"PHI key file {p}: KMS could not unwrap the data key ({type(exc).__name__}): check "
                              "the worker's IAM permission kms:Decrypt on the key") from None
        return Sealer(key)
    return Sealer(base64.b64decode(text))
