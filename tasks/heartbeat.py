"""A ``dos2hl.progress`` event each time a pipeline step of a flow run finishes: the heartbeat of the
"run without progress" alert (dos2hl/alerts.py). The event's resource is the flow run; Prefect's events
worker adds the flow (and deployment) as related resources from the run context. Its payload names the
step only (ids and counts, never a record's value)."""

from __future__ import annotations

from prefect.context import FlowRunContext
from prefect.events import emit_event

__all__ = ["PROGRESS_EVENT", "progressed"]

PROGRESS_EVENT = "dos2hl.progress"  # the name dos2hl/alerts.py expects


def progressed(step: str) -> None:
    """Emit ``dos2hl.progress`` for the current flow run; outside a flow run (the CLI), nothing."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    emit_event(PROGRESS_EVENT, resource={"prefect.resource.id": f"prefect.flow-run.{ctx.flow_run.id}"},
               payload={"step": step})
