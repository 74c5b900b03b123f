"""PHI hygiene: patient values reach HighLevel's records and nothing else (logs, ledger, report, journal,
file names, exceptions)."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dos2hl.pipeline import MigrateParams, migrate
from dos2hl.storage import open_store
from dos2hl.writing.ledger import read_ledger
from tests.migrate.conftest import EXPORT_DATE, World, make_world


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Every object of the seed mapped (notes, activities, documents carry patient text too)."""
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, crm=True, patients=20)
    yield w
    w.stop()


def _canaries(w: World) -> set[str]:
    pats = pq.read_table(w.export.parent / "truth" / "patient.parquet").to_pylist()
    out: set[str] = set()
    for p in pats:
        for col in ("lname", "fname", "email", "cphone", "hphone", "addr1"):
            v = p.get(col)
            if isinstance(v, str) and len(v) >= 6:
                out.add(v)
        if p.get("birthdate"):
            out.add(str(p["birthdate"]))
    notes = pq.read_table(w.export.parent / "truth" / "clinnote.parquet").column("note_text").to_pylist()
    out |= {n[:40] for n in notes if isinstance(n, str) and len(n) >= 40}
    comm = pq.read_table(w.export.parent / "truth" / "commlog.parquet").column("note").to_pylist()
    out |= {n[:30] for n in comm if isinstance(n, str) and len(n) >= 30}
    return out


def test_no_patient_value_outside_the_records(world: World, caplog) -> None:  # type: ignore[no-untyped-def]
    w = world
    canaries = _canaries(w)
    assert len(canaries) > 50
    caplog.set_level(logging.DEBUG)
    out = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 export_date=EXPORT_DATE, sample=5, workers=2), approve=lambda _r: True,
                  client_factory=w.factory)
    assert out["status"] == "completed"
    run = Path(w.root) / "runs" / out["run_id"]
    texts = {"logs": caplog.text, "journal": (w.state / "journal.jsonl").read_text()}
    for f in (run / "report").iterdir():
        texts[f"report/{f.name}"] = f.read_text()
    for f in (run / "sample" / "report").iterdir():
        texts[f"sample/{f.name}"] = f.read_text()
    for f in (run / "households").iterdir():
        texts[f"households/{f.name}"] = f.read_text()
    ledger = read_ledger(open_store(str(run)))
    texts["ledger"] = "\n".join(str(v) for col in ledger.columns for v in col.to_pylist())
    names = "\n".join(str(p.relative_to(w.root)) for p in Path(w.root).rglob("*"))
    texts["file names"] = names
    # the values did reach HighLevel (the check is not vacuous)
    stored = "\n".join(str(c) for loc in w.loc_ids for kind in ("contacts", "notes", "opportunities")
                        for c in w.dump(loc)[kind])
    assert sum(c in stored for c in canaries) > 20
    leaks = {where: sorted(c for c in canaries if c in text)[:3] for where, text in texts.items()}
    assert not any(leaks.values()), leaks


def test_phi_new_key_and_the_documented_decrypt_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dos2hl.cli import app
    from dos2hl.phi import load_sealer

    key = tmp_path / "phi.key"
    runner = CliRunner()
    assert runner.invoke(app, ["phi", "new-key", "--out", str(key)]).exit_code == 0
    assert runner.invoke(app, ["phi", "new-key", "--out", str(key)]).exit_code == 2  # never overwritten
    field = "custom_objects.clinical_notes.note_text"
    from dos2hl.planning.keys import stable_key

    sealed = load_sealer(key).seal("Testnote canary 4711", field, stable_key("L001", "clinical_note", "402"))
    res = runner.invoke(app, ["phi", "decrypt", "--field", field, "--record", "L001/clinical_note/402",
                              "--key-file", str(key)], input=sealed)
    assert res.exit_code == 0 and res.output.strip() == "Testnote canary 4711"
    wrong = runner.invoke(app, ["phi", "decrypt", sealed, "--field", "contact.medical_alert", "--record",
                                "L001/clinical_note/402", "--key-file", str(key)])
    assert wrong.exit_code == 2 and "canary" not in wrong.output  # bound to its field; no value in the error
    other = runner.invoke(app, ["phi", "decrypt", sealed, "--field", field, "--record",
                                "L001/clinical_note/403",
                                "--key-file", str(key)])
    assert other.exit_code == 2 and "canary" not in other.output  # and to its record


def test_a_kms_wrapped_key_opens_only_through_kms(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import base64
    import json

    import boto3
    from moto import mock_aws

    from dos2hl.errors import ConfigError
    from dos2hl.phi import create_key_file, load_sealer

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        kms = boto3.client("kms")
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        path = create_key_file(tmp_path / "wrapped.key", kms_key_id=kid, kms=kms)
        data = json.loads(path.read_text())
        assert data["kms_key_id"] == kid and len(base64.b64decode(data["kms_wrapped"])) > 32  # no plain key
        sealed = load_sealer(path, kms=kms).seal("x", "f", "r")
        assert load_sealer(path, kms=kms).open(sealed, "f", "r") == "x"
        elsewhere = boto3.client("kms", region_name="eu-west-1")  # a worker that cannot reach the key
        with pytest.raises(ConfigError, match="kms:Decrypt"):
            load_sealer(path, kms=elsewhere)
