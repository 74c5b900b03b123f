"""The governor as a named detached Ray actor: one ray.init for the module, two tasks share one actor."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest

from dos2hl.governor import Limits
from tests.fakes import packed_actor
from tests.governor.test_core import max_in_window

for _k, _v in {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "RAY_USAGE_STATS_ENABLED": "0"}.items():
    os.environ.setdefault(_k, _v)

import ray  # noqa: E402

from dos2hl.governor.actor import GovernorHandle, _GovernorActor, connect, kill  # noqa: E402

LIM = Limits(burst=20, window_s=0.5, daily=100_000, margin_s=0.05, reserve=0.0)
NAME = f"gov-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def handle() -> Iterator[GovernorHandle]:
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False)
    h = connect(name=NAME, limits=LIM)
    try:
        yield h
    finally:
        kill(h)
        ray.shutdown()


class _Recording(GovernorHandle):
    """Keeps each permit's send-not-before time: ``acquire`` ends by sleeping until it."""

    def _sleep_until(self, t: float) -> None:
        self.last = t
        super()._sleep_until(t)


@ray.remote(num_cpus=0)
def _worker(name: str, cls: str, n: int) -> tuple[list[float], int]:
    # a second connection to the same named actor
    h = _Recording(ray.get_actor(name, namespace="dos2hl"), cls=cls, batch=4, margin_s=LIM.margin_s)
    granted = []
    for _ in range(n):
        h.acquire("loc", 1)
        granted.append(h.last)
    h.close()
    return granted, h.calls


def test_two_tasks_share_one_actor_and_never_exceed_the_window(handle: GovernorHandle) -> None:
    assert {"name": NAME, "namespace": "dos2hl"} in ray.util.list_named_actors(all_namespaces=True)
    refs = [_worker.remote(NAME, cls, 40) for cls in ("migration", "verify")]
    results = ray.get(refs)
    # the actor's promise is on the permits' times; when each request then leaves depends on the OS
    # scheduler (a 2-core machine running the suite's other half once put 21 sends in a window)
    granted = sorted(t for g, _ in results for t in g)
    assert len(granted) == 80
    assert max_in_window(granted, LIM.window_s) <= LIM.burst
    calls = sum(c for _, c in results)
    assert calls < 80 / 2  # batched: far fewer actor calls than requests
    # Both classes were served side by side (neither waited for the other to finish): no timing bound,
    # just the order of events.
    (mig, _), (ver, _) = results
    assert min(ver) < max(mig) and min(mig) < max(ver)


def test_the_same_named_actor_is_found_again(handle: GovernorHandle) -> None:
    again = connect(name=NAME, limits=Limits(burst=7))
    assert again._actor._actor_id == handle._actor._actor_id
    assert ray.get(again._actor.limits.remote())["burst"] == 20  # the creator's limits win


def test_actor_capacity_with_batches(handle: GovernorHandle) -> None:
    actor = handle._actor
    keys = [f"cap/{i}" for i in range(500)]
    ray.get(actor.lease.remote([(k, "migration", 1, []) for k in keys]))
    t0 = time.perf_counter()
    refs = [actor.lease.remote([(k, "migration", 8, []) for k in keys[i:i + 50]]) for i in range(0, 500, 50)]
    granted = sum(len(times) for batch in ray.get(refs) for times, _ in batch)
    rate = granted / (time.perf_counter() - t0)
    assert granted > 0
    print(f"actor capacity: {rate:.0f} permits/s")


def test_the_actor_class_works_without_ray() -> None:
    import asyncio

    clock = [1_750_000_000.0]
    a = _GovernorActor({"burst": 2, "window_s": 1.0, "margin_s": 0.0, "reserve": 0.0, "pace": 0.0},
                       clock=lambda: clock[0])
    out = asyncio.run(a.lease([("k", "migration", 3, [])]))
    assert out == [((clock[0] + 1, clock[0] + 1), clock[0] + 1)]  # fail-safe, then the class's share
    st = asyncio.run(a.status("k"))
    assert st["day_used"] == 2


def test_the_shared_actor_holds_the_limit_when_the_server_queues(handle: GovernorHandle, tmp_path) -> None:
    """Issue 16, as ``test_queueing_server.py`` for ``LocalGovernor``: through ``GovernorHandle`` with its
    batched leases, the answers' lateness travelling to the actor with the next lease."""
    from tests.governor.test_queueing_server import LIM as QLIM
    from tests.governor.test_queueing_server import assert_held, drive

    h = connect(name=f"gov-queue-{uuid.uuid4().hex[:8]}", limits=QLIM, batch=4)
    try:
        loc, rows = drive(tmp_path / "sb", h)
        h.close()
        assert_held(rows)
        assert h.status(loc).margin_s > 0.1
    finally:
        kill(h)


