"""locations.yaml's credentials (issue 17): auth pit (token_env or token_file) or oauth (three variables),
validated; the provider each kind gets; OAuth needs the key that seals its rotated refresh token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dos2hl.errors import ConfigError
from dos2hl.highlevel.tokens import OAuthToken, StaticToken, forget_shared
from dos2hl.locations import load_locations, token_provider
from dos2hl.settings import Dos2hlSettings

OAUTH = {"auth": "oauth", "client_id_env": "T_ID", "client_secret_env": "T_SECRET",
         "refresh_token_env": "T_RT"}


def _file(tmp_path: Path, **entry: Any) -> Path:
    p = tmp_path / "locations.yaml"
    p.write_text(yaml.safe_dump({"target": "http://127.0.0.1:9",
                                 "locations": [{"source": "L001", "location_id": "abc123", **entry}]}))
    return p


@pytest.mark.parametrize(("entry", "message"), [
    ({}, "exactly one of token_env and token_file"),
    ({"token_env": "A", "token_file": "/x"}, "exactly one of token_env and token_file"),
    ({"token_env": "A", "client_id_env": "B"}, "only for auth: oauth"),
    ({"auth": "oauth", "client_id_env": "B"}, "needs client_secret_env, refresh_token_env"),
    ({**OAUTH, "token_env": "A"}, "are for auth: pit"),
    ({"auth": "basic", "token_env": "A"}, "auth"),
    ({**OAUTH, "client_id_env": "not a name"}, "client_id_env"),
])
def test_credentials_are_validated(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_locations(_file(tmp_path, **entry))


def test_a_pit_location_gets_a_static_token_from_its_file(tmp_path: Path) -> None:
    (tmp_path / "pit").write_text("pit-secret\n")
    lf = load_locations(_file(tmp_path, token_file=str(tmp_path / "pit")))
    provider = token_provider(lf, lf.locations[0], Dos2hlSettings())
    assert isinstance(provider, StaticToken)
    assert provider.token().get_secret_value() == "pit-secret"
    assert lf.token(lf.locations[0]).get_secret_value() == "pit-secret"
    assert "pit-secret" not in lf.locations[0].credential


def test_an_oauth_location_needs_the_key_and_its_variables_and_is_shared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.phi import create_key_file

    forget_shared()
    lf = load_locations(_file(tmp_path, **OAUTH))
    loc = lf.locations[0]
    settings = Dos2hlSettings(storage=str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match="DOS2HL_PHI_KEY_FILE"):
        token_provider(lf, loc, settings)
    settings = settings.model_copy(update={"phi_key_file": str(create_key_file(tmp_path / "k" / "phi.key"))})
    with pytest.raises(ConfigError, match="T_ID"):
        token_provider(lf, loc, settings)
    monkeypatch.setenv("T_ID", "app")
    monkeypatch.setenv("T_SECRET", "s")
    with pytest.raises(ConfigError, match="T_RT"):
        token_provider(lf, loc, settings)
    monkeypatch.setenv("T_RT", "rt")
    try:
        first = token_provider(lf, loc, settings)
        assert isinstance(first, OAuthToken) and token_provider(lf, loc, settings) is first
        with pytest.raises(ConfigError, match="auth: oauth"):
            lf.token(loc)
        assert settings.token_store_uri() == f"{tmp_path / 'runs'}/state/oauth"
        assert first._store is not None and first._store.lease_ttl_s == 150.0  # the default timeouts
    finally:
        forget_shared()


def test_the_token_stores_lease_outlasts_the_slowest_exchange_of_the_timeouts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.highlevel.lease import lease_ttl_s
    from dos2hl.phi import create_key_file

    assert lease_ttl_s(10, 30) == 150.0  # 3 x 40 s + 3 s of back-off + 25 s: under the floor
    for k, v in {"T_ID": "app", "T_SECRET": "s", "T_RT": "rt"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DOS2HL_HIGHLEVEL_READ_TIMEOUT", "100")
    forget_shared()
    lf = load_locations(_file(tmp_path, **OAUTH))
    settings = Dos2hlSettings(storage=str(tmp_path / "runs"),
                              phi_key_file=str(create_key_file(tmp_path / "k" / "phi.key")))
    try:
        provider = token_provider(lf, lf.locations[0], settings)
        assert isinstance(provider, OAuthToken) and provider._store is not None
        assert provider._store.lease_ttl_s == 3 * 110 + 3 + 25  # every attempt timing out, and the write
    finally:
        forget_shared()
