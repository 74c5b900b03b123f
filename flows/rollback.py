"""The rollback flow: undo a run (migration, sample or delta) from its ledger: updates restored from
their before-images, then what it created deleted, children first; a second run sends nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect import flow, get_run_logger

from dos2hl.params import RollbackParams
from dos2hl.pipeline import RollbackResult, open_env, rollback_step
from flows.progress import flow_sinks
from tasks.migrate import as_task

__all__ = ["RollbackParams", "rollback_flow"]


@flow(name="rollback", flow_run_name="rollback {params.run_id}", log_prints=True)
def rollback_flow(params: RollbackParams) -> dict[str, Any]:
    with open_env(params) as env:
        env.progress = flow_sinks("rollback-progress")  # the deletions as a progress and a counts artifact
        out: RollbackResult = as_task(rollback_step, env, params)
    get_run_logger().info("rollback %s: %s (deleted %s, restored %s)", params.run_id, out.status,
                          out.deleted, out.restored)
    if out.not_undone:
        what = Counter(f"{f.location}/{f.object} ({f.error_class})" for f in out.not_undone)
        raise RuntimeError(f"{len(out.not_undone)} operations of run {params.run_id} could not be undone "
                           f"(a second rollback tries them again): {dict(what)}")
    if out.unreadable_ledger_files:
        raise RuntimeError(f"run {params.run_id}: ledger files could not be read (skipped): "
                           f"{', '.join(out.unreadable_ledger_files)}")
    return out.model_dump(mode="json")
