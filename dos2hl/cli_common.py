"""What the CLI modules share: option types and the error exit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import Dos2hlError

__all__ = ["ExportDateOpt", "JsonOpt", "LocationsOpt", "ProfileOpt", "TargetOpt", "_fail"]

ProfileOpt = Annotated[str, typer.Option("--profile", help="Export profile: 'reference', 'softdent_like' or a YAML file.")]
ExportDateOpt = Annotated[
    Optional[dt.datetime],
    typer.Option("--export-date", formats=["%Y-%m-%d"],
                 help="Date the export was taken (two-digit years are read against it); default: banner date or today."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
LocationsOpt = Annotated[Path, typer.Option("--locations", help="locations.yaml: source location -> sub-account.")]
TargetOpt = Annotated[Optional[str], typer.Option("--target", help="HighLevel base URL (overrides locations.yaml).")]


def _fail(exc: Dos2hlError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)
