"""Issue 14.7: two export locations in one sub-account is refused unless the operator says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dos2hl.errors import ConfigError
from dos2hl.locations import load_locations


def _file(tmp_path: Path, **extra: object) -> Path:
    p = tmp_path / "locations.yaml"
    p.write_text(yaml.safe_dump({"target": "https://services.leadconnectorhq.com", "locations": [
        {"source": "L001", "location_id": "acct-A", "token_env": "T1"},
        {"source": "L002", "location_id": "acct-A", "token_env": "T2"},
        {"source": "L003", "location_id": "acct-B", "token_env": "T3"}], **extra}))
    return p


def test_two_offices_in_one_sub_account_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_locations(_file(tmp_path))
    assert "L001, L002 -> acct-A" in str(err.value) and "shared_sub_accounts" in str(err.value)
    assert "acct-B" not in str(err.value)


def test_a_shared_sub_account_named_by_the_operator_is_accepted(tmp_path: Path) -> None:
    lf = load_locations(_file(tmp_path, shared_sub_accounts=["acct-A"]))
    assert [t.location_id for t in lf.locations] == ["acct-A", "acct-A", "acct-B"]
    with pytest.raises(ConfigError):  # naming another sub-account does not cover this one
        load_locations(_file(tmp_path, shared_sub_accounts=["acct-B"]))


def test_a_migration_into_one_sub_account_twice_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """Refused before any request: the journal of the sandbox stays empty."""
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate
    from tests.migrate.conftest import EXPORT_DATE, make_world

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20)
    try:
        raw = yaml.safe_load(w.locations.read_text())
        raw["locations"][1]["location_id"] = raw["locations"][0]["location_id"]  # a mistyped id
        w.locations.write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match="one sub-account"):
            migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                   export_date=EXPORT_DATE), client_factory=w.factory)
        assert w.sent == []
    finally:
        w.stop()