def test_a_lease_slower_than_half_the_margin_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a busy machine an actor round trip can take longer than half the margin, and every permit of
    a fresh lease at the actor's "now" arrives older than the handle's staleness bound. The handle used
    to drop (and re-lease) them forever; permits it just leased are now used, and the answer's lateness
    widens the key's margin at the actor."""
    import asyncio

    import dos2hl.governor.actor as actor_mod

    clock = [1_750_000_000.0]
    a = _GovernorActor({"burst": 100, "window_s": 1.0, "margin_s": 0.006, "reserve": 0.0},
                       clock=lambda: clock[0])  # paced 9 ms apart
    calls = [0]

    def lease(*args: object) -> object:
        calls[0] += 1
        if calls[0] > 200:
            raise AssertionError("the handle keeps re-leasing")
        out = asyncio.run(a.lease(*args))  # type: ignore[arg-type]
        clock[0] += 0.1  # a 100 ms round trip: past 3 ms (half the margin) and the batch's 8 x 9 ms
        return out

    monkeypatch.setattr(actor_mod.ray, "get", lambda ref: ref)
    h = GovernorHandle(packed_actor(lease), margin_s=0.006,
                       clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    clock[0] += 2.0  # past the fail-safe interval
    for _ in range(40):
        h.acquire("loc", 1)
        h.report("loc", 200, {})
    assert calls[0] <= 40  # at most one lease per acquire: each one ends
    h.acquire("loc", 1)  # the next lease carries the lateness
    assert asyncio.run(a.status("default/loc"))["margin_s"] >= 0.1


def test_a_lease_that_crossed_a_429_is_given_back_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handle's lock is not held across the actor call: a 429 another thread reports while a lease is
    in flight empties the cache, and the lease's times, perhaps planned before the freeze, must not then
    be cached and sent during it (review of issue 16): they go back to the actor and the handle leases
    again."""
    import asyncio

    import dos2hl.governor.actor as actor_mod
    from dos2hl.governor.local import permits_of

    clock = [1_750_000_000.0]
    a = _GovernorActor({"burst": 100, "window_s": 1.0, "margin_s": 0.006, "reserve": 0.0},
                       clock=lambda: clock[0])
    leases: list[tuple[float, ...]] = []
    given_back: list[float] = []
    h: GovernorHandle

    def lease(requests: list[tuple[object, ...]], reports: object = ()) -> object:
        for r in requests:
            given_back.extend(r[3])  # type: ignore[arg-type]
        out = asyncio.run(a.lease(requests, reports))  # type: ignore[arg-type]
        if requests and requests[0][2] and not leases:  # the first real lease: a 429 lands meanwhile
            leases.append(out[0][0])
            h.report("loc", 429, {"retry-after": "1"})  # another thread's answer
        return out

    monkeypatch.setattr(actor_mod.ray, "get", lambda ref: ref)
    h = GovernorHandle(packed_actor(lease), margin_s=0.006,
                       clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    clock[0] += 2.0  # past the fail-safe interval
    h.acquire("loc", 1)
    first = set(leases[0])
    assert first and first <= set(given_back)  # the crossed lease went back to the actor
    assert permits_of(h._sent)["default/loc"] not in first  # and none of it was used


def test_threads_on_different_locations_lease_at_the_same_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handle's lock is never held across an actor call: a worker whose lease is in flight for one
    location does not hold up a worker of another (the handle used to allow one call per process)."""
    import asyncio
    import threading

    import dos2hl.governor.actor as actor_mod

    a = _GovernorActor({"burst": 100, "window_s": 1.0, "reserve": 0.0}, clock=lambda: 1_750_000_010.0)
    b_leased, a_in_flight = threading.Event(), threading.Event()
    lock = threading.Lock()

    def lease(requests: list[tuple[object, ...]], reports: object) -> object:
        if requests and requests[0][0] == "default/a":  # a's lease waits until b's went through
            a_in_flight.set()
            assert b_leased.wait(timeout=10), "b's lease never came while a's was in flight"
        with lock:
            out = asyncio.run(a.lease(requests, reports))  # type: ignore[arg-type]
        if requests and requests[0][0] == "default/b":
            b_leased.set()
        return out

    monkeypatch.setattr(actor_mod.ray, "get", lambda ref: ref)
    h = GovernorHandle(packed_actor(lease), clock=lambda: 1_750_000_010.0,
                       sleep=lambda s: None)
    a.core = type(a.core)(a.core.limits, started_at=0.0)  # no fail-safe wait in this test
    errors: list[BaseException] = []

    def take(loc: str) -> None:
        try:
            h.acquire(loc, 1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    ta = threading.Thread(target=take, args=("a",))
    ta.start()
    assert a_in_flight.wait(timeout=30)  # b starts only once a's lease is in flight
    tb = threading.Thread(target=take, args=("b",))
    tb.start()
    ta.join(timeout=30)
    tb.join(timeout=30)
    assert errors == [] and b_leased.is_set()
