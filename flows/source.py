"""Prepare a practice's source: audit the export, then stage it as Parquet shards.

The first steps of the migration flow (issue 6 adds map, provision, sample, run, verify).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from dos2hl.memory import tune_allocators
from dos2hl.staging import require_balanced
from tasks.source import audit_export, stage_to_parquet


class SourceParams(BaseModel):
    """Where the export is and where the run's staged data goes."""

    source: str = Field(description="Export folder or s3://bucket/prefix")
    run_dir: str = Field(description="Run folder or s3://bucket/prefix (staged/ is written under it)")
    audit_dir: str = Field("audit", description="Local folder for audit.json / audit.md")
    profile: str = Field("reference", description="Export profile, or the confirmed field map "
                         "(mapping.yaml): it reads list columns, files feeding several tables and tables "
                         "split over files")
    shards: int | None = None
    export_date: dt.date | None = None
    overwrite: bool = False


@flow(name="prepare-source", flow_run_name="prepare {params.source}", log_prints=True)
def prepare_source(params: SourceParams) -> dict[str, object]:
    tune_allocators()  # the export-sized steps run in this process (dos2hl/memory.py)
    audit = audit_export(params.source, Path(params.audit_dir), params.profile, params.export_date)
    manifest = stage_to_parquet(params.source, f"{params.run_dir.rstrip('/')}/staged", params.profile,
                                params.shards, params.export_date, params.overwrite)
    create_markdown_artifact(
        key="source-audit",
        markdown=f"**Audit**: {audit['identity']}\n\n**Staged**: {manifest['identity']}",
        description="Source audit and staging identity",
    )
    # A staging that does not balance (a file not read to its end, or refused) stops the flow here, red.
    require_balanced(manifest, f"{params.run_dir.rstrip('/')}/staged")
    return {"audit": audit["identity"], "staged": manifest["identity"], "balanced": manifest["balanced"]}
