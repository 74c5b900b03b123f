"""The governor as one named, detached Ray actor, and ``GovernorHandle``, the ``PermitSource`` facade.

The only module of dos2hl that imports Ray. ``_GovernorActor`` is a plain class (testable without Ray)
with async methods that never ``await`` between reading and writing state, so one event loop serialises
them without a lock. The facade leases permits in small batches, keeps them in a per-location cache,
drops (and gives back) permits that went stale, and sends reports along with the next lease, so the
actor sees about one call per ``batch`` requests.

Across OS processes the actor must live on a long-lived Ray head (``ray start --head``; STACK_NOTES §3
and pitfall 6): ``connect(address="127.0.0.1:6390")``. ``connect()`` alone starts an in-process cluster.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import ray

from .core import LATE_SAMPLES, Lease, Limits, RateGovernor, Status, p99
from .local import permits_of
from .persist import load_snapshot, save_snapshot

__all__ = ["ACTOR_NAME", "NAMESPACE", "GovernorHandle", "connect", "ensure_ray"]

NAMESPACE = "dos2hl"
ACTOR_NAME = "rate-governor"
_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-daily-remaining", "x-ratelimit-max",
            "x-ratelimit-limit-daily", "retry-after")
_RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0"}


class _GovernorActor:
    """One ``RateGovernor`` on the actor's wall clock, with optional snapshots to ``state`` (a URI)."""

    def __init__(self, limits: dict[str, Any] | None = None, weights: dict[str, float] | None = None,
                 state: str | None = None, save_every_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        lim = dict(limits or {})
        if "reserve_classes" in lim:
            lim["reserve_classes"] = frozenset(lim["reserve_classes"])
        self._clock = clock
        self._path = str(state) if state else None
        self._save_every = save_every_s
        now = clock()
        snap = load_snapshot(self._path) if self._path is not None else None
        self.core = RateGovernor(Limits(**lim), started_at=now, weights=weights, snapshot=snap)
        self._saved_at = now

    async def lease(self, requests: list[tuple[Any, ...]],
                    reports: Sequence[tuple[str, int, dict[str, str], float]] = (),
                    ) -> list[tuple[tuple[float, ...], float | None]]:
        """Apply ``reports`` (key, status, headers, when), then per (key, cls, n, released[, p99[, peak]])
        the answers' measured lateness (p99 and the largest recent one), the release and the lease.
        Returns (times, retry_at) per request."""
        now = self._clock()
        for key, status, headers, when in reports:
            self.core.report(key, status, headers, min(when, now))
        out = []
        for key, cls, n, released, *late in requests:
            if late and (late[0] is not None or len(late) > 1):
                self.core.observe_lateness(key, late[0], late[1] if len(late) > 1 else 0.0, now)
            if released:
                self.core.release(key, released, cls)
            lease = self.core.reserve(key, n, now, cls) if n > 0 else Lease(())
            out.append((lease.times, lease.retry_at))
        self._maybe_save(now)
        return out

    async def report(self, reports: list[tuple[str, int, dict[str, str], float]]) -> None:
        now = self._clock()
        for key, status, headers, when in reports:
            self.core.report(key, status, headers, min(when, now))

    async def status(self, key: str) -> dict[str, Any]:
        return asdict(self.core.status(key, self._clock()))

    async def limits(self) -> dict[str, Any]:
        d = asdict(self.core.limits)
        d["reserve_classes"] = sorted(d["reserve_classes"])
        return d

    async def save(self) -> None:
        if self._path is not None:
            self._save(self._clock())

    async def ping(self) -> bool:
        return True

    def _maybe_save(self, now: float) -> None:
        if self._path is not None and now - self._saved_at >= self._save_every:
            self._save(now)

    def _save(self, now: float) -> None:
        assert self._path is not None
        save_snapshot(self.core.snapshot(now), self._path)
        self._saved_at = now


class GovernorHandle:
    """``PermitSource`` backed by the shared actor. Picklable (the cache stays behind), so it can be
    passed to Ray tasks; ``for_class`` gives a handle acquiring under another priority class."""

    def __init__(self, actor: Any, *, app: str = "default", cls: str = "migration", batch: int = 8,
                 margin_s: float = 0.06, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._actor, self.app, self.cls, self.batch = actor, app, cls, batch
        self._margin = margin_s
        self._clock, self._sleep = clock, sleep
        self._init_local()

    def _init_local(self) -> None:
        self._lock = threading.Lock()  # the shared dicts below; never held across an actor call
        self._key_locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, deque[float]] = {}
        self._released: dict[str, list[float]] = {}
        self._wait: dict[str, float] = {}  # per key: no early refill before this (the actor said so)
        self._late: dict[str, deque[float]] = {}  # per key: how late the answer came after the permit
        self._freezes: dict[str, int] = {}  # per key: 429s seen; a lease that crossed one is given back
        self._sent = threading.local()  # this thread's last permit time per key, until its answer
        self._reports: list[tuple[str, int, dict[str, str], float]] = []
        self.calls = 0  # actor round trips made by this handle
        self.dropped = 0  # cached permits given back because they went stale before a worker came

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("_actor", "app", "cls", "batch", "_margin")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._clock, self._sleep = time.time, time.sleep
        self._init_local()

    def for_class(self, cls: str) -> GovernorHandle:
        return GovernorHandle(self._actor, app=self.app, cls=cls, batch=self.batch, margin_s=self._margin,
                              clock=self._clock, sleep=self._sleep)

    def _k(self, location_id: str) -> str:
        return f"{self.app}/{location_id}"

    # ---- PermitSource --------------------------------------------------------------------------------
    def acquire(self, location_id: str, n: int = 1) -> None:
        key = self._k(location_id)
        got: list[float] = []
        with self._key_lock(key):  # one lease in flight per key; other keys' threads lease meanwhile
            while len(got) < n:
                with self._lock:
                    cache = self._cache.setdefault(key, deque())
                    now = self._clock()
                    stale = self._released.setdefault(key, [])
                    while cache and cache[0] < now - self._margin / 2:  # too late to send safely
                        stale.append(cache.popleft())
                        self.dropped += 1
                    while cache and len(got) < n:
                        got.append(cache.popleft())
                    if len(got) >= n and (len(cache) >= self.batch // 2 or now < self._wait.get(key, 0.0)):
                        break
                    # lease before the cache runs dry, so demand never lapses while the actor answers
                    want = max(self.batch, n - len(got))
                    released, self._released[key] = stale, []
                    reports, self._reports = self._reports, []
                    self.calls += 1
                    samples = self._late.get(key)
                    late, peak = p99(samples), max(samples, default=0.0) if samples else 0.0
                    freezes = self._freezes.get(key, 0)
                (times, retry_at), = ray.get(self._actor.lease.remote(
                    [(key, self.cls, want, released, late, peak)], reports))
                with self._lock:
                    cache = self._cache.setdefault(key, deque())
                    if self._freezes.get(key, 0) != freezes:  # a 429 came meanwhile: these times may have
                        self._released.setdefault(key, []).extend(times)  # been planned before the freeze
                        continue
                    cache.extend(times)
                    self._wait[key] = retry_at if retry_at is not None else 0.0
                    # just leased: as fresh as the round trip allows, never dropped as stale before use
                    # (a round trip longer than half the margin would otherwise drop every lease,
                    # forever); the answer's lateness then widens the key's margin
                    while cache and len(got) < n:
                        got.append(cache.popleft())
                if len(got) < n and not times and retry_at is not None:
                    self._sleep_until(retry_at)
        self._sleep_until(max(got))
        permits_of(self._sent)[key] = max(got)

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                lock = self._key_locks[key] = threading.Lock()
            return lock

    def report(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        """As ``LocalGovernor.report``: the answer's arrival after the permit is the lateness the margin
        must cover (a server that queues counts the request late)."""
        h = {k.lower(): v for k, v in headers.items() if k.lower() in _HEADERS}
        key = self._k(location_id)
        permit = permits_of(self._sent).pop(key, None)
        with self._lock:
            now = self._clock()
            if permit is not None:
                self._late.setdefault(key, deque(maxlen=LATE_SAMPLES)).append(now - permit)
            self._reports.append((key, status, h, now))
            if status != 429 and len(self._reports) < 4 * self.batch:
                return
            if status == 429:  # cached permits were planned for a window that is now frozen
                self._released.setdefault(key, []).extend(self._cache.pop(key, ()))
                self._freezes[key] = self._freezes.get(key, 0) + 1
            reports, self._reports = self._reports, []
            requests = [(k, self.cls, 0, r) for k, r in self._released.items() if r]
            self._released = {}
            self.calls += 1
        ray.get(self._actor.lease.remote(requests, reports))

    # ---- the rest ------------------------------------------------------------------------------------
    def status(self, location_id: str) -> Status:
        return Status(**ray.get(self._actor.status.remote(self._k(location_id))))

    def limits(self) -> dict[str, Any]:
        out: dict[str, Any] = ray.get(self._actor.limits.remote())
        return out

    def save(self) -> None:
        """Have the actor write its usage snapshot now."""
        ray.get(self._actor.save.remote())

    def close(self) -> None:
        """Give back cached permits and flush pending reports."""
        with self._lock:
            requests = [(k, self.cls, 0, list(c) + self._released.get(k, [])) for k, c in self._cache.items()]
            reports, self._reports, self._cache, self._released = self._reports, [], {}, {}
        if requests or reports:
            ray.get(self._actor.lease.remote(requests, reports))

    def _sleep_until(self, t: float) -> None:
        wait = t - self._clock()
        if wait > 0:
            self._sleep(wait)


def ensure_ray(address: str | None = None) -> None:
    """Connect this process to Ray unless it is: the cluster at ``address``, else an in-process one."""
    if ray.is_initialized():
        return
    for k, v in _RAY_ENV.items():
        os.environ.setdefault(k, v)
    if address is None:
        ray.init(address="local", include_dashboard=False, num_cpus=2, namespace=NAMESPACE,
                 log_to_driver=False)
    else:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)


def connect(address: str | None = None, *, name: str = ACTOR_NAME, limits: Limits | None = None,
            weights: Mapping[str, float] | None = None, state: str | None = None, app: str = "default",
            cls: str = "migration", batch: int = 8) -> GovernorHandle:
    """The handle to the named detached governor, creating it on first use.

    Starts an in-process Ray (``address="local"``) unless Ray is initialised or ``address`` is given.
    ``limits``/``weights``/``state`` only matter to the call that creates the actor.
    """
    ensure_ray(address)
    lim_dict: dict[str, Any] | None = None
    if limits is not None:
        lim_dict = asdict(limits)
        lim_dict["reserve_classes"] = sorted(lim_dict["reserve_classes"])
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # on the head (the node that lives as long as the cluster), not on a worker node whose loss would
    # restart it under every worker (hard: a soft affinity was not kept on a busy two-node cluster)
    here = NodeAffinitySchedulingStrategy(_head_node(), soft=False)
    actor: Any = ray.remote(_GovernorActor).options(
        name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached", num_cpus=0,
        max_restarts=-1, max_concurrency=1000, scheduling_strategy=here,
    ).remote(lim_dict, dict(weights) if weights is not None else None, state)
    lim_now: dict[str, Any] = ray.get(actor.limits.remote())  # the existing actor's limits win
    margin = Limits(**{**lim_now, "reserve_classes": frozenset(lim_now["reserve_classes"])}).margin
    return GovernorHandle(actor, app=app, cls=cls, batch=batch, margin_s=margin)


def _head_node() -> str:
    """The cluster's head node id (this process's node when none is marked as the head)."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    heads = [n["NodeID"] for n in nodes
             if n.get("Alive") and "node:__internal_head__" in n.get("Resources", {})]
    return str(heads[0]) if heads else str(ray.get_runtime_context().get_node_id())


def kill(handle: GovernorHandle) -> None:
    """End the detached actor (it outlives its creator otherwise)."""
    ray.kill(handle._actor)
