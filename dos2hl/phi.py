"""Field encryption for PHI the map marks ``encrypt`` (and the ledger's before-images): AES-256-GCM, keys
in a local file (or wrapped by KMS).

A sealed value is ``enc:v2:<key id>:<base64(nonce | ciphertext+tag)>``. The associated data binds the
envelope's version, the field's target key, the **record key** (the stable key of the record the value
belongs to: a contact, a custom-object record, an opportunity; the ledger row's key for a before-image)
and the key id: a value moved to another field or another patient's record does not open. Values
sealed by earlier versions (``enc:v1:<base64>``, bound to the field only) still open (read
compatibility), with any key of the ring.

The key file is a **key ring**, one key a line: 32 random bytes in base64, or a JSON object
``{"kms_key_id": ..., "kms_wrapped": ...}`` (a data key wrapped by AWS KMS under an EncryptionContext:
the file alone opens nothing, each process asks KMS to unwrap it). The last line seals; every line
opens. A key's id is derived from the key itself (8 hex digits), so the ring needs no bookkeeping.
``dos2hl phi rotate-key`` appends a new key (see docs/security.md). The file must be readable
by its owner only (mode 0600): a key file that group or others can read is refused. Keep it out of the
run's storage and out of version control.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfigError

__all__ = ["PREFIX", "KMS_CONTEXT", "Sealer", "create_key_file", "key_id", "load_sealer", "rotate_key_file"]

log = logging.getLogger("dos2hl.phi")
PREFIX = "enc:"  # every version's envelope starts with it
V1, V2 = "enc:v1:", "enc:v2:"
# what KMS binds a wrapped data key to: a blob unwrapped under any other context (another tool) fails
KMS_CONTEXT = {"app": "dos2hl", "purpose": "phi-field-key"}


def key_id(key: bytes) -> str:
    """A key's id: derived from the key (never reveals it), the same in every process."""
    return hashlib.sha256(b"dos2hl-phi-key-id\x1f" + key).hexdigest()[:8]


def _aad(field: str, record: str, kid: str) -> bytes:
    return "\x1f".join(("v2", field, record, kid)).encode()


class Sealer:
    """Seals with the ring's newest key, opens with any key of the ring."""

    def __init__(self, key: bytes | list[bytes]) -> None:
        keys = [key] if isinstance(key, bytes) else list(key)
        if not keys or any(len(k) != 32 for k in keys):
            raise ConfigError("PHI key must be 32 bytes (AES-256)")
        self._ring = {key_id(k): AESGCM(k) for k in keys}
        self.kid = key_id(keys[-1])
        self._aead = self._ring[self.kid]

    def __repr__(self) -> str:
        return f"Sealer(<{len(self._ring)} key(s) hidden>, sealing key {self.kid})"

    @property
    def key_ids(self) -> list[str]:
        return list(self._ring)

    def seal(self, text: str, field: str, record: str) -> str:
        """``text`` sealed for ``field`` of the record ``record`` (its stable key)."""
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, text.encode("utf-8"), _aad(field, record, self.kid))
        return f"{V2}{self.kid}:" + base64.b64encode(nonce + ct).decode("ascii")

    def open(self, sealed: str, field: str, record: str) -> str:
        """The plain text of a value sealed for ``field`` of ``record``; a ConfigError (naming the field
        and key id only) when it was sealed for another field or record, or with a key not in the ring."""
        if sealed.startswith(V2):
            kid = sealed[len(V2):].partition(":")[0]
            if kid not in self._ring:
                raise ConfigError(f"cannot decrypt this value of {field}: it was sealed with key "
                                  f"{kid[:8]!r}, "
                                  f"which is not in the key file (it holds {', '.join(self._ring)})")
        try:
            if sealed.startswith(V2):
                kid, _, body = sealed[len(V2):].partition(":")
                aead = self._ring[kid]
                raw = base64.b64decode(body, validate=True)
                return aead.decrypt(raw[:12], raw[12:], _aad(field, record, kid)).decode("utf-8")
            if sealed.startswith(V1):  # written before envelopes had a key id: bound to the field only
                raw = base64.b64decode(sealed[len(V1):], validate=True)
                for aead in self._ring.values():
                    try:
                        return aead.decrypt(raw[:12], raw[12:], field.encode()).decode("utf-8")
                    except InvalidTag:
                        continue
                raise InvalidTag
        except InvalidTag:
            raise ConfigError(f"cannot decrypt this value of {field}: wrong key, wrong field or another "
                              "record's value") from None
        except (binascii.Error, ValueError):
            raise ConfigError(f"cannot decrypt this value of {field}: not a well-formed envelope") from None
        raise ConfigError("not an encrypted value (expected the enc:v2: or enc:v1: prefix)")


