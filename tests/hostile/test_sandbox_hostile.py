"""The sandbox against hostile requests (issue 14, finding 12): the token is checked before the body is
read, a body is never read past 30 MB + 1 byte (with or without Content-Length) and answers 413, and
deeply nested JSON is a 422 with a journal line, like HighLevel."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from dos2hl.sandbox import create_app, init_locations

CHUNK = 1024 * 1024
MAX_BODY_BYTES = 30 * CHUNK  # HighLevel's limit, the sandbox's cap


class Body:
    """An ASGI ``receive`` that hands out ``total`` bytes in 1 MiB chunks and counts what was taken."""

    def __init__(self, total: int) -> None:
        self.total, self.taken = total, 0

    async def __call__(self) -> dict[str, Any]:
        n = min(CHUNK, self.total - self.taken)
        self.taken += n
        return {"type": "http.request", "body": b"x" * n, "more_body": self.taken < self.total}


def call(app: Any, method: str, path: str, body: Body, headers: dict[str, str]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "scheme": "https", "server": ("testserver", 443),
             "client": ("127.0.0.1", 1),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, body, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.fixture()
def sandbox(tmp_path: Path) -> Any:
    tokens = init_locations(tmp_path / "sb", 1)
    app = create_app(tmp_path / "sb")
    (lid, token), = tokens.items()
    yield app, lid, token, tmp_path / "sb" / "journal.jsonl"
    app.state.store.close()


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("path", ["/contacts/", "/_sandbox/imports"])
def test_no_token_is_401_before_the_body_is_read(sandbox: Any, path: str) -> None:
    app, _lid, _token, _j = sandbox
    body = Body(96 * CHUNK)
    status, _ = call(app, "POST", path, body, {"content-type": "application/json", "version": "2021-07-28"})
    assert status == 401
    assert body.taken == 0


@pytest.mark.parametrize("declared", [True, False])
@pytest.mark.parametrize("path", ["/contacts/", "/_sandbox/imports"])
def test_a_body_over_30_mb_is_413_and_read_at_most_cap_plus_one(
    sandbox: Any, declared: bool, path: str
) -> None:
    app, _lid, token, journal = sandbox
    total = 40 * CHUNK
    body = Body(total)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
               "version": "2021-07-28"}
    if declared:
        headers["content-length"] = str(total)
    status, _ = call(app, "POST", path, body, headers)
    assert status == 413
    assert body.taken <= (0 if declared else MAX_BODY_BYTES + CHUNK)  # one chunk past the cap at most
    if path == "/contacts/":
        assert _journal(journal)[-1]["status"] == 413


def test_deeply_nested_json_is_422_with_a_journal_line(sandbox: Any) -> None:
    from starlette.testclient import TestClient

    app, lid, token, journal = sandbox
    tc = TestClient(app, base_url="https://services.leadconnectorhq.com")
    for depth in (100, 100_000):
        nested = (
            '{"locationId": "%s", "firstName": "A", "customFields": ' % lid + "[" * depth + "]" * depth + "}"
        )
        r = tc.post("/contacts/", content=nested.encode(), headers={
            "Authorization": f"Bearer {token}", "Version": "2021-07-28", "Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert "nests deeper" in json.dumps(r.json())
        line = _journal(journal)[-1]
        assert line["status"] == 422 and line["path"] == "/contacts/"
