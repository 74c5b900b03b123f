"""The Ray pool survives a lost worker (issue 16): a shard whose actor dies mid-task goes back to the front
of its location's queue and runs again on a new actor; the replacements are bounded. On a local Ray (one
node): the worker's process ends itself half-way through the shard, as a killed node's workers do."""

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


def _setup(tmp_path: Path, shards: list[int]) -> tuple[list[ShardSpec], Any, Any]:
    from dos2hl.locations import load_locations
    from dos2hl.settings import Dos2hlSettings

    path = tmp_path / "locations.yaml"
    path.write_text(yaml.safe_dump({"target": "http://127.0.0.1:9", "locations": [
        {"source": loc, "location_id": f"id-{loc}", "token_env": "DOS2HL_TEST_TOKEN_POOL"}
        for loc in ("L001", "L002")]}))
    settings = Dos2hlSettings(storage=str(tmp_path / "runs"))
    settings = settings.model_copy(update={"governor": settings.governor.model_copy(update={"name": NAME})})
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    specs = [ShardSpec("r", str(run), str(run / "staged"), {"fields": []}, loc, shard, {})
             for loc in ("L001", "L002") for shard in shards]
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
