"""Shard workers on Ray: actors that transform and write (or verify) shards, all sharing the governor.

Ray lives in two modules of dos2hl: this one and the governor's actor, whose permits the workers
take. Each ``ShardWorker`` keeps one HighLevel client per location (connection reuse) whose
``PermitSource`` is a ``GovernorHandle`` on the named governor actor, so every request of every
worker of every flow run on the cluster goes through one governor. Tokens come from the workers'
environment (``token_env`` in locations.yaml), never through Ray.

Used by ``dos2hl.execution.driver.execute(executor="ray")``; the Prefect tasks call that, so Ray workers
never import Prefect (STACK_NOTES §4, option b).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any

import ray

from ..governor.actor import connect
from ..locations import LocationsFile, open_client
from ..settings import Dos2hlSettings
from .schedule import FairQueue

__all__ = ["ShardWorker", "run_on_ray"]


class ShardWorker:
    def __init__(self, locations: dict[str, Any], settings: dict[str, Any], cls: str = "migration") -> None:
        self.lf = LocationsFile.model_validate(locations)
        self.settings = Dos2hlSettings.model_validate(settings)
        g = self.settings.governor
        from ..governor import limits_from, state_uri

        self.permits = connect(name=g.name, limits=limits_from(g), state=state_uri(self.settings), app=g.app,
                               cls=cls, batch=g.batch)
        self.clients: dict[str, Any] = {}

    def run(self, fn: Callable[[Any, Any], Any], spec: Any) -> Any:
        client = self.clients.get(spec.location)
        if client is None:
            client = self.clients[spec.location] = open_client(self.lf, spec.location, permits=self.permits,
                                                               settings=self.settings)
        out = fn(spec, client)
        return asdict(out) if is_dataclass(out) and not isinstance(out, type) else out

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.permits.close()


def run_on_ray(specs: list[Any], fn: Callable[[Any, Any], Any], locations: LocationsFile,
               settings: Dos2hlSettings, *, workers: int = 4, cls: str = "migration") -> list[Any]:
    """``fn(spec, client)`` for every spec on ``workers`` actors, handed out fairly across locations
    (``schedule.FairQueue``); results in the order of ``specs``."""
    g = settings.governor
    from ..governor import limits_from, state_uri

    connect(None if g.address in ("", "local") else g.address, name=g.name, limits=limits_from(g),
            state=state_uri(settings), app=g.app)  # ray.init if needed, and the governor exists
    actor_cls = ray.remote(ShardWorker).options(num_cpus=0, max_concurrency=1)
    loc_data = locations.model_dump(mode="json")
    set_data = settings.model_dump(mode="json")
    for k in ("token",):  # a single-location token never travels through Ray
        set_data.get("highlevel", {}).pop(k, None)
    size = max(1, min(workers, len(specs) or 1))
    pool: list[Any] = [actor_cls.remote(loc_data, set_data, cls) for _ in range(size)]
    results: list[Any] = [None] * len(specs)
    pending: dict[Any, int] = {}
    free = list(pool)
    busy: dict[Any, Any] = {}
    queue = FairQueue(specs, key=lambda spec: spec.location)  # every location at once
    try:
        while len(queue) or pending:
            while free and (got := queue.take()) is not None:
                i, spec = got
                actor = free.pop()
                ref = actor.run.remote(fn, spec)
                pending[ref], busy[ref] = i, actor
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                results[i] = ray.get(ref)
                queue.done(i)
                free.append(busy.pop(ref))
    finally:
        ray.get([a.close.remote() for a in pool])
        for a in pool:
            ray.kill(a)
    return results
