"""Two processes of one machine share a location's OAuth token through the local token store: its file
lock lets one refresh, the other finds the new record (no second refresh, no forked refresh token)."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr


def _worker(base: str, lid: str, app: dict[str, str], store_dir: str, key: bytes, start_at: float,
            rounds: int, out: Any) -> None:
    import httpx

    from dos2hl.highlevel.oauth import OAuthApp
    from dos2hl.highlevel.token_store import TokenStore
    from dos2hl.highlevel.tokens import OAuthToken
    from dos2hl.phi import Sealer

    provider = OAuthToken(lid, OAuthApp(app["client_id"], SecretStr(app["client_secret"])),
                          SecretStr(app["refresh_token"]), http=httpx.Client(base_url=base, timeout=30),
                          store=TokenStore(store_dir, Sealer(key)), margin_s=1.5)
    seen = []
    for i in range(rounds):  # both ask at the same instants: at the start and after each expiry (7 s apart)
        time.sleep(max(0.0, start_at + i * 7.0 - time.time()))
        token = provider.token().get_secret_value()
        headers = {"Authorization": f"Bearer {token}", "Version": "2021-07-28"}
        seen.append(httpx.get(f"{base}/locations/{lid}", timeout=30, headers=headers).status_code)
    provider.close()
    out.put((provider.refreshes, seen))


def test_two_processes_refresh_a_location_once_per_expiry(tmp_path: Path) -> None:
    import os

    from dos2hl.sandbox import add_oauth_app, init_locations, running
    from dos2hl.sandbox.oauth import OAuthSettings

    lid = next(iter(init_locations(tmp_path / "state", 1)))
    app = add_oauth_app(tmp_path / "state", lid)
    key = os.urandom(32)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    with running(tmp_path / "state", oauth=OAuthSettings(access_ttl_s=6.0)) as base:
        start_at = time.time() + 8.0  # both processes up and waiting, even on a loaded machine
        procs = [ctx.Process(target=_worker, args=(base, lid, app, str(tmp_path / "tokens"), key, start_at, 3,
                                                   out)) for _ in range(2)]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    lines = [json.loads(x) for x in (tmp_path / "state" / "journal.jsonl").read_text().splitlines()]
    refreshes = [x for x in lines if x["operation"] == "oauth-token"]
    assert [x["status"] for x in refreshes] == [200, 200, 200]  # one per expiry, never refused
    assert sum(n for n, _ in results) == 3
    assert all(s == [200, 200, 200] for _, s in results), results
