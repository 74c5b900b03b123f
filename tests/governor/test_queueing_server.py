"""Issue 16: the governor holds the limit when the server queues, judged by the server's own journal.

The sandbox handles one request at a time (fault ``concurrency=1``, each taking 20-30 ms: a slow
handler) and counts a request against the limit when its turn comes, not when it arrived: the
pessimistic model of a server that queues. Another tenant's bursts (a second location, ungoverned,
every 1.3 s ten requests at once, under its own limit) fill the queue, so our requests wait behind
them for up to ~250 ms and are then counted in quick succession. A governor whose margin covers only
its own wake-up lateness lets 21 requests into a 1 s window; the journal's ``counted`` times say so.
Scaled: 20 per 1 s, about six windows. The same through ``GovernorHandle`` and the shared actor (the
path Ray workers use) is in ``test_actor.py``, which has Ray up already.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from dos2hl.governor import Limits, LocalGovernor
from dos2hl.highlevel import HighLevelClient, UnlimitedPermits
from dos2hl.highlevel.models import ContactSearch
from dos2hl.sandbox.seed import init_locations
from dos2hl.sandbox.server import running
from tests.governor.test_core import max_in_window

BURST, WINDOW = 20, 1.0
LIM = Limits(burst=BURST, window_s=WINDOW, daily=200_000, reserve=0.0)  # the default margin (6 ms)
FAULTS = "concurrency=1,latency=20ms..30ms,seed=5"
RUN_S = 6.5


def drive(state: Path, permits: Any) -> tuple[str, list[dict[str, Any]]]:
    """Four workers on location 0 through ``permits``, the other tenant's bursts on location 1;
    returns location 0 and its journal lines."""
    tokens = init_locations(state, 2)
    ours, theirs = sorted(tokens)
    stop = threading.Event()
    with running(state, burst=(BURST, WINDOW), faults=FAULTS) as base:

        def client(loc: str, source: Any) -> HighLevelClient:
            return HighLevelClient(base, SecretStr(tokens[loc]), loc, permits=source)

        def worker() -> None:
            with client(ours, permits) as c:
                while not stop.is_set():
                    c.search_contacts(ContactSearch(pageLimit=1))

        def burst_once(c: HighLevelClient, go: threading.Barrier) -> None:
            go.wait()
            c.search_contacts(ContactSearch(pageLimit=1))

        def other_tenant() -> None:
            clients = [client(theirs, UnlimitedPermits()) for _ in range(10)]
            while not stop.wait(1.3):
                go = threading.Barrier(len(clients))
                ts = [threading.Thread(target=burst_once, args=(c, go)) for c in clients]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
            for c in clients:
                c.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        threads.append(threading.Thread(target=other_tenant))
        for t in threads:
            t.start()
        time.sleep(RUN_S)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    rows = [json.loads(line) for line in (state / "journal.jsonl").read_text().splitlines()]
    return ours, [r for r in rows if r["location"] == ours]


def assert_held(rows: list[dict[str, Any]]) -> None:
    assert max(r["queued_ms"] for r in rows) >= 100  # the premise: our requests did wait in a queue
    assert len(rows) >= BURST  # and went through
    assert [r["status"] for r in rows if r["status"] == 429] == []
    assert max_in_window([r["counted"] for r in rows], WINDOW) <= BURST


def test_the_local_governor_holds_the_limit_when_the_server_queues(tmp_path: Path) -> None:
    gov = LocalGovernor(LIM)
    loc, rows = drive(tmp_path / "sb", gov)
    assert_held(rows)
    assert gov.status(loc).margin_s > 0.1  # learned from the answers' lateness, far above the 6 ms floor

