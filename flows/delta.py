"""The delta flow: a new export since a run -> new rows created, changed rows updated in place
(before-images kept), rows deleted in the source tagged and reported. Scheduled nightly per location
(prefect.yaml: cron 02:00 in the practice's zone, one run at a time per location)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from tasks.delta import delta_run


class DeltaParams(BaseModel):
    source: str = Field(description="The new export (folder or s3://bucket/prefix)")
    since_run: str = Field(description="The run (migration or delta) this one follows; 'latest': the newest "
                                       "completed run of the storage")
    mapping: str = Field(description="The confirmed mapping.yaml")
    locations: str = Field(description="locations.yaml")
    target: str | None = None
    storage: str | None = None
    deleted: Literal["tag", "delete"] = Field("tag", description="Rows deleted in the source: tag or delete")
    export_date: dt.date | None = None


@flow(name="delta", flow_run_name="delta {params.source}", log_prints=True)
def delta_flow(params: DeltaParams) -> dict:
    log = get_run_logger()
    out = delta_run(params.model_dump())
    log.info("delta %s since %s: %s", out["run_id"], out["delta"]["since"], out["status"])
    from pathlib import Path

    md = Path(out["report"]).read_text() if "://" not in out["report"] else f"Report: {out['report']}"
    create_markdown_artifact(key="delta-report", markdown=md, description="Delta: changes and counts")
    return out
