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
from tasks.heartbeat import progressed

__all__ = ["TASKS", "as_task"]


def _task(step: Callable[..., Any], name: str, run_name: str, **options: Any) -> Any:
    return task(name=name, task_run_name=run_name, cache_policy=NO_CACHE, **options)(step)


TASKS: dict[Callable[..., Any], Any] = {
    p.prepare_step: _task(p.prepare_step, "prepare", "prepare run"),
    p.write_step: _task(p.write_step, "write", "write {phase}", retries=1, retry_delay_seconds=[30]),
    p.verify_step: _task(p.verify_step, "verify", "verify {result.phase}"),
    p.bulk_step: _task(p.bulk_step, "bulk", "bulk CSV path"),
    p.report_step: _task(p.report_step, "report", "report {prepared.run_id} {where}"),
    p.delta_step: _task(p.delta_step, "delta", "delta since {params.since_run}"),
    p.rollback_step: _task(p.rollback_step, "rollback", "roll back {params.run_id}"),
}


def as_task(step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a pipeline step as its task (in the flow run, one task run each); a finished step is progress
    (a ``dos2hl.progress`` event: tasks/heartbeat.py)."""
    result = TASKS[step](*(quote(a) for a in args), **{k: quote(v) for k, v in kwargs.items()})
    progressed(step.__name__)
    return result
