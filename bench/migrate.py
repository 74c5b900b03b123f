"""Benchmark: the migration's write path, end to end (issue: "the tool must never be the bottleneck").

Prints one JSON object (the last stdout line; progress goes to stderr). Two measurements:

  records_per_s        limits lifted: records (contacts + custom-object records) per second of
                       ``prepare`` (stage the export, providers, schema) + ``run_phase(full)`` (plan,
                       transform, write, ledger), executor "threads". ``prepare`` talks to the
                       in-process sandbox (a handful of GETs); the write phase talks to a fake
                       HighLevel (``httpx.MockTransport`` answering the writer's three POSTs with
                       canned bodies in microseconds), so the number is the tool's own throughput.
                       ``write_records_per_s`` is the write phase alone.
  sandbox_records_per_s  same-run baseline: records per wall second of the limits-on write phase
                       below (the in-process sandbox, ~8 ms per request; the governor's waits are
                       virtual and cost no wall time), to show that against the sandbox the
                       sandbox, not the tool, is the bottleneck. ``tool_vs_sandbox`` =
                       write_records_per_s / it. The full mode adds ``sandbox``: a limits-lifted
                       write phase against the sandbox (60 patients), measured the same way.
  requests_ratio       the whole run (``migrate``: prepare, full write phase, ``--verify full``: every
                       record read back) with limits on, as the sandbox's journal counted it, over the
                       minimum for the creates; requests_by_class from the clients' counters, whose total
                       must equal the journal's (requests_counts_agree). Limits on at a scaled window:
                       the sandbox refuses more than ``burst`` requests
                       per location per ``window_s`` (100 per 1 s) and every client takes its permits
                       from one ``LocalGovernor`` with the same limits. Sandbox, governor and the
                       clients' retry sleeps share one discrete-event clock (``VirtualClock``:
                       requests take no virtual time; when every working thread sleeps, the clock
                       jumps to the earliest wake-up), so waiting costs no wall time. requests_sent
                       counts every journal line of the run (retries and 429s included);
                       requests_minimum = one per thing created + one relation per record (HighLevel's public
                       API: one create per contact, opportunity, event, note or upload, one create + one
                       relation per custom-object record). --objects all (default) writes every seed
                       object; --objects core only patients and issue 6's custom objects.
                       http_429 = answers with status 429 during the write phase.

Targets: records_per_s >= 2000 on a 2-core box; requests_ratio <= 1.05 with every record verified
(and, ideally, 0 x 429).

    python bench/migrate.py --quick    400 patients (12 years of history), under a minute
    python bench/migrate.py            2000 patients, 120 with limits on; a few minutes
    python bench/migrate.py --profile out.prof   cProfile of the write phase (run serially)
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORD_OBJECTS = ("insurance_record", "treatment_plan", "ledger_entry", "insurance_claim", "clinical_note")


def _log(msg: str) -> None:
    print(f"[bench/migrate] {msg}", file=sys.stderr, flush=True)


class VirtualClock:
    """One discrete-event clock for the sandbox, the governor and the clients' retry sleeps.

    Requests take no virtual time; a thread inside a shard (``enter``/``leave``) that sleeps waits until
    every thread inside a shard is asleep, then the clock jumps to the earliest wake-up. So two workers
    never add their waits up, and a worker is never made late by another's sleep. A thread outside a
    shard (``prepare``) just moves the clock forward.
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self._cond = threading.Condition()
        self._active: set[int] = set()
        self._sleeping: dict[int, float] = {}

    def __call__(self) -> float:
        return self.now

    def enter(self) -> None:
        with self._cond:
            self._active.add(threading.get_ident())

    def leave(self) -> None:
        with self._cond:
            self._active.discard(threading.get_ident())
            self._advance()

    def _advance(self) -> None:
        if self._sleeping and len(self._sleeping) >= len(self._active):
            t = min(self._sleeping.values())
            if t > self.now:
                self.now = t
                self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self._cond:
            target = self.now + max(0.0, seconds)
            if me not in self._active:
                self.now = max(self.now, target)
                return
            self._sleeping[me] = target
            self._advance()
            while self.now < target:
                self._cond.wait()
            del self._sleeping[me]


