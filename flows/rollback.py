"""The rollback flow: undo a run (migration, sample or delta) from its ledger: updates restored from
their before-images, then what it created deleted, children first; a second run sends nothing."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from tasks.migrate import rollback_run


class RollbackParams(BaseModel):
    run_id: str = Field(description="The run to undo")
    locations: str = Field(description="locations.yaml")
    target: str | None = None
    storage: str | None = None


@flow(name="rollback", flow_run_name="rollback {params.run_id}", log_prints=True)
def rollback_flow(params: RollbackParams) -> dict:
    out = rollback_run(params.run_id, params.locations, params.target, params.storage)
    get_run_logger().info("rollback %s: %s (deleted %s, restored %s)", params.run_id, out["status"],
                          out["deleted"], out.get("restored", {}))
    if out["not_undone"]:
        raise RuntimeError(f"{len(out['not_undone'])} operations of run {params.run_id} could not be undone: "
                           "see the flow's return value")
    if out.get("unreadable_ledger_files"):
        raise RuntimeError(f"run {params.run_id}: ledger files could not be read (skipped): "
                           f"{', '.join(out['unreadable_ledger_files'])}")
    return out
