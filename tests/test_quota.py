"""The planner answers for a group (issue 16): totals, the elapsed time with every location at once,
and which location finishes last and why."""

from __future__ import annotations

from typing import Any

from dos2hl.quota import group_timeline, render_plan


def _loc(requests: int, hours: float, days: float) -> dict[str, Any]:
    plan = {"requests": requests, "elapsed_hours": hours, "days_of_quota": days,
            "hours_at_burst_limit": hours}
    return {"api_path": plan, "with_bulk_path": plan}


LOCS = {"L001": _loc(36_000, 1.0, 0.18), "L002": _loc(180_000, 5.0, 0.9), "L003": _loc(72_000, 2.0, 0.36)}


def test_every_location_at_once_takes_as_long_as_the_slowest() -> None:
    g = group_timeline(LOCS, "with_bulk_path")
    assert g["locations"] == 3 and g["requests"] == 288_000
    assert g["elapsed_hours"] == 5.0 and g["one_after_another_hours"] == 8.0
    assert g["finishes_last"]["location"] == "L002" and "burst limit" in g["finishes_last"]["why"]


def test_fewer_workers_than_locations_queue_longest_first() -> None:
    assert group_timeline(LOCS, "api_path", workers=1)["elapsed_hours"] == 8.0
    assert group_timeline(LOCS, "api_path", workers=2)["elapsed_hours"] == 5.0  # 5 | 2 + 1


def test_ray_workers_write_every_location_at_once_the_thread_executor_at_most_64() -> None:
    """Past 64 locations the thread executor queues them (64 threads at most); Ray's workers each run
    enough shards for every location at once, so the group takes as long as its slowest location."""
    many = {f"L{i:03d}": _loc(36_000, 1.0, 0.18) for i in range(100)}
    threads = group_timeline(many, "api_path")
    ray = group_timeline(many, "api_path", executor="ray", workers=4)
    assert (threads["workers"], threads["elapsed_hours"]) == (64, 2.0)
    assert (ray["workers"], ray["elapsed_hours"], ray["executor"]) == (100, 1.0, "ray")


def test_a_location_past_its_daily_quota_is_named_for_it() -> None:
    locs = {**LOCS, "L004": _loc(500_000, 50.3, 2.5)}
    last = group_timeline(locs, "api_path")["finishes_last"]
    assert last["location"] == "L004" and "2.5 days" in last["why"] and "daily quota" in last["why"]


def test_the_plan_for_people_says_it() -> None:
    plan = {"limits": {"burst": 100, "window_s": 10.0, "daily": 200_000}, "bulk_threshold": 5000,
            "locations": {}, "grade": "A", "seed_estimate_hours": [48, 72], "manual_steps": [],
            "group": {"with_bulk_path": group_timeline(LOCS, "with_bulk_path")}}
    text = render_plan(plan)
    assert "3 locations at once" in text and "L002 finishes last (5.0 hours)" in text
