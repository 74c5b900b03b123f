"""The sandbox importer's requests go through the client (auth, Version, retry policy, error
translation) yet take no permit and are not counted: HighLevel's importers are UI, not API quota."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.highlevel import HighLevelClient, RetryPolicy
from dos2hl.highlevel.imports import ImportRejectedError, post_import

TOKEN = "pit-imports-secret"


class Permits:
    def __init__(self) -> None:
        self.taken = 0

    def acquire(self, location_id: str, n: int = 1) -> None:
        self.taken += n

    def report(self, *a: object) -> None:
        return None


def _client(handler, permits: Permits) -> HighLevelClient:  # type: ignore[no-untyped-def]
    return HighLevelClient("http://127.0.0.1:9", SecretStr(TOKEN), "loc1", permits=permits,
                           transport=httpx.MockTransport(handler), sleep=lambda _s: None,
                           retry=RetryPolicy(max_attempts=3, backoff_base=0))


def test_an_import_is_sent_by_the_client_retried_before_it_is_read_and_never_metered() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)  # nothing sent: retried
        return httpx.Response(200, text="row,status,id,error\n1,created,c1,\n")

    permits = Permits()
    client = _client(handler, permits)
    text = post_import(client, "contacts", b"email\nx@example.com\n", mode="create", file_key="bulk/x.csv")
    assert text.startswith("row,status")
    assert len(seen) == 2 and seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen[-1].headers["Version"] and seen[-1].headers["Content-Type"].startswith("text/csv")
    assert seen[-1].url.params["object"] == "contacts" and seen[-1].content == b"email\nx@example.com\n"
    assert permits.taken == 0 and client.stats["sent"] == 0 and client.tally.total == 0
    client.close()


@pytest.mark.parametrize("status", [413, 500])
def test_a_refused_or_failed_import_is_not_sent_again_and_says_what_the_server_said(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"message": "the file is over 30 MB"})

    client = _client(handler, Permits())
    with pytest.raises(ImportRejectedError) as info:
        post_import(client, "contacts", b"x\n", mode="create", file_key="bulk/big.csv")
    assert len(calls) == 1  # a 5xx after the body was sent may have imported it: never blindly again
    assert info.value.status == status and "30 MB" in str(info.value) and "bulk/big.csv" in str(info.value)
    assert TOKEN not in str(info.value) + repr(info.value)
    client.close()
