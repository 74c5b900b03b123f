"""The delta flow's task: one library call (dos2hl.migrate.delta.run_delta)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE


@task(task_run_name="delta since {params[since_run]}", cache_policy=NO_CACHE)
def delta_run(params: dict[str, Any]) -> dict[str, Any]:
    from dos2hl.migrate.delta import DeltaOptions, latest_run, run_delta

    opts = DeltaOptions(**params)
    if opts.since_run == "latest":
        opts.since_run = latest_run(opts.storage)
    return run_delta(opts)
