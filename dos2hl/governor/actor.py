"""The governor as one named, detached Ray actor, and ``GovernorHandle``, the ``PermitSource`` facade.

The governor's only module that imports Ray. ``_GovernorActor`` is a plain class (testable without Ray)
with async methods that never ``await`` between reading and writing state, so one event loop serialises
them without a lock. The facade's ``broker.LeaseBroker`` keeps a stock of permits per location, leased
ahead for all of the process's threads and locations in one call (at most two calls out at once),
gives back permits that went stale, and sends reports along with the next lease: one actor call serves
many locations' requests (``bench/governor.py``: about 1 k actor calls/s binds this machine).

Across OS processes the actor must live on a long-lived Ray head (``ray start --head``; STACK_NOTES §3
and pitfall 6): ``connect(address="127.0.0.1:6390")``. ``connect()`` alone starts an in-process cluster.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import ray

from ..errors import QuotaExhausted
from .broker import BATCH, LeaseBroker
from .core import Lease, Limits, RateGovernor, Status
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

    async def lease_packed(self, blob: bytes) -> bytes:
        """``lease`` with its arguments and answer pickled by the caller: Ray's own serialisation of the
        nested tuples and dicts cost the caller ~0.3 ms of CPU per call, as much as the call itself
        (measured: 0.9-1.1 ms against 0.55-0.8 ms per call with 8 locations' requests and 35 reports)."""
        requests, reports = pickle.loads(blob)
        return pickle.dumps(await self.lease(requests, reports), protocol=pickle.HIGHEST_PROTOCOL)

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
    """``PermitSource`` backed by the shared actor. Picklable (the stock stays behind), so it can be
    passed to Ray tasks; ``for_class`` gives a handle acquiring under another priority class. Its
    ``LeaseBroker`` keeps the stock and makes the actor calls for all of the process's threads;
    ``limits`` (``connect`` passes the actor's) bound a location's stock to a fair share of its window."""

    def __init__(self, actor: Any, *, app: str = "default", cls: str = "migration", batch: int = BATCH,
                 margin_s: float = 0.06, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, limits: Limits | None = None) -> None:
        self._actor, self.app, self.cls, self.batch = actor, app, cls, batch
        self._margin, self._limits = margin_s, limits
        self._clock, self._sleep = clock, sleep
        self._init_local()

    def _init_local(self) -> None:
        self._broker = LeaseBroker(self._submit, self._answer, cls=self.cls, batch=self.batch,
                                   margin_s=self._margin, limits=self._limits, clock=self._clock,
                                   sleep=self._sleep)
        self._sent = threading.local()  # this thread's last permit time per key, until its answer

    def _submit(self, requests: list[tuple[Any, ...]], reports: list[Any]) -> Any:
        blob = pickle.dumps((requests, reports), protocol=pickle.HIGHEST_PROTOCOL)
        return self._actor.lease_packed.remote(blob)

    @staticmethod
    def _answer(ref: Any) -> Any:
        return pickle.loads(ray.get(ref))

    @property
    def calls(self) -> int:
        """Actor round trips made by this handle."""
        return self._broker.calls

    @property
    def dropped(self) -> int:
        """Permits given back because they went stale before a worker came."""
        return self._broker.dropped

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("_actor", "app", "cls", "batch", "_margin", "_limits")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._clock, self._sleep = time.time, time.sleep
        self._init_local()

    def for_class(self, cls: str) -> GovernorHandle:
        return GovernorHandle(self._actor, app=self.app, cls=cls, batch=self.batch, margin_s=self._margin,
                              clock=self._clock, sleep=self._sleep, limits=self._limits)

    def _k(self, location_id: str) -> str:
        return f"{self.app}/{location_id}"

    # ---- PermitSource --------------------------------------------------------------------------------
    def acquire(self, location_id: str, n: int = 1) -> None:
        """As ``LocalGovernor.acquire``: a wait beyond ``Limits.max_wait_s`` raises ``QuotaExhausted``."""
        key = self._k(location_id)
        try:
            got = self._broker.take(key, n)
        except QuotaExhausted as exc:  # the broker knows the key and the actor's retry time; T is the reset
            st = self.status(location_id)
            resume = st.eta if st.state == "waiting_for_daily_reset" and st.eta else exc.resume_at
            raise QuotaExhausted(location_id, resume) from None
        self._sleep_until(max(got))
        permits_of(self._sent)[key] = max(got)

    def report(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        """As ``LocalGovernor.report``: the answer's arrival after the permit is the lateness the margin
        must cover (a server that queues counts the request late); it travels with the next lease."""
        h = {k.lower(): v for k, v in headers.items() if k.lower() in _HEADERS}
        key = self._k(location_id)
        permit = permits_of(self._sent).pop(key, None)
        self._broker.report(key, status, h, None if permit is None else self._clock() - permit)

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
        """Give back the permits in stock and flush pending reports."""
        self._broker.close()

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
            cls: str = "migration", batch: int = BATCH) -> GovernorHandle:
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
    lim = Limits(**{**lim_now, "reserve_classes": frozenset(lim_now["reserve_classes"])})
    return GovernorHandle(actor, app=app, cls=cls, batch=batch, margin_s=lim.margin, limits=lim)


def _head_node() -> str:
    """The cluster's head node id (this process's node when none is marked as the head)."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    heads = [n["NodeID"] for n in nodes
             if n.get("Alive") and "node:__internal_head__" in n.get("Resources", {})]
    return str(heads[0]) if heads else str(ray.get_runtime_context().get_node_id())


def kill(handle: GovernorHandle) -> None:
    """End the detached actor (it outlives its creator otherwise)."""
    ray.kill(handle._actor)
