"""What the CLI modules share: option types and the error exit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from ..errors import Dos2hlError

__all__ = ["ExportDateOpt", "JsonOpt", "LocationsOpt", "MappingOpt", "ProfileOpt", "StorageOpt", "TargetOpt",
           "_fail", "params_or_exit", "require_extra"]

ProfileOpt = Annotated[str,
                       typer.Option("--profile",
                                    help="Export profile: 'reference', 'softdent_like', a profile YAML "
                                         "file, or a field map (mapping.yaml): its file and column names, "
                                         "list columns, files feeding several tables, tables split over "
                                         "files.")]
ExportDateOpt = Annotated[
    Optional[dt.datetime],
    typer.Option("--export-date", formats=["%Y-%m-%d"],
                 help="Date the export was taken (two-digit years are read against it); default: banner date "
                      "or today."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
LocationsOpt = Annotated[Path,
                         typer.Option("--locations", help="locations.yaml: source location -> sub-account.")]
MappingOpt = Annotated[Path, typer.Option("--mapping", help="The confirmed mapping.yaml.")]
StorageOpt = Annotated[Optional[str],
                       typer.Option("--storage", help="Runs root (default DOS2HL_STORAGE).")]
TargetOpt = Annotated[Optional[str],
                      typer.Option("--target", help="HighLevel base URL (overrides locations.yaml).")]


def _fail(exc: Dos2hlError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


P = TypeVar("P", bound=BaseModel)


def params_or_exit(model: type[P], **values: Any) -> P:
    """The pipeline's parameter model from the command's options; an invalid one is a usage error
    naming the option (exit 2), never a traceback."""
    try:
        return model(**values)
    except ValidationError as exc:
        for e in exc.errors():
            name = "--" + "-".join(str(x) for x in e["loc"]).replace("_", "-")
            typer.echo(f"error: {name}: {e['msg']}", err=True)
        raise typer.Exit(2) from None


#: The rehearsal tools' extras (pyproject.toml) and a module each needs.
EXTRAS = {"sandbox": ("openapi_core", "starlette", "uvicorn"), "generate": ("faker",)}


def require_extra(*extras: str) -> None:
    """A command of a rehearsal tool on an install without its extra: say which, exit 2."""
    import importlib

    for extra in extras:
        for module in EXTRAS[extra]:
            try:
                importlib.import_module(module)
            except ImportError:
                typer.echo(f"error: this command needs dos2hl's '{extra}' extra (a rehearsal tool, not "
                           f"installed "
                           f"with the migration itself): pip install 'dos2hl[{extra}]'", err=True)
                raise typer.Exit(2) from None