def _fake_transport(sent: list[tuple[str, str, int]]) -> Any:
    """A HighLevel that answers the writer's creates instantly with valid bodies (ids are counters), and
    the discovery's search pages with an empty sub-account (a first run: nothing there under our keys)."""
    import httpx

    ids = itertools.count(1)

    json_type = {"content-type": "application/json"}

    def handle(request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        status, body = 404, b'{"message":"not in the fake"}'
        if path == "/contacts/search":
            status, body = 200, b'{"contacts":[],"total":0}'
        elif path.startswith("/objects/") and path.endswith("/records/search"):
            status, body = 200, b'{"records":[],"total":0}'
        elif method == "GET" and path == "/opportunities/search":
            status, body = 200, b'{"opportunities":[],"meta":{"total":0}}'
        elif method == "GET" and path == "/medias/files":
            status, body = 200, b'{"files":[]}'
        elif method == "POST":
            n = next(ids)
            if path == "/contacts/":
                status, body = 201, b'{"contact":{"id":"c%09d"}}' % n
            elif path == "/associations/relations":
                status, body = 201, b'{"id":"r%09d"}' % n
            elif path.startswith("/objects/") and path.endswith("/records"):
                status, body = 201, b'{"record":{"id":"o%09d","properties":{}}}' % n
            elif path == "/opportunities/":
                status, body = 201, b'{"opportunity":{"id":"p%09d"}}' % n
            elif path == "/calendars/events/appointments":
                status, body = 200, b'{"id":"e%09d"}' % n
            elif path.startswith("/contacts/") and path.endswith("/notes"):
                status, body = 201, b'{"note":{"id":"n%09d"}}' % n
            elif path == "/medias/upload-file":
                status, body = 200, b'{"fileId":"f%09d","url":"https://files.invalid/f%09d"}' % (n, n)
        sent.append((method, path, status))
        return httpx.Response(status, content=body, headers=json_type)

    return httpx.MockTransport(handle)


OBJECTS = {"all": True}  # --objects: every seed object (all) or patients + issue 6's custom objects (core)


def _world(root: Path, patients: int, history_years: int) -> Any:
    """``tests.migrate.conftest.make_world`` with a longer history (it generates 2 years)."""
    import pytest

    from dos2hl.phi import create_key_file
    from tests.migrate.conftest import make_world

    mp = pytest.MonkeyPatch()
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    w = make_world(root, mp, patients=patients, crm=OBJECTS["all"], history_years=history_years)
    w.monkeypatch = mp
    return w


def _opts(w: Any, workers: int) -> Any:
    from dos2hl.params import MigrateParams
    from tests.migrate.conftest import EXPORT_DATE

    return MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                          export_date=EXPORT_DATE, workers=workers, sample=0)


def _counts(phase: Any) -> dict[str, Any]:
    written, created, failed, held = Counter(), Counter(), Counter(), Counter()
    for loc in phase.totals().values():
        written.update(loc["written"])
        created.update(loc["created"])
        failed.update(loc["failed"])
        held.update(loc["held"])
    contacts = created["patient"]
    records = sum(created[o] for o in RECORD_OBJECTS)
    # one request per thing created (contact, record, opportunity, event, note, upload, link note), plus
    # each custom-object record's relation: the report's minimum_for_creates
    return {"written": sum(written.values()), "contacts": contacts, "records": records,
            "minimum": sum(created.values()) + records, "failed": sum(failed.values()),
            "held": sum(held.values()),
            "by_object": dict(written)}


def _prepare(w: Any, workers: int, factory: Any) -> tuple[Any, float]:
    from dos2hl.execution import prepare

    t0 = time.perf_counter()
    ctx = prepare(_opts(w, workers), client_factory=factory)
    return ctx, time.perf_counter() - t0


def measure_throughput(root: Path, patients: int, years: int, workers: int, profile: str | None
                       ) -> dict[str, Any]:
    """Limits lifted: prepare against the sandbox, the full write phase against the fake HighLevel."""
    from pydantic import SecretStr

    from dos2hl.execution import run_phase
    from dos2hl.highlevel import HighLevelClient
    from tests.migrate.conftest import BASE, FAST

    _log(f"throughput: generating and provisioning {patients} patients x {years} years")
    w = _world(root, patients, years)
    try:
        ctx, prep_s = _prepare(w, workers, w.factory)
        prep_requests = len(w.sent)
        sent: list[tuple[str, str, int]] = []
        transport = _fake_transport(sent)
        clients: list[Any] = []

        def fake_factory(loc: str) -> Any:
            lid = w.loc_ids[loc]
            c = HighLevelClient(BASE, SecretStr(w.tokens[lid]), lid, transport=transport, retry=FAST)
            clients.append(c)
            return c

        _log(f"throughput: prepare {prep_s:.2f}s; writing against the fake HighLevel, workers={workers}")
        t0 = time.perf_counter()
        if profile:  # cProfile sees one thread: run the shards one after the other in this one
            import cProfile

            from dos2hl.execution import WriteResult
            from dos2hl.execution.shard import migrate_shard

            prof = cProfile.Profile()
            prof.enable()
            mine = {loc: fake_factory(loc) for loc in ctx.locations}
            results = [migrate_shard(spec, mine[spec.location]) for spec in ctx.specs()]
            prof.disable()
            phase = WriteResult(phase="full", shards=[dataclasses.asdict(r) for r in results])
            prof.dump_stats(profile)
            _log(f"throughput: profile (serial, this thread) -> {profile}")
        else:
            phase = run_phase(ctx, "full", client_factory=fake_factory, executor="threads", workers=workers)
        write_s = time.perf_counter() - t0
        for c in clients:
            c.close()
        c = _counts(phase)
        statuses = Counter(s for _m, _p, s in sent)
        _log(f"throughput: {c['written']} records in {write_s:.2f}s write ({prep_s:.2f}s prepare)")
        return {"patients": patients, "history_years": years, "workers": workers, "records": c["written"],
                "contacts": c["contacts"], "custom_object_records": c["records"], "failed": c["failed"],
                "held": c["held"], "by_object": c["by_object"], "prepare_s": round(prep_s, 3),
                "write_s": round(write_s, 3), "seconds": round(prep_s + write_s, 3),
                "records_per_s": round(c["written"] / (prep_s + write_s)),
                "write_records_per_s": round(c["written"] / write_s),
                "fake_requests": len(sent), "fake_non_201": sum(n for s, n in statuses.items() if s != 201),
                "prepare_requests_sandbox": prep_requests}
    finally:
        w.stop()
        w.monkeypatch.undo()


