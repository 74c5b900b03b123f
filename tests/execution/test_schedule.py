"""Every location at once (issue 16): shards are handed to workers fairly across locations, so N
workers work on N locations, and a slow location holds its share of the workers, never the others'
work. Synchronised with events, not timing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from dos2hl.execution.schedule import FairQueue, default_workers, per_location, run_fair


def _units(spec: dict[str, int]) -> list[tuple[str, int]]:
    return [(loc, n) for loc, count in spec.items() for n in range(count)]


def test_the_queue_spreads_the_first_takes_over_every_location() -> None:
    q = FairQueue(_units({"A": 5, "B": 1, "C": 2}), key=lambda u: u[0])
    first = [q.take() for _ in range(3)]
    assert [u[1][0] for u in first if u] == ["A", "B", "C"]
    assert q.in_flight() == {"A": 1, "B": 1, "C": 1}
    q.done(first[1][0])  # B's one shard ends and B has no more: A and C are even, A came first
    nxt = [q.take(), q.take()]
    assert [u[1] for u in nxt if u] == [("A", 1), ("C", 1)]  # then C: A has more in flight
    rest = [q.take() for _ in range(len(q))]
    assert [u[1] for u in rest if u] == [("A", 2), ("A", 3), ("A", 4)]
    assert q.take() is None and len(q) == 0


def test_a_location_with_more_shards_takes_the_spare_workers_in_its_order() -> None:
    q = FairQueue(_units({"A": 3, "B": 1}), key=lambda u: u[0])
    taken = [q.take() for _ in range(4)]
    assert [u[1] for u in taken if u] == [("A", 0), ("B", 0), ("A", 1), ("A", 2)]


def test_as_many_locations_are_in_flight_at_once_as_there_are_workers() -> None:
    units = _units({f"L{i:03d}": 3 for i in range(6)})
    starts: list[str] = []
    lock = threading.Lock()
    together = threading.Barrier(6, timeout=30)  # no unit ends before six are in flight

    def fn(u: tuple[str, int]) -> str:
        with lock:
            starts.append(u[0])
        together.wait()
        return f"{u[0]}/{u[1]}"

    out = run_fair(units, fn, key=lambda u: u[0], workers=6)
    assert out == [f"{loc}/{n}" for loc, n in units]  # results in the order of the units
    assert len(set(starts[:6])) == 6  # the first six in flight: six locations, not one location's shards


def test_a_slow_location_never_holds_the_others() -> None:
    """Every shard of location A blocks until the other locations' shards are done (A waits for its
    budget): with fair hand-out A holds at most its share of the workers and the others finish B and C
    meanwhile; a first-come pool would put all three workers on A's shards and B and C would wait."""
    units = _units({"A": 4, "B": 3, "C": 3})
    others_done = threading.Event()
    done: list[str] = []
    lock = threading.Lock()

    def fn(u: tuple[str, int]) -> str:
        if u[0] == "A":
            assert others_done.wait(timeout=20), "the other locations waited for A"
        with lock:
            done.append(u[0])
            if done.count("B") == 3 and done.count("C") == 3:
                others_done.set()
        return u[0]

    run_fair(units, fn, key=lambda u: u[0], workers=3)
    assert done[-4:] == ["A"] * 4 and sorted(done) == sorted(u[0] for u in units)


def test_an_error_stops_the_hand_out_and_reaches_the_caller() -> None:
    ran: list[tuple[str, int]] = []

    def fn(u: tuple[str, int]) -> Any:
        ran.append(u)
        if u == ("A", 0):
            raise RuntimeError("boom")
        return u

    with pytest.raises(RuntimeError, match="boom"):
        run_fair(_units({"A": 3, "B": 3}), fn, key=lambda u: u[0], workers=1)
    assert ran == [("A", 0)]


def test_per_location_runs_every_location_at_once() -> None:
    barrier = threading.Barrier(5, timeout=30)

    def fn(loc: str) -> str:
        barrier.wait()  # only passes if all five run at once
        return loc.lower()

    assert per_location(["A", "B", "C", "D", "E"], fn, workers=8) == {c: c.lower() for c in "ABCDE"}


def test_by_default_every_location_gets_a_thread() -> None:
    assert default_workers(1) == 4 and default_workers(24) == 24 and default_workers(500) == 64
    assert 1 <= default_workers(24, "ray") <= 24 and default_workers(1, "ray") == 1


def test_a_paused_location_gets_no_more_units_and_the_others_all_run() -> None:
    """Issue 17: once a unit of location A says its location paused, A's units not yet handed out are
    not (their result is ``skipped``'s), and B's all run."""
    units = [("A", n) for n in range(5)] + [("B", n) for n in range(5)]
    ran: list[tuple[str, int]] = []
    lock = threading.Lock()

    def fn(unit: tuple[str, int]) -> str:
        with lock:
            ran.append(unit)
        return "paused" if unit == ("A", 1) else "done"

    out = run_fair(units, fn, key=lambda u: u[0], workers=1, stop=lambda r: r == "paused",
                   skipped=lambda unit, by: f"not started ({by})")
    assert [u for u in ran if u[0] == "A"] == [("A", 0), ("A", 1)]
    assert sorted(u for u in ran if u[0] == "B") == [("B", n) for n in range(5)]
    assert out[:5] == ["done", "paused"] + ["not started (paused)"] * 3 and out[5:] == ["done"] * 5
    q = FairQueue(units, key=lambda u: u[0])
    q.take()
    assert [i for i, _ in q.drop("A")] == [1, 2, 3, 4] and len(q) == 5 and q.drop("C") == []
