"""Rehearsal on a synthetic practice: generate it, then prepare its source (audit + stage)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel, Field

from dos2hl.generate import GenerateParams
from flows.source import SourceParams, prepare_source
from tasks.source import generate_practice


class DemoParams(BaseModel):
    """Where to build the practice and how big and dirty it is."""

    out: str = Field("demo", description="Local folder for the practice and its run")
    practice: GenerateParams = GenerateParams(patients=2000, mess="typical")


@flow(name="demo-practice", flow_run_name="demo {params.out}", log_prints=True)
def demo_practice(params: DemoParams) -> dict[str, object]:
    out = Path(params.out)
    generate_practice(out / "practice", params.practice)
    return prepare_source(SourceParams(
        source=str(out / "practice" / "export"), run_dir=str(out / "run"), audit_dir=str(out / "run" / "audit"),
        export_date=params.practice.export_date, overwrite=True,
    ))
