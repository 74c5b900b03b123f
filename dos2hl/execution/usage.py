"""What a run spent: every step that sends requests records its tally in the run's folder
(``requests/<step>-<id>.json``), and the report sums them. So the run's count holds every request of
the run id: prepare's schema reads, each phase's shards (threads or Ray actors), the bulk path's
reconciliation pages, the read-backs, and a resumed run's earlier invocations too.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..highlevel.protocols import ClientFactory
from ..highlevel.tally import Tally, snapshot
from ..storage import open_store

__all__ = ["record", "load", "Watch"]


def record(run_uri: str, step: str, tally: Tally | dict[str, Any],
           created: dict[str, int] | None = None) -> None:
    """``created``: what the step created through the API, per object (the run's minimum is theirs)."""
    t = tally if isinstance(tally, Tally) else Tally.from_dict(tally)
    if not t.total and not any((created or {}).values()):
        return
    open_store(run_uri).write_bytes(f"requests/{step}-{uuid.uuid4().hex[:8]}.json", json.dumps(
        {"step": step, **t.to_dict(), "created": dict(created or {})}).encode())


def load(run_uri: str) -> tuple[Tally, dict[str, int], Counter[str]]:
    """The run's tally, its total per step (prepare, sample, verify-sample, bulk, full, ...) and what
    its steps created per object."""
    store = open_store(run_uri)
    total = Tally()
    steps: dict[str, int] = {}
    created: Counter[str] = Counter()
    for key in sorted(store.list("requests/")):
        if key.endswith(".json"):
            d = json.loads(store.read_bytes(key))
            t = Tally.from_dict(d)
            total = total + t
            steps[d["step"]] = steps.get(d["step"], 0) + t.total
            created.update(d.get("created") or {})
    return total, steps, created


class Watch:
    """Counts what the clients a factory hands out send (each client's delta since it was handed out)."""

    def __init__(self, factory: ClientFactory) -> None:
        self._factory = factory
        self._seen: list[tuple[Any, Tally]] = []

    def __call__(self, loc: str) -> Any:
        client = self._factory(loc)
        if not any(c is client for c, _ in self._seen):
            self._seen.append((client, snapshot(client)))
        return client

    def watch(self, clients: Iterable[Any]) -> None:
        for c in clients:
            if not any(x is c for x, _ in self._seen):
                self._seen.append((c, snapshot(c)))

    def tally(self) -> Tally:
        return Tally.sum(snapshot(c) - before for c, before in self._seen)
