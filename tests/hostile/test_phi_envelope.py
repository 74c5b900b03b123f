"""Issue 14, finding 10: the PHI envelope. A sealed value is bound to its field *and its record* (moved to
another patient's row it does not open), carries its key's id (a key file is a ring: a rotated file opens
old values and seals with the new key), old ``enc:v1:`` values still open, a key file others can read is
refused, and a KMS-wrapped key is bound to an EncryptionContext."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from dos2hl.errors import ConfigError
from tests.hostile.conftest import CANARY, leaks

FIELD = "custom_objects.clinical_notes.note_text"


def _keys() -> tuple[str, str]:
    from dos2hl.planning.keys import stable_key

    return stable_key("L001", "clinical_note", "402"), stable_key("L001", "clinical_note", "403")


def test_a_sealed_value_moved_to_another_records_row_does_not_open(tmp_path: Path) -> None:
    from dos2hl.phi import create_key_file, load_sealer

    sealer = load_sealer(create_key_file(tmp_path / "k" / "phi.key"))
    mine, other = _keys()
    sealed = sealer.seal(f"{CANARY} allergic to penicillin", FIELD, mine)
    assert sealed.startswith(f"enc:v2:{sealer.kid}:") and CANARY not in sealed
    assert sealer.open(sealed, FIELD, mine).startswith(CANARY)
    with pytest.raises(ConfigError) as moved:
        sealer.open(sealed, FIELD, other)  # pasted into another patient's record
    with pytest.raises(ConfigError) as field:
        sealer.open(sealed, "contact.medical_alert", mine)  # into another field
    assert not leaks(None, str(moved.value), str(field.value))


def test_verification_reports_a_moved_value_as_a_difference(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from dos2hl.phi import create_key_file, load_sealer
    from dos2hl.planning.transform import RecordPayload
    from dos2hl.writing.ledger import IdMap
    from dos2hl.writing.verify import FieldDiff, verify_records

    sealer = load_sealer(create_key_file(tmp_path / "k" / "phi.key"))
    mine, other = _keys()
    payloads = [RecordPayload("custom_objects.clinical_notes", k, sid, "parent", {
        "source_id": sid, "note_text": sealer.seal(f"note {sid}", FIELD, k)}, None)
        for k, sid in ((mine, "402"), (other, "403"))]
    stored = {"hl-" + p.source_id: dict(p.properties) for p in payloads}
    stored["hl-402"]["note_text"], stored["hl-403"]["note_text"] = (stored["hl-403"]["note_text"],
                                                                    stored["hl-402"]["note_text"])  # swapped
    ids = IdMap(
        [
            {"stable_key": p.stable_key, "op": "create", "outcome": "created", "hl_id": "hl-" + p.source_id}
            for p in payloads
        ]
    )
    diff = FieldDiff()
    verify_records(lambda _k, hl_id: SimpleNamespace(properties=stored[hl_id], owner=None), payloads, ids,
                   diff,
                   open_sealed=sealer.open)
    out = diff.to_dict()
    assert out["mismatches"] == 2 and diff.read_back["clinical_note"] == 2, out
    same = FieldDiff()
    verify_records(lambda _k, hl_id: SimpleNamespace(properties={**stored[hl_id], "note_text": next(
        p.properties["note_text"] for p in payloads if "hl-" + p.source_id == hl_id)}, owner=None),
        payloads, ids, same, open_sealed=sealer.open)
    assert same.to_dict()["mismatches"] == 0  # in place: no difference


def test_values_sealed_before_envelopes_had_a_key_id_still_open(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from dos2hl.phi import load_sealer

    key = AESGCM.generate_key(bit_length=256)
    path = tmp_path / "phi.key"
    path.write_text(base64.b64encode(key).decode() + "\n")
    path.chmod(0o600)
    nonce = os.urandom(12)
    v1 = "enc:v1:" + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, b"old value",
                                                                  FIELD.encode())).decode()
    assert load_sealer(path).open(v1, FIELD,
                                  "any record") == "old value"  # an existing ledger / HighLevel value
    with pytest.raises(ConfigError):
        load_sealer(path).open(v1, "contact.medical_alert", "")


def test_a_rotated_key_file_opens_old_values_and_seals_with_the_new_key(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dos2hl.cli import app
    from dos2hl.phi import create_key_file, load_sealer

    path = create_key_file(tmp_path / "k" / "phi.key")
    mine, _ = _keys()
    old = load_sealer(path)
    sealed_old = old.seal("before rotation", FIELD, mine)
    res = CliRunner().invoke(app, ["phi", "rotate-key", "--key-file", str(path)])
    assert res.exit_code == 0, res.output
    ring = load_sealer(path)
    assert ring.kid != old.kid and ring.key_ids == [old.kid, ring.kid]
    assert (path.stat().st_mode & 0o777) == 0o600
    assert ring.open(sealed_old, FIELD, mine) == "before rotation"
    sealed_new = ring.seal("after rotation", FIELD, mine)
    assert sealed_new.startswith(f"enc:v2:{ring.kid}:")
    with pytest.raises(ConfigError, match=ring.kid):  # the old key alone cannot open it, and says which key
        old.open(sealed_new, FIELD, mine)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    from typer.testing import CliRunner

    from dos2hl.cli import app
    from dos2hl.phi import create_key_file, load_sealer

    path = create_key_file(tmp_path / "k" / "phi.key")
    sealed = load_sealer(path).seal("x", FIELD, "r")
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_sealer(path)
    res = CliRunner().invoke(app, ["phi", "decrypt", sealed, "--field", FIELD, "--record", "r",
                                   "--key-file", str(path)])
    assert res.exit_code == 2 and "chmod 600" in res.output


def test_a_new_key_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    from dos2hl.phi import create_key_file

    old = os.umask(0)
    try:
        path = create_key_file(tmp_path / "keys" / "phi.key")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o600 and (path.parent.stat().st_mode & 0o777) == 0o700


class RecordingKms:
    """A fake KMS with boto3's call signature: wraps with a context it insists on getting back."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._blobs: dict[bytes, tuple[bytes, dict[str, str]]] = {}

    def generate_data_key(self, *, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str] | None = None
                          ) -> dict[str, Any]:
        self.calls.append(("generate_data_key", {"KeyId": KeyId, "EncryptionContext": EncryptionContext}))
        plain, blob = os.urandom(32), os.urandom(64)
        self._blobs[blob] = (plain, dict(EncryptionContext or {}))
        return {"Plaintext": plain, "CiphertextBlob": blob, "KeyId": KeyId}

    def decrypt(self, *, CiphertextBlob: bytes, KeyId: str | None = None,
                EncryptionContext: dict[str, str] | None = None) -> dict[str, Any]:
        self.calls.append(("decrypt", {"KeyId": KeyId, "EncryptionContext": EncryptionContext}))
        plain, ctx = self._blobs[CiphertextBlob]
        if ctx != dict(EncryptionContext or {}):
            raise RuntimeError("InvalidCiphertextException")
        return {"Plaintext": plain}


