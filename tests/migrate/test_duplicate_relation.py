"""A relation that landed while its answer was lost is sent again, and HighLevel refuses the second copy
with its own text (400 "Could not create relation: duplicate relation of object Ids for given association
<id>", highlevel-api-docs#73; docs/highlevel-errors.md). The writer must count that as done: the record is
written, related to its contact exactly once, nothing failed, nothing dead-lettered."""

from __future__ import annotations

import httpx
import pytest

from dos2hl.params import MigrateParams
from tests.migrate.conftest import EXPORT_DATE, World
from tests.migrate.test_resume import Crash

DUPLICATE = "Could not create relation: duplicate relation of object Ids for given association "


def _is_relation_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/") == "/associations/relations"


class RelationKiller(httpx.BaseTransport):
    """Passes requests through until the n-th relation create, then dies *after* it landed."""

    def __init__(self, inner: httpx.BaseTransport, n: int) -> None:
        self.inner, self.n = inner, n

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if _is_relation_create(request):
            self.n -= 1
            if self.n == 0:
                raise Crash()  # the relation exists; its answer and the unflushed ledger batch are lost
        return response


class RelationAnswers(httpx.BaseTransport):
    """Passes everything through; keeps the status and message of each relation create's answer."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[int, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if _is_relation_create(request):
            response.read()
            body = response.json()
            self.seen.append((response.status_code, str(body.get("message", ""))))
        return response


def test_a_duplicate_relation_answer_counts_as_already_related(world: World) -> None:
    from dos2hl.execution.driver import discover, prepare
    from dos2hl.execution.shard import migrate_shard
    from dos2hl.settings import Dos2hlSettings

    w = world
    opts = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations), sample=0,
                         workers=1, export_date=EXPORT_DATE, run_id="dup-relation")
    ctx = prepare(opts, settings=Dos2hlSettings(), client_factory=w.factory)
    discover(ctx, w.factory)
    rows = {(s["location"], int(s["shard"])): s["rows"] for s in ctx.manifest["tables"]["patient"]["shards"]}
    spec = max(ctx.specs(), key=lambda s: rows[(s.location, s.shard)])
    dying = w.factory(spec.location)
    dying._http._transport = RelationKiller(dying._http._transport, 1)
    with pytest.raises(Crash):
        migrate_shard(spec, dying)
    assert len(w.dump(spec.location)["relations"]) == 1  # landed, unrecorded

    again = w.factory(spec.location)
    answers = again._http._transport = RelationAnswers(again._http._transport)
    result = migrate_shard(spec, again)

    duplicates = [(s, m) for s, m in answers.seen if s == 400]
    assert duplicates and all(m.startswith(DUPLICATE) for _, m in duplicates), answers.seen  # sent again
    assert not result.error and not result.failed and not result.held, result  # done, not dead-lettered
    there = w.dump(spec.location)
    records = sum(len(recs) for recs in there["objects"].values())
    assert records == sum(n for obj, n in result.written.items() if obj != "patient") > 0
    assert len(there["relations"]) == records  # each record related to its contact exactly once