def _kms() -> Any:
    import boto3

    return boto3.client("kms")


def _new_line(kms_key_id: str | None, kms: Any) -> str:
    if kms_key_id:
        kms = kms or _kms()
        blob = kms.generate_data_key(KeyId=kms_key_id, KeySpec="AES_256",
                                     EncryptionContext=KMS_CONTEXT)["CiphertextBlob"]
        return json.dumps({"v": 2, "kms_key_id": kms_key_id,
                           "kms_wrapped": base64.b64encode(blob).decode("ascii")})
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def create_key_file(path: str | Path, *, kms_key_id: str | None = None, kms: Any = None) -> Path:
    """Write a new random key (mode 0600, its folder 0700 when created); refuses to overwrite an existing
    one. With ``kms_key_id``, KMS generates the data key and the file keeps only its wrapped form."""
    p = Path(path)
    if p.exists():
        raise ConfigError(f"{p} exists: a PHI key is never overwritten (values sealed with it would be "
                          f"lost); "
                          "to rotate, use: dos2hl phi rotate-key")
    text = _new_line(kms_key_id, kms)
    if not p.parent.exists():
        p.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return p


def rotate_key_file(path: str | Path, *, kms_key_id: str | None = None, kms: Any = None) -> str:
    """Append a new key to the ring: it seals from now on, the older keys still open what they sealed.
    Returns the new key's id. The file is rewritten atomically (0600, fsynced)."""
    p = Path(path)
    lines = _read_lines(p)
    new = _new_line(kms_key_id, kms)
    tmp = p.with_name(f".{p.name}.rotate")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join([*lines, new]) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)
    from .storage import fsync_dir

    fsync_dir(p.parent)
    return key_id(_unwrap(p, new, kms))


def _read_lines(p: Path) -> list[str]:
    if not p.is_file():
        raise ConfigError(f"PHI key file {p} not found")
    mode = stat.S_IMODE(p.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(f"PHI key file {p} can be read by group or others (mode {mode:04o}): the key opens "
                          f"every "
                          f"sealed value; restrict it with: chmod 600 {p}")
    lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()
             and not ln.lstrip().startswith("#")]
    if not lines:
        raise ConfigError(f"PHI key file {p} holds no key")
    return lines


def _unwrap(p: Path, line: str, kms: Any) -> bytes:
    if not line.startswith("{"):
        try:
            return base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"PHI key file {p}: a line is not a base64 key") from None
    wrapped = json.loads(line)
    kw: dict[str, Any] = {"CiphertextBlob": base64.b64decode(wrapped["kms_wrapped"])}
    if wrapped.get("kms_key_id"):
        kw["KeyId"] = wrapped["kms_key_id"]
    if wrapped.get("v", 1) >= 2:
        kw["EncryptionContext"] = KMS_CONTEXT
    else:  # wrapped before contexts were used: it still opens; a rotation replaces it
        log.warning("PHI key file %s holds a KMS-wrapped key without an EncryptionContext: rotate it "
                    "(dos2hl phi rotate-key)", p)
    try:
        return (kms or _kms()).decrypt(**kw)["Plaintext"]  # type: ignore[no-any-return]
    except Exception as exc:  # noqa: BLE001 - botocore's errors: the message names no secret
        raise ConfigError(f"PHI key file {p}: KMS could not unwrap the data key ({type(exc).__name__}): "
                          f"check "
                          "the worker's IAM permission kms:Decrypt on the key") from None


def load_sealer(path: str | Path | None, *, kms: Any = None) -> Sealer:
    if not path:
        raise ConfigError("the map encrypts some fields but no PHI key is configured: set "
                          "DOS2HL_PHI_KEY_FILE "
                          "(create one with: dos2hl phi new-key --out PATH) or change their phi policy")
    p = Path(path)
    return Sealer([_unwrap(p, line, kms) for line in _read_lines(p)])
