"""The governor's arithmetic: window safety under jitter, utilization, daily cap, 429, fairness, snapshots."""

from __future__ import annotations

import bisect
import heapq
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from dos2hl.governor import Limits, RateGovernor, load_snapshot, save_snapshot

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
SMALL = Limits(burst=5, window_s=1.0, daily=1_000_000, margin_s=0.05, reserve=0.0)


def max_in_window(sends: list[float], window: float) -> int:
    """Exact: the most sends in any window (x - window, x] (the sandbox's rule)."""
    s = sorted(sends)
    return max((i + 1 - bisect.bisect_right(s, s[i] - window) for i in range(len(s))), default=0)


def drive(gov: RateGovernor, arrivals: list[tuple[float, str, int, int]]) -> list[tuple[float, str, str]]:
    """Each arrival (time, key, n, cls index) leases until it has n times; returns (time, key, cls)."""
    classes = ["migration", "delta", "verify"]
    queue = [(t, i, key, n, classes[c]) for i, (t, key, n, c) in enumerate(arrivals)]
    heapq.heapify(queue)
    grants: list[tuple[float, str, str]] = []
    steps = 0
    while queue:
        now, i, key, n, cls = heapq.heappop(queue)
        lease = gov.reserve(key, n, now, cls)
        assert all(t >= now for t in lease.times)
        grants += [(t, key, cls) for t in lease.times]
        if len(lease.times) < n:
            assert lease.retry_at is not None and lease.retry_at > now
            heapq.heappush(queue, (lease.retry_at, i, key, n - len(lease.times), cls))
        steps += 1
        assert steps < 100_000
    return grants


arrival = st.tuples(st.floats(0, 2.5), st.sampled_from(["a", "b"]), st.integers(1, 8), st.integers(0, 2))