def measure_sandbox(root: Path, patients: int, years: int, workers: int) -> dict[str, Any]:
    """Baseline: the same write phase against the in-process sandbox (limits lifted, fake clock)."""
    from dos2hl.execution import run_phase

    _log(f"sandbox: {patients} patients x {years} years")
    w = _world(root, patients, years)
    try:
        ctx, _ = _prepare(w, workers, w.factory)
        mark = len(w.sent)
        t0 = time.perf_counter()
        phase = run_phase(ctx, "full", client_factory=w.factory, executor="threads", workers=workers)
        secs = time.perf_counter() - t0
        c = _counts(phase)
        n = len(w.sent) - mark
        _log(f"sandbox: {c['written']} records, {n} requests in {secs:.2f}s")
        return {"patients": patients, "records": c["written"], "seconds": round(secs, 3),
                "records_per_s": round(c["written"] / secs), "requests": n,
                "ms_per_request": round(1000 * secs / max(1, n), 2)}
    finally:
        w.stop()
        w.monkeypatch.undo()


def measure_requests(root: Path, patients: int, years: int, workers: int, burst: int, window_s: float
                     ) -> dict[str, Any]:
    """Limits on: the whole run (``migrate``: prepare, full write phase, ``--verify full``) against the
    sandbox refusing > burst per window, clients paced by one LocalGovernor, virtual clock. Requests are
    counted by the sandbox's journal (not the client's own counter)."""
    import json as _json

    from pydantic import SecretStr
    from starlette.testclient import TestClient

    from dos2hl.execution import driver
    from dos2hl.governor import Limits, LocalGovernor
    from dos2hl.highlevel import HighLevelClient, RetryPolicy
    from dos2hl.pipeline import MigrateParams, migrate
    from dos2hl.sandbox import create_app
    from tests.migrate.conftest import BASE, EXPORT_DATE, Counting

    _log(f"limits on: {patients} patients x {years} years, {burst} per {window_s}s, workers={workers}")
    w = _world(root, patients, years)
    real = driver.migrate_shard_isolated
    try:
        w.stop()  # the world's app: limits lifted; reopen the same state with the scaled limit
        clock = VirtualClock(w.clock.now)
        w.clock = clock
        w.app = create_app(w.state, clock=clock, burst=(burst, window_s), daily=10**7)
        w.testclient = TestClient(w.app, base_url=BASE)
        limits = Limits(burst=burst, window_s=window_s, daily=10**7)
        gov = LocalGovernor(limits, clock=clock, sleep=clock.sleep)
        retry = RetryPolicy(jitter=0.0)

        def factory(loc: str) -> Any:
            lid = w.loc_ids[loc]
            c = HighLevelClient(BASE, SecretStr(w.tokens[lid]), lid, permits=gov,
                                transport=Counting(w.testclient._transport, w.sent), retry=retry,
                                sleep=clock.sleep)
            w.clients.append(c)
            return c

        def shard(spec: Any, client: Any) -> Any:  # tells the clock which threads are working
            clock.enter()
            try:
                return real(spec, client)
            finally:
                clock.leave()

        driver.migrate_shard_isolated = shard
        journal = w.state / "journal.jsonl"
        seen = len(journal.read_text().splitlines()) if journal.exists() else 0
        v0, t0 = clock.now, time.perf_counter()
        rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                     export_date=EXPORT_DATE, workers=workers, sample=0, verify="full"),
                      client_factory=factory)
        wall, virtual = time.perf_counter() - t0, clock.now - v0
        lines = [_json.loads(x) for x in journal.read_text().splitlines()[seen:]]
        req = rep["requests"]
        n, minimum = len(lines), req["minimum_for_creates"]
        by_status = Counter(x["status"] for x in lines)
        kinds = Counter(f"{x['method']} {x['path']}" for x in lines)
        records = sum(o["written"] for loc in rep["locations"].values() for o in loc["objects"].values())
        contacts = sum(loc["objects"]["patient"]["written"] for loc in rep["locations"].values())
        _log(f"limits on: journal {n} requests (client counters {req['sent']}), minimum {minimum}, "
             f"{by_status.get(429, 0)} x 429, {virtual:.1f}s virtual, {wall:.1f}s wall")
        return {"patients": patients, "records": records, "contacts": contacts, "status": rep["status"],
                "verified": sum(rep["field_diff"].get("read_back", {}).values()),
                "mismatches": rep["field_diff"].get("mismatches"),
                "requests_sent": n, "requests_counted_by_client": req["sent"],
                "counts_agree": n == req["sent"],
                "requests_minimum": minimum, "requests_ratio": round(n / max(1, minimum), 4),
                "requests_by_class": req["by_class"], "requests_by_step": req["by_step"],
                "http_429": by_status.get(429, 0),
                "by_status": {str(k): v for k, v in sorted(by_status.items())},
                "by_operation": dict(kinds.most_common()), "limit": {"burst": burst, "window_s": window_s},
                "virtual_seconds": round(virtual, 2), "wall_seconds": round(wall, 2),
                "sent_per_virtual_s": round(n / max(virtual, 1e-9), 1)}
    finally:
        driver.migrate_shard_isolated = real
        w.stop()
        w.monkeypatch.undo()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller practices; finishes in under a minute")
    ap.add_argument("--workers", type=int, default=2, help="thread executor workers (2: a 2-core box)")
    ap.add_argument("--objects", choices=("all", "core"), default="all",
                    help="all: every seed object (appointments, notes, files...); core: patients and the "
                         "custom-object records only")
    ap.add_argument("--profile", metavar="PATH", help="cProfile the limits-lifted write phase to PATH "
                    "(shards run serially in the main thread: records_per_s is then not the benchmark's)")
    args = ap.parse_args()
    OBJECTS["all"] = args.objects == "all"
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import logging

    logging.getLogger("dos2hl").setLevel(logging.ERROR)  # 429 warnings: counted in the JSON
    if args.quick:
        big, base, lim = (400, 12), None, (20, 3)
    else:
        big, base, lim = (2000, 12), (40, 6), (120, 6)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dos2hl-bench-migrate-") as tmp:
        tmpd = Path(tmp)
        thr = measure_throughput(tmpd / "fast", *big, args.workers, args.profile)
        req = measure_requests(tmpd / "limits", *lim, args.workers, burst=100, window_s=1.0)
        sbx = measure_sandbox(tmpd / "sandbox", *base, args.workers) if base else None
    # the limits-on run waits in virtual time only: its wall time is the sandbox's and the tool's work
    sandbox_rps = req["records"] / max(1e-9, req["wall_seconds"])
    tool_vs_sandbox = thr["write_records_per_s"] / max(1.0, sandbox_rps)
    out = {
        "benchmark": "migrate",
        "mode": "quick" if args.quick else "full",
        "records_per_s": thr["records_per_s"],
        "write_records_per_s": thr["write_records_per_s"],
        "records": thr["records"],
        "seconds": thr["seconds"],
        "patients": thr["patients"],
        "sandbox_records_per_s": round(sandbox_rps),
        "tool_vs_sandbox": round(tool_vs_sandbox, 1),
        "requests_sent": req["requests_sent"],
        "requests_minimum": req["requests_minimum"],
        "requests_ratio": req["requests_ratio"],
        "requests_by_class": req["requests_by_class"],
        "requests_counts_agree": req["counts_agree"],
        "http_429": req["http_429"],
        "requests_counted": "the whole run (prepare, full write phase, --verify full of every record) as the "
                            "sandbox's journal recorded it, retries and 429s included; by class from the "
                            "clients' counters (their total must equal the journal's: requests_counts_agree)",
        "throughput": thr,
        "sandbox_measured": "records / wall seconds of the limits-on write phase (its governor waits are "
                            "virtual); "
                            "full mode adds 'sandbox': a limits-lifted run against the sandbox",
        "sandbox": sbx,
        "limits": req,
        "targets": {"records_per_s": 2000, "requests_ratio": 1.05},
        "meets": {"records_per_s": thr["records_per_s"] >= 2000,
                  "requests_ratio": req["requests_ratio"] <= 1.05 and req["counts_agree"]},
        "bench_seconds": round(time.perf_counter() - t_all, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
