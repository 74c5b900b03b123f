"""A shard whose worker is lost half-way runs again in the same phase (the Ray pool's requeue, issue 16):
the phase's inventory was read before the first attempt, so it does not hold what that attempt created;
the ledger holds the shard's ``started`` marker but not the creates of its unflushed batch. The second
attempt must still create nothing twice and lose nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from dos2hl.params import MigrateParams
from tests.migrate.conftest import EXPORT_DATE, World
from tests.migrate.test_resume import Crash, Killer


class ContactKiller(httpx.BaseTransport):
    """Passes requests through until the n-th contact create, then dies *after* it landed."""

    def __init__(self, inner: httpx.BaseTransport, n: int) -> None:
        self.inner, self.n = inner, n

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.rstrip("/") == "/contacts":
            self.n -= 1
            if self.n == 0:
                raise Crash()
        return response


@pytest.mark.parametrize("killer", [lambda t: ContactKiller(t, 2), lambda t: Killer(t, 3)],
                         ids=["after-2-contacts", "after-3-records"])
def test_a_shard_lost_half_way_runs_again_in_the_phase_with_no_duplicates_and_no_losses(
        world: World, killer) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.execution.driver import discover, prepare
    from dos2hl.execution.shard import migrate_shard
    from dos2hl.settings import Dos2hlSettings

    w = world
    opts = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations), sample=0,
                         workers=1, export_date=EXPORT_DATE, run_id="requeued")
    ctx = prepare(opts, settings=Dos2hlSettings(), client_factory=w.factory)
    discover(ctx, w.factory)  # once per phase, before any shard: the retry reads this same inventory
    rows = {(s["location"], int(s["shard"])): s["rows"] for s in ctx.manifest["tables"]["patient"]["shards"]}
    spec = max(ctx.specs(), key=lambda s: rows[(s.location, s.shard)])  # the shard with most patients
    assert rows[(spec.location, spec.shard)] >= 3
    dying = w.factory(spec.location)
    dying._http._transport = killer(dying._http._transport)
    with pytest.raises(Crash):
        migrate_shard(spec, dying)
    landed = len(w.dump(spec.location)["contacts"])
    assert landed > 0  # the lost attempt left contacts in HighLevel that no ledger row names
    result = migrate_shard(spec, w.factory(spec.location))
    assert not result.error and not result.failed and not result.held, result
    there = w.dump(spec.location)
    ids = _source_ids(there)
    assert ids and max(ids.values()) == 1, "a contact was created twice"
    assert len(ids) == result.written["patient"] == rows[(spec.location, spec.shard)]
    records = 0
    for key, recs in there["objects"].items():
        keys = Counter(r["properties"]["source_id"] for r in recs)
        assert max(keys.values(), default=1) == 1, f"a {key} record was created twice"
        records += len(recs)
    assert records == sum(n for obj, n in result.written.items() if obj != "patient")
    assert len(there["relations"]) == records  # each record related to its contact exactly once
    assert result.created.get("patient", 0) == len(ids) - landed  # what the lost attempt made: looked up


def _source_ids(dump: dict[str, Any]) -> Counter[str]:
    """Contacts per Source_System_ID (our stable identity) in one sub-account's dump."""
    keys = {f["id"]: f["fieldKey"] for f in dump["custom_fields"]}
    return Counter(next(cf["value"] for cf in c.get("customFields") or []
                        if keys[cf["id"]] == "contact.source_system_id") for c in dump["contacts"])