def test_kms_wrapping_and_unwrapping_pass_an_encryption_context(tmp_path: Path) -> None:
    from dos2hl.phi import KMS_CONTEXT, create_key_file, load_sealer

    kms = RecordingKms()
    path = create_key_file(tmp_path / "k" / "wrapped.key", kms_key_id="alias/dos2hl", kms=kms)
    sealer = load_sealer(path, kms=kms)
    assert sealer.open(sealer.seal("x", FIELD, "r"), FIELD, "r") == "x"
    assert [c[1]["EncryptionContext"] for c in kms.calls] == [KMS_CONTEXT, KMS_CONTEXT]
    assert kms.calls[1][1]["KeyId"] == "alias/dos2hl"


def test_with_moto_a_wrapped_key_does_not_unwrap_without_its_context(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    from dos2hl.phi import create_key_file, load_sealer

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        kms = boto3.client("kms")
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        path = create_key_file(tmp_path / "k" / "wrapped.key", kms_key_id=kid, kms=kms)
        blob = base64.b64decode(json.loads(path.read_text())["kms_wrapped"])
        with pytest.raises(Exception, match="InvalidCiphertext"):  # the blob alone (no context) opens nothing
            kms.decrypt(CiphertextBlob=blob)
        sealer = load_sealer(path, kms=kms)
        assert sealer.open(sealer.seal("y", FIELD, "r"), FIELD, "r") == "y"
