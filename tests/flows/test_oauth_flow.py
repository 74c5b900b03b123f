"""The migration flow under Prefect with OAuth locations whose access tokens expire during the run: the
tasks share one refresher per location, no 401 reaches a record, every refresh is counted."""

from __future__ import annotations

import pytest

from tests.migrate.conftest import EXPORT_DATE, http_world
from tests.migrate.test_oauth_migrate import _fresh_providers, journal, use_oauth

__all__ = ["_fresh_providers"]  # the autouse fixture, for this file too


@pytest.mark.slow  # make test's budget: the same pipeline as test_oauth_migrate.py, under Prefect
def test_the_migrate_flow_renews_oauth_tokens(prefect_harness, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.sandbox.oauth import OAuthSettings
    from flows.migrate import MigrateParams, migrate_flow

    monkeypatch.setenv("DOS2HL_HIGHLEVEL_TOKEN_REFRESH_MARGIN_S", "1")
    with http_world(tmp_path, monkeypatch, oauth=OAuthSettings(access_ttl_s=4.0)) as (w, base):
        use_oauth(w, base, monkeypatch)
        skip = len(journal(w))
        done = migrate_flow(MigrateParams(source=str(w.export), mapping=str(w.mapping),
                                          locations=str(w.locations), target=base, sample=3, approve=True,
                                          executor="threads", workers=2, export_date=EXPORT_DATE))
        lines = journal(w)[skip:]
    assert done["status"] == "completed", done["reconciliation"]
    refreshes = [x for x in lines if x["operation"] == "oauth-token"]
    assert not [x for x in lines if x["operation"] != "oauth-token" and x["status"] == 401]
    assert refreshes and {x["status"] for x in refreshes} == {200}
    assert done["requests"]["by_class"]["auth"] == len(refreshes)
