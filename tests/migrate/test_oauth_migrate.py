"""Issue 17, tokens that renew: a migration whose locations use OAuth apps with short-lived access tokens
(the sandbox over HTTP, rotating refresh tokens): no 401 reaches a record, each expiry costs exactly one
refresh, every refresh is counted (class auth), and a later run starts from the stored rotated token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from dos2hl.cli import app
from dos2hl.highlevel.tokens import forget_shared
from dos2hl.sandbox.oauth import OAuthSettings
from tests.migrate.conftest import EXPORT_DATE, World, http_world

TTL = 4.0


@pytest.fixture(autouse=True)
def _fresh_providers() -> Iterator[None]:
    forget_shared()  # a provider is per process and location: none left from another test
    yield
    forget_shared()


def use_oauth(w: World, base: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    """Install an OAuth app on each location, put its credentials in the environment and switch
    locations.yaml to auth: oauth. Returns the apps by export location."""
    lf = yaml.safe_load(w.locations.read_text())
    apps = {}
    for entry in lf["locations"]:
        src = entry["source"]
        apps[src] = got = httpx.post(f"{base}/_sandbox/oauth", json={"location_id": entry["location_id"]},
                                     timeout=10).json()
        for field, var in (("client_id", "ID"), ("client_secret", "SECRET"), ("refresh_token", "REFRESH")):
            monkeypatch.setenv(f"T_OAUTH_{var}_{src}", got[field])
        entry.pop("token_env")
        entry.update(auth="oauth", client_id_env=f"T_OAUTH_ID_{src}",
                     client_secret_env=f"T_OAUTH_SECRET_{src}", refresh_token_env=f"T_OAUTH_REFRESH_{src}")
        monkeypatch.delenv(f"DOS2HL_TEST_TOKEN_{src}")  # no PIT to fall back on
    w.locations.write_text(yaml.safe_dump(lf))
    return apps


def journal(w: World) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (w.state / "journal.jsonl").read_text().splitlines()]


def test_a_migration_renews_expiring_oauth_tokens_without_a_401_reaching_a_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOS2HL_HIGHLEVEL_TOKEN_REFRESH_MARGIN_S", "1")  # refreshed 3.2 s into a 4 s token
    run = CliRunner().invoke
    with http_world(tmp_path, monkeypatch, oauth=OAuthSettings(access_ttl_s=TTL)) as (w, base):
        use_oauth(w, base, monkeypatch)
        skip = len(journal(w))
        common = ["--mapping", str(w.mapping), "--locations", str(w.locations), "--sample", "0", "--json",
                  "--export-date", EXPORT_DATE.isoformat()]
        res = run(app, ["migrate", str(w.export), *common, "--run-id", "r-oauth"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["status"] == "completed"
        lines = journal(w)[skip:]
        api = [x for x in lines if x["operation"] != "oauth-token"]
        refreshes = [x for x in lines if x["operation"] == "oauth-token"]
        assert not [x for x in api if x["status"] == 401]  # no request, let alone a record, saw a 401
        assert {x["status"] for x in refreshes} == {200}  # no refresh token was ever used twice
        by_loc: dict[str, list[float]] = {}
        for x in refreshes:
            by_loc.setdefault(x["location"], []).append(x["time"])
        assert set(by_loc) == set(w.loc_ids.values())
        span = max(x["time"] for x in api) - min(x["time"] for x in api)
        for times in by_loc.values():  # one refresh per expiry: never two within one token's life
            assert all(b - a > 0.7 * TTL for a, b in zip(times, times[1:], strict=False)), times
            assert len(times) <= 1 + span / (0.7 * TTL)
        assert max(len(t) for t in by_loc.values()) >= 2, (span, by_loc)  # tokens did expire mid-run
        assert out["requests_by_class"]["auth"] == len(refreshes)  # every request counted
        assert out["requests"] == len(lines)
        stored = sorted((tmp_path / "runs" / "state" / "oauth").glob("*.token"))
        assert len(stored) == 2

        # a new process, a new run: the environment's first refresh tokens are dead (rotated); the
        # store's are used, so nothing pauses
        forget_shared()
        skip = len(journal(w))
        res = run(app, ["migrate", str(w.export), *common, "--run-id", "r-oauth-2"])
        assert res.exit_code == 0, res.output
        assert {x["status"] for x in journal(w)[skip:] if x["operation"] == "oauth-token"} <= {200}
