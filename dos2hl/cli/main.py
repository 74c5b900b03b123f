"""The ``dos2hl`` command. Every subcommand calls the library; nothing here holds logic."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .. import __version__
from ..errors import Dos2hlError
from ..progress import progress_reporter
from ..settings import Dos2hlSettings
from .alerts import alerts_app
from .auth import auth_app
from .common import (
    ExportDateOpt,
    JsonOpt,
    LocationsOpt,
    MappingOpt,
    ProfileOpt,
    TargetOpt,
    _fail,
    require_extra,
)
from .governor import governor_app
from .mapping import map_app
from .migrate import register as register_migrate
from .ops import register as register_ops
from .sandbox import sandbox_app

if TYPE_CHECKING:  # the CLI imports no Arrow for a command without it
    from ..sources.staged import FileStats

app = typer.Typer(
    name="dos2hl",
    help="Migrate a dental practice from Dent-O-Soft exports into HighLevel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(governor_app, name="governor")
app.add_typer(map_app, name="map")
app.add_typer(alerts_app, name="alerts")
app.add_typer(auth_app, name="auth")
log = logging.getLogger("dos2hl")


def _setup_logging() -> None:
    from ..logs import quiet_http_loggers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    quiet_http_loggers()  # request URLs (with their query strings) are never logged at INFO


@app.callback()
def main() -> None:
    """dos2hl: Dent-O-Soft -> HighLevel migrations with validation and rollback."""
    from ..memory import tune_allocators

    _setup_logging()
    tune_allocators()  # export-sized steps: freed memory goes back to the system (dos2hl/memory.py)


@app.command()
def version() -> None:
    """Print the dos2hl version."""
    typer.echo(__version__)


@app.command()
def generate(
    out: Annotated[Path,
                   typer.Argument(help="Folder to write the practice into (export/, truth/, "
                                       "manifest.json).")],
    tier: Annotated[str, typer.Option(help="Practice size: solo, group or dso.")] = "solo",
    patients: Annotated[Optional[int],
                        typer.Option(help="Total patient records (overrides the tier).")] = None,
    locations: Annotated[Optional[int],
                         typer.Option(help="Number of locations (overrides the tier).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical output.")] = 42,
    mess: Annotated[str, typer.Option(help="Defect profile: clean, typical or nasty.")] = "typical",
    format: Annotated[str,
                      typer.Option("--format", help="Export format: typical or softdent_like.")] = "typical",
    large_docs: Annotated[bool,
                          typer.Option("--large-docs", help="Include document files over 25 MB.")] = False,
    images: Annotated[str, typer.Option(help="Document files: none, stub or sized.")] = "stub",
    vendor_style: Annotated[Optional[list[str]], typer.Option(
        "--vendor-style", help="Also write the export the way another vendor shapes it, into "
                               "OUT/vendors/NAME/ with its ground truth OUT/vendors/NAME.truth.json (renamed "
                               "columns, a denormalised coverage file, a code-list column, a split patient "
                               "file): pascal_crm, snake_split, upper_terse, title_spaces, camel_holdout. "
                               "Repeatable; --mess clean is the fair test of map propose.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a synthetic Dent-O-Soft practice (obviously fake data) with its clean truth."""
    require_extra("generate")
    from ..generate import GenerateParams
    from ..generate import generate as run

    try:
        params = GenerateParams(seed=seed, tier=tier, patients=patients, locations=locations, mess=mess,
                                format=format, large_docs=large_docs, images=images)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from ..generate.vendors import STYLES

    unknown = sorted(set(vendor_style or ()) - set(STYLES))
    if unknown:
        typer.echo(f"error: unknown --vendor-style {', '.join(unknown)} (known: {', '.join(STYLES)})",
                   err=True)
        raise typer.Exit(2)
    with progress_reporter("generate") as report:
        summary = run(out, params, progress=report)
    if vendor_style:
        from ..generate.vendors import truth_json, write_style

        for name in vendor_style:
            truth = write_style(out / "export", out / "vendors" / name, STYLES[name])
            (out / "vendors" / f"{name}.truth.json").write_text(json.dumps(truth_json(truth), indent=1))
        summary["vendor_styles"] = list(vendor_style)
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        typer.echo(f"generated {summary['rows_total']:,} rows in {len(summary['files'])} files "
                   f"({summary['defects']:,} injected defects) into {out}")