@settings(max_examples=150, deadline=None)
@given(st.lists(arrival, min_size=1, max_size=60), st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_no_window_ever_holds_more_than_the_burst_whatever_the_jitter(raw, jitter) -> None:
    gov = RateGovernor(SMALL, started_at=T0)
    t, arrivals = T0, []
    for gap, key, n, c in raw:
        t += gap
        arrivals.append((t, key, n, c))
    grants = drive(gov, arrivals)
    assert len(grants) == sum(n for _, _, n, _ in raw)
    for key in ("a", "b"):
        sends = [g + jitter[i % len(jitter)] * SMALL.margin for i, (g, k, _) in enumerate(grants) if k == key]
        assert max_in_window(sends, SMALL.window_s) <= SMALL.burst
        assert all(s >= T0 + SMALL.interval for s in sends)  # fail-safe: one interval first


def test_utilization_under_constant_demand_is_above_99_percent() -> None:
    lim = Limits()  # 100 / 10 s, default margin
    gov = RateGovernor(lim, started_at=T0)
    start = T0 + lim.interval  # after the fail-safe interval
    arrivals = [(T0, "loc", 325, 0)] * 16  # 16 workers wanting far more than 50 windows can take
    times = sorted(t for t, _, _ in drive(gov, arrivals))
    end = start + 50 * lim.window_s
    sent = sum(1 for t in times if start <= t < end)
    utilization = sent / (50 * lim.burst)
    assert utilization >= 0.99, utilization
    assert max_in_window(times, lim.window_s) <= lim.burst


def test_core_capacity_is_far_above_the_need() -> None:
    gov = RateGovernor(Limits(), started_at=T0 - 100)
    keys = [f"loc{i}" for i in range(2000)]
    t0 = time.perf_counter()
    granted = 0
    for rnd in range(10):
        for k in keys:
            granted += len(gov.reserve(k, 5, T0 + rnd, "migration").times)
    rate = granted / (time.perf_counter() - t0)
    assert granted == 100_000
    assert rate > 20_000, rate


def test_daily_cap_keeps_the_reserve_and_pauses_until_the_reset_with_an_eta() -> None:
    lim = Limits(burst=1000, window_s=1.0, daily=100, reserve=0.10, margin_s=0.0, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    assert len(gov.reserve("loc", 90, T0).times) == 90
    st_ = gov.status("loc", T0)
    midnight = (T0 // 86_400 + 1) * 86_400
    assert (st_.state, st_.eta, st_.day_used, st_.day_limit) == ("waiting_for_daily_reset", midnight, 90, 90)
    lease = gov.reserve("loc", 1, T0)  # migration is at its floor: come back near the reset
    assert lease.times == () and lease.retry_at is not None and lease.retry_at < midnight
    verify = gov.reserve("loc", 10, T0, "verify")  # verify may use half of the reserve
    assert len(verify.times) == 5
    later = gov.reserve("loc", 3, midnight - 1)
    assert later.times == (midnight,) * 3  # the next day's budget
    assert gov.status("loc", midnight + 1).state == "running"


def test_reset_time_is_configurable() -> None:
    lim = Limits(burst=1000, window_s=1.0, daily=10, reserve=0.0, margin_s=0.0, reset_offset_s=8 * 3600)
    gov = RateGovernor(lim, started_at=T0 - 10)
    gov.reserve("loc", 10, T0)
    eta = gov.status("loc", T0).eta
    assert eta is not None and eta % 86_400 == 8 * 3600 and 0 < eta - T0 <= 86_400


def test_snapshot_round_trip_and_fail_safe_after_restart(tmp_path) -> None:
    lim = Limits(burst=10, window_s=1.0, daily=100, reserve=0.0, margin_s=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    gov.reserve("loc", 10, T0)  # a full window
    gov.reserve("loc", 10, T0 + 1)
    path = tmp_path / "gov.json"
    save_snapshot(gov.snapshot(T0 + 1.5), path)
    back = RateGovernor.restore(load_snapshot(path), lim, started_at=T0 + 1.5)
    assert back.status("loc", T0 + 1.5).day_used == 20
    first = back.reserve("loc", 1, T0 + 1.5).times[0]
    assert first == T0 + 2.5  # waits one interval from the restart, not from the last grant
    other = back.reserve("fresh", 1, T0 + 1.5).times[0]
    assert other == T0 + 2.5  # the fail-safe applies to every key
    assert load_snapshot(tmp_path / "missing.json") is None


def test_reconciliation_only_lowers_the_budget() -> None:
    lim = Limits(burst=10, window_s=1.0, daily=100, reserve=0.0, margin_s=0.0, report_lag_s=0.0, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    gov.reserve("loc", 2, T0)
    # the server has more room than we think: ignored
    gov.report("loc", 200, {"X-RateLimit-Remaining": "10", "X-RateLimit-Daily-Remaining": "100"}, T0)
    assert gov.status("loc", T0).day_used == 2
    assert len(gov.reserve("loc", 8, T0).times) == 8
    assert gov.reserve("loc", 1, T0).times == (T0 + 1,)
    # another client of the app used 40 today and 3 of the window: we lose them
    gov2 = RateGovernor(lim, started_at=T0 - 10)
    gov2.reserve("loc", 2, T0)
    gov2.report("loc", 200, {"x-ratelimit-remaining": "5", "x-ratelimit-daily-remaining": "58"}, T0)
    assert gov2.status("loc", T0).day_used == 42
    assert len([t for t in gov2.reserve("loc", 10, T0).times if t == T0]) == 5


def test_429_freezes_one_interval_then_increases_additively() -> None:
    lim = Limits(burst=10, window_s=1.0, daily=10_000, reserve=0.0, margin_s=0.0, recover_step=1)
    gov = RateGovernor(lim, started_at=T0 - 10)
    gov.report("loc", 429, {"Retry-After": "0.5"}, T0)
    assert gov.status("loc", T0).state == "paused" and gov.status("loc", T0).eta == T0 + 1
    times = []
    now = T0
    while len(times) < 5 * 10:
        lease = gov.reserve("loc", 10, now)
        times += lease.times
        now = lease.retry_at if lease.retry_at else max(now, times[-1])
    assert min(times) >= T0 + 1
    per_interval = [sum(1 for t in times if T0 + 1 + i <= t < T0 + 2 + i) for i in range(5)]
    assert per_interval == [5, 6, 7, 8, 9]  # cap 5 after the freeze, +1 per interval
    assert gov.status("loc", T0 + 10).cap == 10
    gov.report("loc", 429, {"Retry-After": "30"}, now)
    assert gov.status("loc", now).eta == now + 30  # Retry-After longer than the interval wins


def test_no_class_starves_the_other() -> None:
    lim = Limits(burst=10, window_s=1.0, daily=10**6, reserve=0.0, margin_s=0.0, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10, weights={"migration": 1, "verify": 1})
    # 16 migration workers and 1 verify worker, each always asking for 4
    arrivals = [(T0, "loc", 4, 0)] * 16 * 20 + [(T0 + 0.01 * i, "loc", 4, 2) for i in range(60)]
    grants = drive(gov, arrivals)
    verify = sorted(t for t, _, c in grants if c == "verify")
    migration = sorted(t for t, _, c in grants if c == "migration")
    # while both are busy, each gets about half of every window
    busy_end = min(verify[-1], migration[-1])
    for w in range(2, int(busy_end - T0) - 1):
        v = sum(1 for t in verify if T0 + w <= t < T0 + w + 1)
        m = sum(1 for t in migration if T0 + w <= t < T0 + w + 1)
        assert 4 <= v <= 6 and 4 <= m <= 6, (w, v, m)
    assert verify[0] - T0 <= 2.0 + 1e-9  # the first verify permit waits at most the horizon (2 intervals)


def test_locations_are_independent() -> None:
    lim = Limits(burst=10, window_s=1.0, daily=10**6, reserve=0.0, margin_s=0.0, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    gov.report("a", 429, {}, T0)
    gov.reserve("a", 10, T0 + 2)
    assert gov.reserve("b", 10, T0).times == (T0,) * 10
    assert gov.status("b", T0).state == "running"


def test_released_permits_no_longer_count() -> None:
    lim = Limits(burst=4, window_s=1.0, daily=100, reserve=0.0, margin_s=0.0, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    times = gov.reserve("loc", 4, T0).times
    gov.release("loc", times[2:])
    assert gov.status("loc", T0).day_used == 2
    assert gov.reserve("loc", 2, T0).times == (T0, T0)


def test_grants_are_paced_through_the_window_not_bunched_at_its_start() -> None:
    lim = Limits(burst=100, window_s=1.0, daily=10**7)  # default pace 0.9
    gov = RateGovernor(lim, started_at=T0 - 10)
    times = sorted(t for t, _, _ in drive(gov, [(T0, "loc", 400, 0)] * 4))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.9 * lim.interval / lim.burst - 1e-6
    assert max_in_window(times, lim.window_s) <= lim.burst
    # bursts allowed when pace is 0: the first window's grants all at once
    burst = RateGovernor(Limits(burst=100, window_s=1.0, daily=10**7, pace=0.0), started_at=T0 - 10)
    assert burst.reserve("loc", 100, T0).times == (T0,) * 100


def test_late_batched_reports_of_our_own_sends_invent_no_phantom_grants() -> None:
    """Workers send their responses' headers in batches, up to ~0.3 s late: X-RateLimit-Remaining then
    describes a window that ended long ago. Comparing it with the grants around *its* time finds no one
    else using the budget, so the schedule keeps its pace (a regression: it once lost 7-30 %)."""
    lim = Limits(burst=100, window_s=1.0, daily=10**7)
    gov = RateGovernor(lim, started_at=T0 - 10)
    server: list[float] = []  # arrival times the server saw
    pending: list[tuple[float, int]] = []  # (response time, remaining) not yet reported
    now, sent = T0, 0
    while now < T0 + 20:
        lease = gov.reserve("loc", 8, now)
        for t in lease.times:
            arrival = t + 0.003
            server.append(arrival)
            in_window = sum(1 for a in server if arrival - lim.window_s < a <= arrival)
            pending.append((arrival + 0.02, lim.burst - in_window))
        sent += len(lease.times)
        now = max(now, lease.times[-1] if lease.times else lease.retry_at or now) + 0.001
        while pending and pending[0][0] < now - 0.3:  # a batch of reports, 0.3 s late
            when, remaining = pending.pop(0)
            gov.report("loc", 200, {"X-RateLimit-Remaining": str(remaining)}, when)
    assert max_in_window(server, lim.window_s) <= lim.burst
    in_run = sum(1 for a in server if T0 + 1 <= a < T0 + 19)
    assert in_run / (18 * lim.burst) >= 0.99


def test_measured_lateness_widens_the_margin_within_bounds() -> None:
    lim = Limits(burst=10, window_s=1.0, daily=10**6, reserve=0.0, margin_s=0.006, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    assert gov.observe_lateness("loc", 0.001) == 0.006  # never below the configured margin
    assert gov.observe_lateness("loc", 0.02) == 0.04  # twice the p99 lateness, at once
    assert gov.status("loc", T0).margin_s == 0.04
    first = gov.reserve("loc", 10, T0).times
    assert gov.reserve("loc", 1, T0).times == (first[0] + 1.04,)  # the window rule uses it
    assert gov.observe_lateness("loc", 0.001) < 0.04  # decays slowly when workers are punctual again
    assert gov.observe_lateness("loc", 5.0) == 1.0  # capped at one window (never below half the budget)


def test_one_late_answer_widens_the_margin_at_once_and_a_peak_alone_never_narrows_it() -> None:
    """Issue 16: a server that queued a request counted it as late as its answer came, so the margin
    must cover the largest recent lateness, not only twice the p99 (one answer in a hundred may be
    the one a queue held back)."""
    lim = Limits(burst=10, window_s=1.0, daily=10**6, reserve=0.0, margin_s=0.006, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    assert gov.observe_lateness("loc", 0.005, peak=0.3) == 0.3  # the peak wins over 2 x p99
    assert gov.margin("loc") == 0.3
    assert gov.observe_lateness("loc", None, peak=0.1) == 0.3  # a peak alone never lowers it
    assert gov.observe_lateness("loc", 0.005, peak=0.1) < 0.3  # the statistics do, slowly


def test_a_configured_margin_above_the_learned_cap_is_never_lowered() -> None:
    # a window scaled down (1 s) with a margin kept in seconds (1.5 s > the one-window cap): what is
    # learned may not take the margin below what the operator set
    lim = Limits(burst=10, window_s=1.0, daily=10**6, reserve=0.0, margin_s=1.5, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    assert gov.observe_lateness("loc", 5.0) == 1.5
    for _ in range(50):
        assert gov.observe_lateness("loc", 0.0) == 1.5
    first = gov.reserve("loc", 10, T0).times
    assert gov.reserve("loc", 1, T0).times == (first[0] + 2.5,)


def test_limits_the_server_announces_only_ever_lower_ours() -> None:
    lim = Limits(burst=10, window_s=1.0, daily=1000, reserve=0.0, margin_s=0.0, pace=0.0)
    gov = RateGovernor(lim, started_at=T0 - 10)
    gov.report("loc", 200, {"X-RateLimit-Max": "50", "X-RateLimit-Limit-Daily": "5000"}, T0)
    assert gov.reserve("loc", 10, T0).times == (T0,) * 10  # a higher announced limit changes nothing
    gov.report("loc", 200, {"X-RateLimit-Max": "4", "X-RateLimit-Limit-Daily": "30"}, T0)
    assert gov.reserve("other", 10, T0).times == (T0,) * 10  # per location
    assert gov.reserve("loc", 5, T0 + 1).times == (T0 + 1,) * 4 + (T0 + 2,)  # 4 per window now
    assert gov.status("loc", T0 + 1).day_limit == 30
    gov.report("loc", 429, {"X-RateLimit-Daily-Remaining": "0"}, T0 + 1)  # HighLevel's daily 429
    st_ = gov.status("loc", T0 + 1)
    assert st_.state == "waiting_for_daily_reset" and st_.eta == (T0 // 86_400 + 1) * 86_400


def test_one_process_prompt_answers_do_not_pull_the_margin_under_anothers_recent_peak() -> None:
    """The shared actor hears from many processes (review of issue 16): process A saw an answer 400 ms
    late; process B's prompt answers, leasing more often, must not lower the margin under A's peak while
    it is recent (two intervals), only after."""
    lim = Limits(burst=100, window_s=10.0, daily=10**7, reserve=0.0)
    gov = RateGovernor(lim, started_at=0.0)
    assert gov.observe_lateness("loc", 0.01, peak=0.4, now=100.0) == 0.4  # A
    for i in range(20):  # B, every half second
        assert gov.observe_lateness("loc", 0.01, peak=0.02, now=100.5 + i / 2) == 0.4
    for i in range(20):  # two intervals later A's peak has expired: B's answers bring it down
        margin = gov.observe_lateness("loc", 0.01, peak=0.02, now=100.0 + 2 * lim.interval + 1 + i)
    assert margin < 0.07
