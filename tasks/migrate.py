"""The pipelines' steps as Prefect tasks (migration, delta, rollback): each is the library's step
(``dos2hl.pipeline``) made a task, and ``as_task`` is the runner the flow hands to ``run_migration``.
Arguments are quoted: Prefect neither walks the run's env (clients, the governor handle) nor the map for
futures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from dos2hl import pipeline as p

__all__ = ["TASKS", "as_task"]

TASKS: dict[Callable[..., Any], Any] = {
    p.prepare_step: task(p.prepare_step, name="prepare", task_run_name="prepare run", cache_policy=NO_CACHE),
    p.write_step: task(p.write_step, name="write", task_run_name="write {phase}", retries=1,
                       retry_delay_seconds=[30], cache_policy=NO_CACHE),
    p.verify_step: task(p.verify_step, name="verify", task_run_name="verify {result.phase}",
                        cache_policy=NO_CACHE),
    p.bulk_step: task(p.bulk_step, name="bulk", task_run_name="bulk CSV path", cache_policy=NO_CACHE),
    p.report_step: task(p.report_step, name="report", task_run_name="report {prepared.run_id} {where}",
                        cache_policy=NO_CACHE),
    p.delta_step: task(p.delta_step, name="delta", task_run_name="delta since {params.since_run}",
                       cache_policy=NO_CACHE),
    p.rollback_step: task(p.rollback_step, name="rollback", task_run_name="roll back {params.run_id}",
                          cache_policy=NO_CACHE),
}


def as_task(step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a pipeline step as its task (in the flow run, one task run each)."""
    return TASKS[step](*(quote(a) for a in args), **{k: quote(v) for k, v in kwargs.items()})
