"""Issue 17 with Ray: two shard workers (processes) share one refresher, the token actor. Access tokens
expire mid-run: no 401 reaches a record, each expiry costs exactly one refresh for all workers and the
driver, and every refresh is counted (class auth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dos2hl.sandbox.oauth import OAuthSettings
from tests.migrate.conftest import EXPORT_DATE, http_world
from tests.migrate.test_oauth_migrate import _fresh_providers, journal, use_oauth

__all__ = ["_fresh_providers"]  # the autouse fixture, for this file too


def _ray_oauth_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ttl: float,
                   **env: str) -> tuple[dict[str, Any], list[dict[str, Any]], set[str]]:
    import ray

    from dos2hl.pipeline import MigrateParams, migrate

    monkeypatch.setenv("DOS2HL_GOVERNOR_NAME", "gov-oauth-test")
    if ray.is_initialized():
        ray.shutdown()
    try:
        with http_world(tmp_path, monkeypatch, oauth=OAuthSettings(access_ttl_s=ttl)) as (w, base):
            for k, v in env.items():  # after the world's own (lifted) governor limits, which they replace
                monkeypatch.setenv(k, v)
            use_oauth(w, base, monkeypatch)  # before Ray starts: its workers inherit the environment
            skip = len(journal(w))
            done = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping),
                                         locations=str(w.locations), sample=0, approve=True, executor="ray",
                                         workers=2, export_date=EXPORT_DATE, bulk_threshold=10**6))
            named = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
            return done, journal(w)[skip:], named
    finally:
        if ray.is_initialized():
            from dos2hl.governor.actor import NAMESPACE, connect, kill

            kill(connect(name="gov-oauth-test"))
            try:
                ray.kill(ray.get_actor("oauth-tokens", namespace=NAMESPACE))
            except ValueError:
                pass
            ray.shutdown()


def _check(done: dict[str, Any], lines: list[dict[str, Any]], ttl: float) -> None:
    assert done["status"] == "completed", done.get("reconciliation")
    assert not [r for d in done["locations"].values() for r in d["objects"].values()
                if r["failed"] or r["held"]]
    api = [x for x in lines if x["operation"] != "oauth-token"]
    refreshes = [x for x in lines if x["operation"] == "oauth-token"]
    assert not [x for x in api if x["status"] == 401]  # not one request saw a 401
    assert {x["status"] for x in refreshes} == {200}  # no refresh token used twice (no fork)
    by_loc: dict[str, list[float]] = {}
    for x in refreshes:
        by_loc.setdefault(x["location"], []).append(x["time"])
    for times in by_loc.values():  # one refresh per expiry, for both workers and the driver together
        assert all(b - a > 0.7 * ttl for a, b in zip(times, times[1:], strict=False)), times
    span = max(x["time"] for x in api) - min(x["time"] for x in api)
    assert max(len(t) for t in by_loc.values()) >= 2, (span, len(api), by_loc)  # expired during the run
    assert done["requests"]["by_class"]["auth"] == len(refreshes)
    assert done["requests"]["sent"] == len(lines)


@pytest.mark.slow  # ~30 s of Ray for make test's budget; the single-process OAuth tests run there
def test_two_ray_workers_share_one_refresher_and_never_see_a_401(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # 100 requests a second a location: the ~2,500 requests last about 13 s, two lifetimes of a 6 s token
    done, lines, named = _ray_oauth_run(tmp_path, monkeypatch, 6.0,
                                        DOS2HL_HIGHLEVEL_TOKEN_REFRESH_MARGIN_S="1",
                                        DOS2HL_GOVERNOR_BURST="100", DOS2HL_GOVERNOR_WINDOW_S="1")
    assert "oauth-tokens" in named
    _check(done, lines, 6.0)


@pytest.mark.slow
def test_sixty_second_tokens_expire_and_renew_during_a_throttled_ray_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HighLevel's rotation at a 60 s lifetime (the default 300 s margin: refreshed after 48 s), the run
    throttled by the governor (2 requests/s a location) to last a few lifetimes: about 4 minutes."""
    done, lines, _ = _ray_oauth_run(tmp_path, monkeypatch, 60.0, DOS2HL_GOVERNOR_BURST="2",
                                    DOS2HL_GOVERNOR_WINDOW_S="1")
    _check(done, lines, 60.0)
