"""Tasks of the source half: generate a practice, audit an export, stage it as Parquet shards."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import task

from dos2hl.api import stage_export
from dos2hl.audit import run_audit
from dos2hl.generate import GenerateParams, generate
from dos2hl.settings import Dos2hlSettings


@task(task_run_name="generate {out}")
def generate_practice(out: Path, params: GenerateParams) -> dict[str, object]:
    return generate(out, params)


@task(task_run_name="audit {source}", retries=2, retry_delay_seconds=[5, 30])
def audit_export(source: str, out: Path, profile: str, export_date: dt.date | None) -> dict[str, object]:
    return run_audit(source, out, profile=profile, s3=Dos2hlSettings().s3, export_date=export_date)


@task(task_run_name="stage {source} -> {to}", retries=2, retry_delay_seconds=[5, 30])
def stage_to_parquet(source: str, to: str, profile: str, shards: int | None,
                     export_date: dt.date | None, overwrite: bool = False) -> dict[str, object]:
    result = stage_export(source, to, profile=profile, shards=shards, export_date=export_date,
                          overwrite=overwrite)
    return result.manifest
