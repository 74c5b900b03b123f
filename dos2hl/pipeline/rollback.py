"""Rollback as a step: undo a run (migration, sample or delta) from its ledger: updates restored from
their before-images, then what it created deleted, children first. A second rollback sends nothing."""

from __future__ import annotations

from ..execution.progress import ProgressTracker, mark_reported, ticking
from ..params import RollbackParams
from ..writing.rollback import rollback
from .env import RunEnv
from .results import RollbackResult

__all__ = ["rollback_step"]


def rollback_step(env: RunEnv, params: RollbackParams) -> RollbackResult:
    """Undo the run; its deletions are progress like a write phase's (``env.progress``'s sinks, and the
    run's progress.json while it goes: ``dos2hl status`` shows a rollback in flight)."""
    run_uri, settings = env.run_uri(params.run_id), env.settings
    tracker = ProgressTracker(params.run_id, run_uri, "rollback", totals={}, location_ids={},
                              settings=settings, sinks=env.progress, verb="deleted", state="waiting")
    with ticking(tracker, settings.progress_every_s):
        out = rollback(run_uri, params.run_id, env.writes, location=params.location,
                       phi_key_file=settings.phi_key_file, watcher=tracker)
        if tracker.state == "running":  # something was to delete: the display's last word, then the report's
            for loc in tracker.units:
                tracker.add(loc, {}, unit_done=True)
            tracker.finish("completed" if out["status"] == "rolled back" else "failed")
            mark_reported(run_uri, settings.s3)
    return RollbackResult.model_validate(out)
