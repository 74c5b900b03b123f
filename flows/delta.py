"""The delta flow: a new export since a run -> new rows created, changed rows updated in place
(before-images kept), rows deleted in the source tagged and reported. Scheduled nightly per location
(prefect.yaml: cron 02:00 in the practice's zone, one run at a time per location)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from dos2hl.memory import tune_allocators
from dos2hl.params import DeltaParams
from dos2hl.pipeline import DeltaReport, delta_step, open_env
from flows.progress import flow_sinks, read_report
from tasks.migrate import as_task

__all__ = ["DeltaParams", "delta_flow"]


@flow(name="delta", flow_run_name="delta {params.source}", log_prints=True)
def delta_flow(params: DeltaParams) -> dict[str, Any]:
    tune_allocators()  # the export-sized steps run in this process (dos2hl/memory.py)
    with open_env(params) as env:
        env.progress = flow_sinks("delta-progress")
        out: DeltaReport = as_task(delta_step, env, params)
    get_run_logger().info("delta %s since %s: %s", out.run_id, out.delta.since, out.status)
    md = read_report(out.report)
    create_markdown_artifact(key="delta-report", markdown=md, description="Delta: changes and counts")
    return out.to_dict()
