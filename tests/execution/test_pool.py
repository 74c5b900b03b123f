"""The Ray pool (issue 16) writes every location at once, and survives a lost worker. A worker runs
several shards at once on threads, so fewer workers than locations still keep every location busy. A
shard whose actor dies mid-task goes back to the front of its location's queue and runs again on a new
actor, as does every other shard that actor was running; the replacements are bounded. On a local Ray
(one node): the worker's process ends itself half-way through the shard, as a killed node's workers do."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

for _k, _v in {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "RAY_USAGE_STATS_ENABLED": "0"}.items():
    os.environ.setdefault(_k, _v)

import ray  # noqa: E402
from ray.exceptions import RayActorError  # noqa: E402

from dos2hl.planning.plan import ShardSpec  # noqa: E402

NAME = f"gov-pool-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    if ray.is_initialized():
        ray.shutdown()
    os.environ["DOS2HL_TEST_TOKEN_POOL"] = "pool-token"  # the workers' environment (token_env)
    t0 = time.perf_counter()
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False, namespace="dos2hl")
    print(f"\nray.init: {time.perf_counter() - t0:.1f} s")
    try:
        yield
    finally:
        from dos2hl.governor.actor import connect, kill

        kill(connect(name=NAME))
        ray.shutdown()


def _dies_once(spec: ShardSpec, client: Any) -> dict[str, Any]:
    """Shard 1's first attempt: its worker process ends half-way (a marker file says it did); shard 9's
    worker ends every time."""
    mark = Path(spec.run_uri) / f"died-{spec.location}-{spec.shard}"
    if spec.shard == 9 or (spec.shard == 1 and not mark.exists()):
        mark.touch()
        os._exit(1)
    return {"location": spec.location, "shard": spec.shard, "pid": os.getpid()}


def _together(spec: ShardSpec, client: Any) -> dict[str, Any]:
    """Says it started, then waits (up to 20 s) until every location's first shard has started too: they
    all meet only if they run at the same time."""
    run = Path(spec.run_uri)
    (run / f"started-{spec.location}-{spec.shard}").touch()
    want = int((run / "together").read_text())
    deadline = time.monotonic() + 20
    while len(list(run.glob("started-*"))) < want and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"location": spec.location, "shard": spec.shard, "pid": os.getpid(),
            "met": len(list(run.glob("started-*"))) >= want, "client": id(client)}


def _two_die(spec: ShardSpec, client: Any) -> dict[str, Any]:
    """Both shards 0 start on one worker; once both run, the worker's process ends (first attempt only)."""
    run = Path(spec.run_uri)
    mark = run / "died"
    if not mark.exists():
        (run / f"started-{spec.location}-{spec.shard}").touch()
        deadline = time.monotonic() + 20
        while len(list(run.glob("started-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        if spec.location == "L001":
            mark.touch()
            os._exit(1)
        time.sleep(30)  # L002's shard is still running when its worker dies
    return {"location": spec.location, "shard": spec.shard, "pid": os.getpid()}


def _setup(tmp_path: Path, shards: list[int], locs: tuple[str, ...] = ("L001", "L002"),
           ) -> tuple[list[ShardSpec], Any, Any]:
    from dos2hl.locations import load_locations
    from dos2hl.settings import Dos2hlSettings

    path = tmp_path / "locations.yaml"
    path.write_text(yaml.safe_dump({"target": "http://127.0.0.1:9", "locations": [
        {"source": loc, "location_id": f"id-{loc}", "token_env": "DOS2HL_TEST_TOKEN_POOL"}
        for loc in locs]}))
    settings = Dos2hlSettings(storage=str(tmp_path / "runs"))
    settings = settings.model_copy(update={"governor": settings.governor.model_copy(update={"name": NAME})})
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    specs = [ShardSpec("r", str(run), str(run / "staged"), {"fields": []}, loc, shard, {})
             for loc in locs for shard in shards]
    return specs, load_locations(path), settings


def test_a_shard_whose_worker_dies_runs_again_on_a_new_worker(local_ray: None, tmp_path: Path) -> None:
    from dos2hl.execution.pool import run_on_ray

    specs, lf, settings = _setup(tmp_path, [0, 1])
    specs = specs[:3]  # L001/0, L001/1 (its worker dies once), L002/0
    t0 = time.perf_counter()
    out = run_on_ray(specs, _dies_once, lf, settings, workers=2)
    print(f"pool with a lost worker: {time.perf_counter() - t0:.1f} s")
    assert [(r["location"], r["shard"]) for r in out] == [(s.location, s.shard) for s in specs]
    assert {(r["location"], r["shard"]): r["retried"] for r in out} == {
        ("L001", 0): 0, ("L001", 1): 1, ("L002", 0): 0}
    node = ray.get_runtime_context().get_node_id()
    assert {r["node"] for r in out} == {node}  # each result names the node it ran on
    assert (tmp_path / "runs" / "r" / "died-L001-1").exists()  # the first attempt did die half-way


def test_the_replacements_are_bounded(local_ray: None, tmp_path: Path) -> None:
    from dos2hl.execution.pool import run_on_ray

    specs, lf, settings = _setup(tmp_path, [9])  # its worker dies every time
    with pytest.raises(RayActorError):
        run_on_ray(specs[:1], _dies_once, lf, settings, workers=1, replacements=0)
    assert (tmp_path / "runs" / "r" / "died-L001-9").exists()


def test_one_worker_writes_every_location_at_once(local_ray: None, tmp_path: Path) -> None:
    """Five locations, two workers: each worker runs three shards at once (threads_per_worker), so all
    five locations' shards run at the same time; each shard thread has a client of its own."""
    from dos2hl.execution.pool import run_on_ray
    from dos2hl.execution.schedule import threads_per_worker

    locs = tuple(f"L00{n}" for n in range(1, 6))
    specs, lf, settings = _setup(tmp_path, [0], locs)
    (tmp_path / "runs" / "r" / "together").write_text("5")
    assert threads_per_worker(5, 2) == 3
    out = run_on_ray(specs, _together, lf, settings, workers=2)
    assert [r["location"] for r in out] == list(locs)
    assert all(r["met"] for r in out)  # with one shard per worker at a time they never all meet
    assert len({r["pid"] for r in out}) == 2
    assert len({(r["pid"], r["client"]) for r in out}) == 5


def test_every_shard_a_lost_worker_was_running_runs_again(local_ray: None, tmp_path: Path) -> None:
    """One worker runs both locations' shards at once and dies: both shards run again on its one
    replacement (one replacement, not one per shard)."""
    from dos2hl.execution.pool import run_on_ray

    specs, lf, settings = _setup(tmp_path, [0])
    out = run_on_ray(specs, _two_die, lf, settings, workers=1, threads=2, replacements=1)
    assert [(r["location"], r["retried"]) for r in out] == [("L001", 1), ("L002", 1)]
    assert (tmp_path / "runs" / "r" / "died").exists()


def _pauses(spec: ShardSpec, client: Any) -> dict[str, Any]:
    """L001's first shard says its location paused (issue 17); every other shard is done."""
    first = (spec.location, spec.shard) == ("L001", 0)
    paused = "HighLevel answered 401 (token) on POST /contacts/" if first else ""
    return {"location": spec.location, "shard": spec.shard, "paused": paused}


def test_a_paused_location_gets_no_more_shards_from_the_pool(local_ray: None, tmp_path: Path) -> None:
    """Issue 17 on Ray: once a shard of L001 pauses it, L001's shards not yet handed out never run (their
    result is ``skipped``'s); every shard of L002 does."""
    from dos2hl.execution.pool import run_on_ray

    specs, lf, settings = _setup(tmp_path, [0, 1, 2])
    ended: list[tuple[str, int, bool]] = []  # on_done, in this process: once per shard, skipped ones too
    out = run_on_ray(specs, _pauses, lf, settings, workers=1, threads=1, stop=lambda r: bool(r["paused"]),
                     skipped=lambda spec, by: {"location": spec.location, "shard": spec.shard,
                                               "paused": by["paused"], "skipped": True},
                     on_done=lambda spec, r: ended.append((spec.location, spec.shard,
                                                           bool(r.get("skipped")))))
    assert sorted(ended) == sorted((r["location"], r["shard"], bool(r.get("skipped"))) for r in out)
    assert len(ended) == len(specs)
    by = {(r["location"], r["shard"]): r for r in out}
    assert by[("L001", 0)]["paused"] and not by[("L001", 0)].get("skipped")
    assert by[("L001", 1)]["skipped"] and by[("L001", 2)]["skipped"]
    assert all(not by[("L002", n)]["paused"] and not by[("L002", n)].get("skipped") for n in range(3))