@app.command()
def audit(
    source: Annotated[str, typer.Argument(help="Export folder or s3://bucket/prefix.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for audit.json and audit.md.")],
    profile: ProfileOpt = "reference",
    export_date: ExportDateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit an export: formats, row counts, columns, PHI classes, defects, orphans, duplicates."""
    from ..audit import run_audit

    settings = Dos2hlSettings()
    try:
        with progress_reporter("audit") as report:
            result = run_audit(source, out, profile=profile, s3=settings.s3,
                               export_date=export_date.date() if export_date else None, progress=report)
    except Dos2hlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps({"audit_json": str(out / "audit.json"), "audit_md": str(out / "audit.md"),
                               "identity": result["identity"], "balanced": result["balanced"]}))
    else:
        typer.echo(result["identity"])
        typer.echo(f"audit written to {out / 'audit.md'} and {out / 'audit.json'}")
    if not result["balanced"]:
        raise typer.Exit(1)


@app.command()
def stage(
    source: Annotated[str, typer.Argument(help="Export folder or s3://bucket/prefix.")],
    to: Annotated[str, typer.Option("--to", help="Staging folder or s3://bucket/prefix.")],
    profile: ProfileOpt = "reference",
    shards: Annotated[Optional[int],
                      typer.Option(help="Shards per location (default DOS2HL_SHARDS or 16).")] = None,
    kms_key_id: Annotated[Optional[str], typer.Option(help="SSE-KMS key id for s3:// writes.")] = None,
    export_date: ExportDateOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace what --to already holds.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read, validate and stage an export as Parquet shards (location x patient-hash shard)."""
    from ..api import stage_export

    settings = Dos2hlSettings()
    if kms_key_id:
        settings.s3.kms_key_id = kms_key_id
    try:
        with progress_reporter("stage") as report:
            result = stage_export(source, to, profile=profile, settings=settings, shards=shards,
                                  export_date=export_date.date() if export_date else None, progress=report,
                                  overwrite=overwrite)
    except Dos2hlError as exc:
        _fail(exc)
    t = result.totals
    if as_json:
        typer.echo(json.dumps({"uri": result.uri, "totals": t, "balanced": result.balanced,
                               "seconds": round(result.seconds, 3)}))
    else:
        for st in sorted(result.stats.values(), key=lambda s: s.file):
            typer.echo(f"  {st.identity()}" + _shaped_note(st))
        typer.echo(f"total: {result.manifest['identity']}")
        for st in result.stats.values():
            if st.error:
                typer.echo(f"  {st.error}", err=True)
            for w in st.warnings:
                typer.echo(f"  {st.file}: {w}", err=True)
        typer.echo(f"staged {t['records'] - t['quarantined']:,} records to {result.uri} in "
                   f"{result.seconds:.1f}s "
                   f"(manifest: {result.uri}/manifest.json)")
        if t["quarantined"]:
            typer.echo(f"{t['quarantined']:,} rows quarantined: `dos2hl quarantine {result.uri}` lists them "
                       f"by file "
                       "and line")
    if not result.balanced:
        raise typer.Exit(1)


@app.command()
def quarantine(
    staged: Annotated[str,
                      typer.Argument(help="A staging folder or s3:// URI (where stage wrote "
                                          "manifest.json).")],
    table: Annotated[Optional[str], typer.Option(help="Only this canonical table (e.g. patient).")] = None,
    as_csv: Annotated[bool,
                      typer.Option("--csv", help="Print CSV (file,line,record,table,code,reason).")] = False,
) -> None:
    """List quarantined rows by file and line, with the code and the fix (never the row's text)."""
    from .. import csvsafe
    from ..api import quarantined_rows

    try:
        rows = quarantined_rows(staged, s3=Dos2hlSettings().s3, table=table)
    except Dos2hlError as exc:
        _fail(exc)
    if as_csv:
        sys.stdout.write(csvsafe.line(["file", "line", "record", "table", "code", "reason"]))
        for r in rows:
            sys.stdout.write(csvsafe.line([r["file"], r["line"], r["record"], r["table"], r["code"],
                                           r["reason"]]))
        return
    for r in rows:
        typer.echo(f"{r['file']}:{r['line']} (record {r['record']}) {r['code']}: {r['reason']}")
    typer.echo(f"{len(rows)} quarantined rows")


@app.command()
def demo(
    out: Annotated[Path,
                   typer.Option(help="Folder for the demo practice, sandbox state and runs.")] = Path("demo"),
    patients: Annotated[int, typer.Option(help="Patient records in the generated practice.")] = 150,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    executor: Annotated[str, typer.Option(help="'threads' or 'ray' (local).")] = "threads",
) -> None:
    """The whole chain on a generated practice against the sandbox (no Prefect; `make demo` adds it)."""
    require_extra("sandbox", "generate")
    from ..demo import run_demo

    try:
        summary = run_demo(out, patients=patients, seed=seed, executor=executor)
    except Dos2hlError as exc:
        _fail(exc)
    for line in summary["lines"]:
        typer.echo(line)


@app.command()
def providers(
    source: Annotated[str, typer.Argument(help="Export folder or s3://bucket/prefix.")],
    locations: LocationsOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder for providers.csv and providers.md.")],
    target: TargetOpt = None,
    profile: ProfileOpt = "reference",
    export_date: ExportDateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Match every provider to a HighLevel user by email; report the unmatched with their patient counts."""
    from ..governor import open_governor
    from ..locations import load_locations
    from ..providers import resolve_providers

    settings = Dos2hlSettings()
    try:
        lf = load_locations(locations, target=target)
        report = resolve_providers(source, lf, settings=settings, profile=profile,
                                   permits=open_governor(settings),
                                   export_date=export_date.date() if export_date else None)
    except Dos2hlError as exc:
        _fail(exc)
    csv_path, md_path = report.write(out)
    s = report.summary()
    if as_json:
        typer.echo(json.dumps({"csv": str(csv_path), "markdown": str(md_path), **s}))
    else:
        typer.echo(f"{s['providers']} providers: {s['email']} matched by email, {s['fallback']} to the "
                   f"fallback "
                   f"owner, {s['none']} unmatched ({s['unmatched_in_use']} with patients or appointments)")
        typer.echo(f"report: {md_path} and {csv_path}")
    if report.unmatched:
        typer.echo("some records would land without an owner: a migration will refuse to start (see the "
                   "report for the fix)", err=True)
        raise typer.Exit(1)


@app.command()
def provision(
    mapping: MappingOpt,
    locations: LocationsOpt,
    target: TargetOpt = None,
    source: Annotated[Optional[str], typer.Option("--source", help="The export: pick-list options from its "
                                                  "LOOKUP/PROCCODE/RECALLTYP, fields from USERFLD (default: "
                                                  "the export the map was proposed from).")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Only show what would change (the default).")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Create what is missing (idempotent).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Plan (or --apply) the map's custom objects, fields, associations and tags in every location."""
    from ..governor import open_governor
    from ..locations import load_locations
    from ..mapping.model import load_mapping, require_confirmed
    from ..provision import provision as run

    if plan and apply:
        typer.echo("error: --plan and --apply exclude each other", err=True)
        raise typer.Exit(2)
    settings = Dos2hlSettings()
    try:
        fmap = require_confirmed(mapping) if apply else load_mapping(mapping)  # writes need a confirmed map
        lf = load_locations(locations, target=target)
        plans = run(fmap, lf, source=source, apply=apply, permits=open_governor(settings), settings=settings,
                    ledger=settings.storage)  # the provision ledger: which fields dos2hl created
    except Dos2hlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps({loc: p.to_dict() for loc, p in plans.items()}))
    else:
        for loc, p in plans.items():
            typer.echo(f"# location {loc}")
            typer.echo(p.render())
    if any(p.conflicts() for p in plans.values()):
        raise typer.Exit(1)


register_migrate(app)  # migrate, retry, rollback (migrate.py)
register_ops(app)  # plan, workflows, phi, delta (ops.py)

if __name__ == "__main__":  # pragma: no cover
    app()


def _shaped_note(st: FileStats) -> str:
    """What a file gave besides its own records: rows of other tables, records joined into another's."""
    notes = []
    if st.derived:
        per = ", ".join(f"{t} {n}" for t, n in sorted(st.derived_tables.items()) if n)
        notes.append(f"+{st.derived} derived rows" + (f": {per}" if per else ""))
    if st.derived_quarantined:
        notes.append(f"{st.derived_quarantined} derived rows quarantined")
    if st.joined:
        notes.append(f"{st.joined} joined into another file's rows")
    return f" ({'; '.join(notes)})" if notes else ""

