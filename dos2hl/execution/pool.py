"""Shard workers on Ray: actors that transform and write (or verify) shards, all sharing the governor.

Ray lives in two modules of dos2hl: this one and the governor's actor, whose permits the workers
take. Each ``ShardWorker`` is a process running several shards at once on threads (a threaded actor:
a shard mostly waits, for HighLevel and for its location's budget), so a run's workers write every
location at once even when there are more locations than CPUs. Like the thread executor, each shard
thread keeps one HighLevel client per location (connection reuse) whose ``PermitSource`` is the
worker's ``GovernorHandle`` on the named governor actor, so every request of every worker of every
flow run on the cluster goes through one governor. Tokens come from the workers' environment
(``token_env`` in locations.yaml), never through Ray.

Used by ``dos2hl.execution.driver.execute(executor="ray")``; the Prefect tasks call that, so Ray workers
never import Prefect (STACK_NOTES §4, option b).

On a cluster (issue 16): the workers are spread over the nodes (explicit node affinity, ``_Placement``),
each result names the node its shard ran on, a run on more than one alive node refuses local storage
(``cluster``), and a worker that dies with its node (or alone) is replaced: each shard it was running
goes back to the front of its location's queue and runs again on a live worker, which finds the shard
``started`` in the ledger and looks each record up before creating it (``writing.writer``), so nothing
the dead attempt created is created twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

import ray
from ray.exceptions import (
    ActorDiedError,
    ActorUnschedulableError,
    GetTimeoutError,
    NodeDiedError,
    RayActorError,
    RayError,
    WorkerCrashedError,
)

from ..governor.actor import connect, ensure_ray
from ..locations import LocationsFile, open_client
from ..settings import Dos2hlSettings
from .cluster import require_shared_storage, worker_uris
from .schedule import FairQueue, notify, threads_per_worker

__all__ = ["ShardWorker", "alive_nodes", "require_cluster_storage", "run_on_ray"]

log = logging.getLogger("dos2hl.migrate")
#: How a worker's death shows on its task: the actor died (its process, or its node), or the node did.
WORKER_LOST = (RayActorError, NodeDiedError, WorkerCrashedError, ActorUnschedulableError)


class ShardWorker:
    def __init__(self, locations: dict[str, Any], settings: dict[str, Any], cls: str = "migration") -> None:
        self.lf = LocationsFile.model_validate(locations)
        self.settings = Dos2hlSettings.model_validate(settings)
        g = self.settings.governor
        from ..governor import limits_from, state_uri

        self.permits = connect(name=g.name, limits=limits_from(g), state=state_uri(self.settings), app=g.app,
                               cls=cls, batch=g.batch)
        self.clients: list[Any] = []  # every thread's, to close
        self._local = threading.local()
        self._idle = threading.Condition()
        self._running = 0

    def run(self, fn: Callable[[Any, Any], Any], spec: Any) -> Any:
        mine = self._local.__dict__.setdefault("clients", {})  # as the thread executor: one per thread
        client = mine.get(spec.location)
        if client is None:
            client = mine[spec.location] = open_client(self.lf, spec.location, permits=self.permits,
                                                       settings=self.settings)
            with self._idle:
                self.clients.append(client)
        with self._idle:
            self._running += 1
        try:
            out = fn(spec, client)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()
        out = asdict(out) if is_dataclass(out) and not isinstance(out, type) else out
        if isinstance(out, dict):  # where it ran: the report counts shards per node (ids only)
            out["node"] = ray.get_runtime_context().get_node_id()
        return out

    def close(self, timeout: float = 25) -> None:
        """Close the clients (giving back leased permits) once the shards running here have finished, up
        to ``timeout`` seconds."""
        with self._idle:
            self._idle.wait_for(lambda: self._running == 0, timeout=timeout)
            clients, self.clients = self.clients, []
        for c in clients:
            c.close()
        self.permits.close()


def alive_nodes(address: str | None = None) -> list[str]:
    """The ids of the Ray cluster's alive nodes (connecting this process first: ``address``, else an
    in-process Ray)."""
    ensure_ray(address)
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [str(n["NodeID"]) for n in nodes if n.get("Alive")]


def require_cluster_storage(settings: Dos2hlSettings,
                            uris: Mapping[str, str | None] | None = None) -> list[str]:
    """Before anything is written: on a Ray cluster of more than one alive node, the run's storage, the
    governor's state and ``uris`` (what -> URI) must be ``s3://`` (``cluster.require_shared_storage``).
    Returns the alive nodes."""
    g = settings.governor
    nodes = alive_nodes(None if g.address in ("", "local") else g.address)
    require_shared_storage(nodes, shared_uris(settings, uris))
    return nodes


def shared_uris(settings: Dos2hlSettings,
                uris: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """What must be shared storage on a multi-node cluster: the run's storage root, the governor's state
    and ``uris`` (what -> URI)."""
    from ..governor import state_uri

    return {"the storage root": settings.runs_root(), "the governor's state": state_uri(settings),
            **dict(uris or {})}


class _Placement:
    """Which node the next worker goes to: the alive node holding the fewest of this pool's workers,
    never the node a worker was just lost on while another is alive. The affinity is hard: Ray's soft
    affinity and ``SPREAD`` both put every worker on one node of a busy two-node cluster (measured); a
    node that dies before its worker starts fails that worker like any lost one (replaced elsewhere)."""

    def __init__(self, nodes: list[str], check: Callable[[list[str]], None] = lambda nodes: None) -> None:
        self.nodes = list(nodes)
        self.check = check  # the storage check, again for the nodes alive now (one may have joined)
        self.held: Counter[str] = Counter()
        self.where: dict[Any, str] = {}

    def place(self, make: Callable[[Any], Any], *, lost: str | None = None) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if lost is not None:
            alive = alive_nodes()
            self.check(alive)  # a run on one node with local storage never spreads to a node that joined
            self.nodes = [n for n in alive if n != lost] or alive
        node = min(self.nodes, key=lambda n: (self.held[n], self.nodes.index(n)))
        actor = make(NodeAffinitySchedulingStrategy(node, soft=False))
        self.held[node] += 1
        self.where[actor] = node
        return actor

    def forget(self, actor: Any) -> str | None:
        node = self.where.pop(actor, None)
        if node is not None:
            self.held[node] -= 1
        return node


def run_on_ray(specs: list[Any], fn: Callable[[Any, Any], Any], locations: LocationsFile,
               settings: Dos2hlSettings, *, workers: int = 4, threads: int | None = None,
               cls: str = "migration", replacements: int | None = None,
               stop: Callable[[Any], bool] | None = None,
               skipped: Callable[[Any, Any], Any] | None = None,
               on_done: Callable[[Any, Any], None] | None = None) -> list[Any]:
    """``fn(spec, client)`` for every spec on ``workers`` actors spread over the cluster's nodes, each
    running up to ``threads`` shards at once (default: ``schedule.threads_per_worker``), handed out
    fairly across locations (``schedule.FairQueue``); results in the order of ``specs``, each naming its
    node (``node``) and how often its shard was started again (``retried``). A worker that dies
    (``WORKER_LOST``) is replaced, at most ``replacements`` times (default: ``workers``), and every shard
    it was running runs again; an error ``fn`` raises is raised here. ``stop`` and ``skipped`` as in
    ``schedule.run_fair``: a result that paused its location ends the hand-out of that location's
    shards. ``on_done(spec, result)``: once per shard that ends (not per attempt), in this process, as
    its result arrives."""
    g = settings.governor
    from ..governor import limits_from, state_uri

    uris: dict[str, str | None] = {}
    for spec in specs:
        uris.update({what: uri for what, uri in worker_uris(spec).items() if uri})
    nodes = require_cluster_storage(settings, uris)  # ray.init if needed; before the governor writes
    connect(None if g.address in ("", "local") else g.address, name=g.name, limits=limits_from(g),
            state=state_uri(settings), app=g.app)  # the governor exists
    actor_cls = ray.remote(ShardWorker)
    loc_data = locations.model_dump(mode="json")
    set_data = settings.model_dump(mode="json")
    for k in ("token",):  # a single-location token never travels through Ray
        set_data.get("highlevel", {}).pop(k, None)
    size = max(1, min(workers, len(specs) or 1))
    per = threads or threads_per_worker(len({spec.location for spec in specs}), size)

    def make(where: Any) -> Any:
        return actor_cls.options(num_cpus=0, max_concurrency=per, scheduling_strategy=where).remote(
            loc_data, set_data, cls)

    checked = shared_uris(settings, uris)  # a replacement is placed only where this check allows
    placement = _Placement(nodes, lambda alive: require_shared_storage(alive, checked))  # over the nodes
    pool: list[Any] = [placement.place(make) for _ in range(size)]
    left = size if replacements is None else replacements
    results: list[Any] = [None] * len(specs)
    retried = [0] * len(specs)
    pending: dict[Any, int] = {}
    free = [actor for _ in range(per) for actor in pool]  # a slot per shard at once, dealt round the workers
    busy: dict[Any, Any] = {}
    lost: set[Any] = set()  # workers already replaced (each of their shards in flight fails in turn)
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
                i, actor = pending.pop(ref), busy.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except WORKER_LOST as exc:
                    if actor not in lost:  # its first shard to tell: replace the worker
                        if left <= 0:
                            raise
                        left -= 1
                        lost.add(actor)
                        pool.remove(actor)
                        free = [a for a in free if a != actor]
                        _end(actor, close=False)
                        if not _confirmed_dead(actor):  # its tasks may or may not still run: never twice
                            raise
                        new = placement.place(make, lost=placement.forget(actor))
                        pool.append(new)
                        free.extend([new] * per)
                    retried[i] += 1
                    log.warning("shard %s: its worker was lost (%s); it runs again on a new worker (%d more "
                                "replacements allowed)", specs[i].name, type(exc).__name__, left)
                    queue.retry(i, specs[i])  # first in its location's line again
                    continue
                if isinstance(results[i], dict):
                    results[i]["retried"] = retried[i]
                queue.done(i)
                notify(on_done, specs[i], results[i])
                if stop is not None and stop(results[i]):
                    for j, other in queue.drop(specs[i].location):
                        results[j] = skipped(other, results[i]) if skipped is not None else None
                        notify(on_done, other, results[j])
                free.append(actor)
    finally:
        _end_all(pool)
    return results


def _end_all(pool: list[Any], timeout: float = 30) -> None:
    """Close every worker's clients at once (giving back leased permits; a busy one finishes its shard
    first, up to ``timeout``), then end them all."""
    refs = []
    for a in pool:
        try:
            refs.append(a.close.remote())
        except RayError:
            pass
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=timeout)
    for a in pool:
        _end(a, close=False)


def _confirmed_dead(actor: Any, timeout: float = 60) -> bool:
    """Wait until Ray says ``actor`` is dead (killed, or its node gone), so its shard never runs twice at
    once: an unavailable actor's task "may or may not have been executed" and may still be running.
    False when that cannot be confirmed within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=5)
        except ActorDiedError:
            return True
        except (RayError, GetTimeoutError):
            pass  # unreachable for now, not known dead
        else:  # still alive: end it again
            try:
                ray.kill(actor)
            except RayError:
                pass
        time.sleep(0.2)
    return False


def _end(actor: Any, *, close: bool = True) -> None:
    """Close a worker's clients (giving back its leased permits), then end it; a dead one is just ended."""
    if close:
        try:
            ray.get(actor.close.remote(), timeout=30)
        except (RayError, GetTimeoutError):
            pass
    try:
        ray.kill(actor)
    except RayError:
        pass
