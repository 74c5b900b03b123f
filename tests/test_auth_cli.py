"""``dos2hl auth check`` against the sandbox over HTTP: a PIT location and an OAuth location both open
their sub-accounts (the OAuth one after one refresh, whose rotated token is stored); a wrong PIT exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from dos2hl.cli import app
from dos2hl.highlevel.tokens import forget_shared


def test_auth_check_reads_each_location_with_its_credential(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.phi import create_key_file
    from dos2hl.sandbox import init_locations, running

    forget_shared()
    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "k" / "phi.key")))
    tokens = init_locations(tmp_path / "state", 2)
    (l1, pit), (l2, _) = tokens.items()
    with running(tmp_path / "state") as base:
        oauth = httpx.post(f"{base}/_sandbox/oauth", json={"location_id": l2}, timeout=10).json()
        monkeypatch.setenv("T_PIT", pit)
        monkeypatch.setenv("T_ID", oauth["client_id"])
        monkeypatch.setenv("T_SECRET", oauth["client_secret"])
        monkeypatch.setenv("T_RT", oauth["refresh_token"])
        path = tmp_path / "locations.yaml"
        path.write_text(yaml.safe_dump({"target": base, "locations": [
            {"source": "L001", "location_id": l1, "token_env": "T_PIT"},
            {"source": "L002", "location_id": l2, "auth": "oauth", "client_id_env": "T_ID",
             "client_secret_env": "T_SECRET", "refresh_token_env": "T_RT"}]}))
        res = CliRunner().invoke(app, ["auth", "check", "--locations", str(path), "--json"])
        assert res.exit_code == 0, res.output
        rows = {r["source"]: r for r in json.loads(res.stdout)["locations"]}
        assert rows["L001"]["ok"] and rows["L001"]["auth_requests"] == 0
        assert rows["L002"]["ok"] and rows["L002"]["auth_requests"] == 1 and rows["L002"]["requests"] == 2
        assert (tmp_path / "runs" / "state" / "oauth" / f"{l2}.token").exists()
        for secret in (pit, oauth["client_secret"], oauth["refresh_token"]):
            assert secret not in res.output

        monkeypatch.setenv("T_PIT", "pit-wrong")
        res = CliRunner().invoke(app, ["auth", "check", "--locations", str(path)])
        assert res.exit_code == 2
        assert "L001" in res.output and "FAILED (AuthError 401 token)" in res.output
        assert "L002" in res.output and "auth=oauth: ok" in res.output
    forget_shared()


@pytest.mark.s3
def test_auth_check_refreshes_through_the_lease_of_an_s3_token_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: str, s3_bucket: str) -> None:
    """``DOS2HL_TOKEN_STORE=s3://``: the refresh takes the location's lease (here one a dead holder left,
    expired: taken over), stores the rotated token beside it and releases it."""
    import boto3

    from dos2hl.phi import create_key_file
    from dos2hl.sandbox import init_locations, running

    forget_shared()
    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_TOKEN_STORE", f"s3://{s3_bucket}/oauth")
    monkeypatch.setenv("DOS2HL_S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "k" / "phi.key")))
    (lid, _), = init_locations(tmp_path / "state", 1).items()
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    s3.put_object(Bucket=s3_bucket, Key=f"oauth/{lid}.lease",
                  Body=json.dumps({"owner": "elsewhere:1:dead", "expires_at": 1.0}).encode())
    with running(tmp_path / "state") as base:
        oauth = httpx.post(f"{base}/_sandbox/oauth", json={"location_id": lid}, timeout=10).json()
        for k, v in {"T_ID": oauth["client_id"], "T_SECRET": oauth["client_secret"],
                     "T_RT": oauth["refresh_token"]}.items():
            monkeypatch.setenv(k, v)
        path = tmp_path / "locations.yaml"
        path.write_text(yaml.safe_dump({"target": base, "locations": [
            {"source": "L001", "location_id": lid, "auth": "oauth", "client_id_env": "T_ID",
             "client_secret_env": "T_SECRET", "refresh_token_env": "T_RT"}]}))
        res = CliRunner().invoke(app, ["auth", "check", "--locations", str(path), "--json"])
    forget_shared()
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["locations"]
    assert row["ok"] and row["auth_requests"] == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="oauth/").get("Contents", [])]
    assert keys == [f"oauth/{lid}.token"]  # the record; the dead holder's lease taken over and released


def test_auth_check_help_names_both_kinds() -> None:
    res = CliRunner().invoke(app, ["auth", "check", "--help"])
    assert res.exit_code == 0 and "OAuth" in res.output and "PIT" in res.output
