"""Kill the run mid-shard, resume with the same run id: zero duplicates, zero losses. Faults too."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from dos2hl.pipeline import MigrateParams, migrate
from tests.migrate.conftest import EXPORT_DATE, World


class Crash(BaseException):
    """The process dies (not an error the writer may handle)."""


class Killer(httpx.BaseTransport):
    """Passes requests through until the n-th record/relation write, then dies *after* it landed."""

    def __init__(self, inner: httpx.BaseTransport, n: int) -> None:
        self.inner, self.n = inner, n

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        path = request.url.path
        if request.method == "POST" and ("/records" in path
                                         or "/relations" in path) and not path.endswith("/search"):
            self.n -= 1
            if self.n == 0:
                raise Crash()  # the write happened; its answer (and the unflushed ledger batch) are lost
        return response


def _opts(w: World, **kw: object) -> MigrateParams:
    base = {"source": str(w.export), "mapping": str(w.mapping), "locations": str(w.locations),
            "export_date": EXPORT_DATE, "sample": 0, "workers": 1}
    return MigrateParams(**{**base, **kw})  # type: ignore[arg-type]


def _counts(w: World) -> tuple[int, Counter[str], int]:
    contacts, records, relations = 0, Counter(), 0
    for loc in w.loc_ids:
        d = w.dump(loc)
        contacts += len(d["contacts"])
        for key, recs in d["objects"].items():
            records[key] += len(recs)
            keys = [r["properties"]["source_id"] for r in recs]
            assert len(keys) == len(set(keys)), f"duplicate records in {key}"
        relations += len(d["relations"])
    return contacts, records, relations


@pytest.mark.parametrize("kill_after", [1, 37])
def test_resume_after_a_kill_mid_shard_has_no_duplicates_and_no_losses(world: World, kill_after: int) -> None:
    w = world
    left = [kill_after]

    def dying(loc: str):  # type: ignore[no-untyped-def]
        c = w.factory(loc)
        c._http._transport = Killer(c._http._transport, left[0])
        return c

    with pytest.raises(Crash):
        migrate(_opts(w, run_id="r-kill"), client_factory=dying)
    before = _counts(w)
    out = migrate(_opts(w, run_id="r-kill"), client_factory=w.factory)
    assert out["status"] == "completed", out["reconciliation"]
    contacts, records, relations = _counts(w)
    written = Counter()
    for data in out["locations"].values():
        for obj, row in data["objects"].items():
            written[obj] += row["written"]
    assert contacts == written["patient"] >= before[0]
    assert sum(records.values()) == sum(v for k, v in written.items() if k != "patient")
    assert relations == sum(records.values())  # every record related to its contact exactly once


def test_faults_5xx_and_422_but_created_leave_no_duplicates(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.phi import create_key_file
    from tests.migrate.conftest import make_world

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "k" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20)
    try:
        w.stop()
        w.start(faults="5xx=0.04,created422=0.04,seed=11")
        out = migrate(_opts(w, run_id="r-faults"), client_factory=w.factory)
        if out["status"] != "completed":  # a 422 whose record the lookup could not see: a retry run
            out = migrate(_opts(w, run_id="r-faults"), client_factory=w.factory)
        assert out["status"] == "completed", out["reconciliation"]
        contacts, records, relations = _counts(w)
        assert contacts == sum(d["objects"]["patient"]["written"] for d in out["locations"].values())
        assert relations == sum(records.values())
        assert sum(1 for s in w.sent if s[2] >= 500 or s[2] == 422) > 0  # the faults did happen
    finally:
        w.stop()


class Refuser(httpx.BaseTransport):
    """HighLevel refuses ledger records (a 400 the writer cannot fix): they become dead letters."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/custom_objects.patient_ledger/records"):
            return httpx.Response(400, json={"statusCode": 400, "message": "Bad Request"})
        return self.inner.handle_request(request)


def test_dead_letters_are_listed_and_retry_replays_them(world: World) -> None:
    import csv

    w = world

    def refusing(loc: str):  # type: ignore[no-untyped-def]
        c = w.factory(loc)
        c._http._transport = Refuser(c._http._transport)
        return c

    out = migrate(_opts(w, run_id="r-dlq"), client_factory=refusing)
    assert out["status"] == "incomplete"
    ledger_rows = sum(d["objects"]["ledger_entry"]["staged"] for d in out["locations"].values())
    assert out["pending"]["count"] == ledger_rows > 0
    assert out["pending"]["by_error"] == {"BadRequestError": ledger_rows}
    rows = list(csv.DictReader(open(Path(out["report"]).with_name("pending.csv"))))
    assert {r["object"] for r in rows} == {"ledger_entry"} and all(len(r["stable_key"]) == 32 for r in rows)
    # dos2hl retry RUN_ID: the same run, no export given (it is staged), only the dead letters written
    w.sent.clear()
    again = migrate(_opts(w, run_id="r-dlq", source=""), client_factory=w.factory)
    assert again["status"] == "completed" and again["pending"]["count"] == 0
    creates = [s for s in w.sent if s[0] == "POST" and s[1].endswith("/records")]
    assert len(creates) == ledger_rows  # nothing else re-sent


def test_a_rejected_sample_is_rolled_back_then_the_run_starts_clean(world: World) -> None:
    from dos2hl.writing.rollback import rollback

    w = world
    first = migrate(_opts(w, run_id="r-rb", sample=5), approve=lambda _r: False, client_factory=w.factory)
    assert first["status"] == "incomplete" and _counts(w)[0] > 0
    run_uri = str(Path(w.root) / "runs" / "r-rb")
    out = rollback(run_uri, "r-rb", w.factory)
    assert (
        out["status"] == "rolled back"
        and out["deleted"]["patient"] == _counts(w)[0] + out["deleted"]["patient"]
    )
    assert _counts(w) == (0, Counter({k: 0 for k in _counts(w)[1]}), 0)  # nothing left, relations included
    w.sent.clear()
    again = rollback(run_uri, "r-rb", w.factory)  # idempotent: nothing sent
    assert again["deleted"] == {} and [s for s in w.sent if s[0] == "DELETE"] == []
    done = migrate(_opts(w, run_id="r-rb", sample=0), client_factory=w.factory)  # the same run id, after
    assert done["status"] == "completed", done["reconciliation"]
    contacts, records, relations = _counts(w)
    assert contacts == sum(d["objects"]["patient"]["written"] for d in done["locations"].values())
    assert relations == sum(records.values()) > 0
