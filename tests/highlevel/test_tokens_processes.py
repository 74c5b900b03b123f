"""Two processes share a location's OAuth token through the token store: in a local store its file lock
lets one refresh, in an ``s3://`` store (moto's server, as two machines would) its lease does; the other
finds the new record (no second refresh, no forked refresh token)."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
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


def _two(ctx: Any, out: Any, target: Any, args: tuple[Any, ...], *, timeout: float) -> list[Any]:
    """``target(*args)`` in two spawned processes at once; what each put on ``out`` (at most ``timeout``
    seconds each), after both ended."""
    procs = [ctx.Process(target=target, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results


def _journal(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (tmp_path / "state" / "journal.jsonl").read_text().splitlines()]


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
        results = _two(ctx, out, _worker, (base, lid, app, str(tmp_path / "tokens"), key, start_at, 3, out),
                       timeout=120)
    lines = _journal(tmp_path)
    refreshes = [x for x in lines if x["operation"] == "oauth-token"]
    assert [x["status"] for x in refreshes] == [200, 200, 200]  # one per expiry, never refused
    assert sum(n for n, _ in results) == 3
    assert all(s == [200, 200, 200] for _, s in results), results


def _s3_worker(base: str, lid: str, app: dict[str, str], uri: str, endpoint: str, key: bytes, ttl: float,
               barrier: Any, out: Any) -> None:
    import hashlib

    import httpx

    from dos2hl.highlevel.oauth import OAuthApp
    from dos2hl.highlevel.token_store import TokenStore
    from dos2hl.highlevel.tokens import OAuthToken
    from dos2hl.phi import Sealer
    from dos2hl.settings import S3Settings
    from dos2hl.storage import open_store

    store = TokenStore(uri, Sealer(key), store=open_store(uri, S3Settings(endpoint_url=endpoint)))
    provider = OAuthToken(lid, OAuthApp(app["client_id"], SecretStr(app["client_secret"])),
                          SecretStr(app["refresh_token"]), http=httpx.Client(base_url=base, timeout=30),
                          store=store, margin_s=0.5)
    seen: list[str] = []
    statuses: list[int | str] = []
    try:
        for i in range(2):  # both ask at once: with no record yet, then when the record has expired
            barrier.wait(timeout=120)
            if i:
                time.sleep(ttl)
            token = provider.token().get_secret_value()
            seen.append(hashlib.sha256(token.encode()).hexdigest()[:16])  # a digest: the token stays here
            headers = {"Authorization": f"Bearer {token}", "Version": "2021-07-28"}
            statuses.append(httpx.get(f"{base}/locations/{lid}", timeout=30, headers=headers).status_code)
    except Exception as exc:  # a refused refresh (the token forked): reported, not left to a queue timeout
        statuses.append(type(exc).__name__)
        barrier.abort()
    provider.close()
    out.put((provider.refreshes, seen, statuses))


@pytest.fixture()
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """moto's server (threads of this process) checks a PUT's or DELETE's condition, then writes, with no
    lock between: two requests in one instant could both pass. S3 applies a condition atomically; so does
    moto with this lock around both handlers (the test is then about the lease, not moto's window)."""
    import functools
    import threading

    from moto.s3.responses import S3Response

    lock, calls = threading.Lock(), []
    for name in ("put_object", "delete_object"):
        handler = getattr(S3Response, name)

        @functools.wraps(handler)
        def atomic(self: Any, _handler: Any = handler, _name: str = name) -> Any:
            with lock:
                calls.append(_name)
                return _handler(self)

        monkeypatch.setattr(S3Response, name, atomic)
    return calls


def test_two_processes_on_an_s3_token_store_refresh_once_through_the_lease(
        tmp_path: Path, s3_server: str, s3_bucket: str, atomic_moto: list[str]) -> None:
    """Two machines (two processes, no shared file lock, no Ray) on one ``s3://`` token store: the lease
    lets one refresh; the other, once it holds the lease, finds the new record and uses it."""
    import os

    import boto3

    from dos2hl.sandbox import add_oauth_app, init_locations, running
    from dos2hl.sandbox.oauth import OAuthSettings

    lid = next(iter(init_locations(tmp_path / "state", 1)))
    app = add_oauth_app(tmp_path / "state", lid)
    key, ttl = os.urandom(32), 3.0
    ctx = multiprocessing.get_context("spawn")
    out, barrier = ctx.Queue(), ctx.Barrier(2)
    uri = f"s3://{s3_bucket}/oauth"
    with running(tmp_path / "state", oauth=OAuthSettings(access_ttl_s=ttl)) as base:  # rotating tokens
        results = _two(ctx, out, _s3_worker, (base, lid, app, uri, s3_server, key, ttl, barrier, out),
                       timeout=180)
    lines = _journal(tmp_path)
    exchanges = [x for x in lines if x["operation"] == "oauth-token"]
    # one exchange each time both asked, none refused: rotation on, so a refresh token sent twice would be
    assert [x["status"] for x in exchanges] == [200, 200], exchanges
    assert sum(n for n, _, _ in results) == 2  # the two processes' own counts agree with the journal
    (_, seen_a, ok_a), (_, seen_b, ok_b) = results
    assert seen_a == seen_b and seen_a[0] != seen_a[1]  # both went on with the same new access token
    assert ok_a == ok_b == [200, 200]
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="oauth/").get("Contents", [])]
    assert keys == [f"oauth/{lid}.token"]  # the record; the lease was released
    assert atomic_moto.count("delete_object") >= 2  # each lease taken was released (through the lock)
