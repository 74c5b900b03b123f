"""``dos2hl map propose|confirm|show``: the field map on the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import Dos2hlError

map_app = typer.Typer(help="The field map: propose it from an export, review it, confirm it.",
                      no_args_is_help=True, add_completion=False)


def _fail(exc: Dos2hlError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


@map_app.command()
def propose(
    source: Annotated[str, typer.Argument(help="Export folder (any vendor's file and column names).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write mapping.yaml.")] = Path("mapping.yaml"),
    profile: Annotated[str, typer.Option(help="Base layout (encoding, dates, quoting): reference, "
                                              "softdent_like or a profile YAML.")] = "reference",
    force: Annotated[bool,
                     typer.Option("--force", help="Replace an existing (possibly confirmed) file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    location: Annotated[Optional[str], typer.Option(
        "--location", help="The office code of a single-office export (its files carry no location "
                           "column): every row is this office's (export.location in the map; default "
                           "L001). Ignored when the export names each row's office.")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Also ask this OpenAI-compatible chat endpoint (base URL, e.g. "
                        "https://api.openai.com/v1 or http://127.0.0.1:11434/v1): it sees file and column "
                        "names and masked value shapes, never a value. Offline stays the fallback.")] = None,
    model_name: Annotated[str, typer.Option("--model-name", help="The model to ask.")] = "gpt-4o-mini",
    model_key_env: Annotated[str, typer.Option(
        "--model-key-env", help="Environment variable holding the endpoint's API key (unset: no key sent).")
    ] = "DOS2HL_MODEL_API_KEY",
    model_cache: Annotated[Optional[Path], typer.Option(
        "--model-cache", help="Answers cached by the prompt's sha256 (default ~/.cache/dos2hl/model).")
    ] = None,
    model_timeout: Annotated[float, typer.Option("--model-timeout", min=1.0,
                                                 help="Seconds per model request.")] = 60.0,
) -> None:
    """Propose a target for every column of every file (offline: no row value leaves this machine;
    with --model, a model is asked too and its answers merged: see README "A model-backed proposal")."""
    from ..mapping.model import save_mapping
    from ..mapping.propose import propose as run

    if out.exists() and not force:
        typer.echo(f"error: {out} exists (it may hold a confirmed map): use --force to replace it", err=True)
        raise typer.Exit(2)
    stats = None
    try:
        mapping = run(source, profile=profile, location=location)
        if model:
            from ..mapping.model_proposer import DEFAULT_CACHE, ModelOptions, candidates, refine

            opts = ModelOptions(url=model, model=model_name, key_env=model_key_env,
                                cache_dir=model_cache or DEFAULT_CACHE, timeout=model_timeout)
            mapping, stats = refine(mapping, source, opts, alternatives=candidates(source))
    except Dos2hlError as exc:
        _fail(exc)
    save_mapping(mapping, out)
    low = [e for e in mapping.fields if e.confidence < 0.8]
    summary = {"mapping": str(out), "files": len(mapping.files), "fields": len(mapping.fields),
               "to_review": len(low), "skipped": sum(e.target == "skip" for e in mapping.fields),
               "location": mapping.export.location,
               **({"model": stats.as_dict()} if stats else {})}
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"proposed {summary['fields']} columns of {summary['files']} files -> {out}")
    if stats:
        typer.echo(stats.describe())
    if mapping.export.location:
        typer.echo(f"  single office: no file carries a location column, so every row is office "
                   f"{mapping.export.location} (export.location; choose with --location CODE, then map it "
                   "to a sub-account in locations.yaml)")
        if "location" in mapping.files.values():
            typer.echo("  the export has a location file: check the code is one of its offices (stage warns "
                       "when it is not)")
    elif location:
        typer.echo("  --location ignored: the export names each row's office in a location column")
    for e in low[:20]:
        typer.echo(f"  review: {e.source} -> {e.target} (confidence {e.confidence:.2f})")
    if len(low) > 20:
        typer.echo(f"  ... and {len(low) - 20} more below 0.80")
    typer.echo(f"next: review {out}, then: dos2hl map confirm {out} --by \"Your Name\"")


@map_app.command()
def confirm(
    mapping: Annotated[Path, typer.Argument(help="The mapping.yaml to confirm.")],
    by: Annotated[Optional[str],
                  typer.Option("--by", help="Who confirms (asked on a terminal if omitted).")] = None,
) -> None:
    """Record who confirmed the map, when, and its content hash; any later edit voids it."""
    from ..mapping.model import load_mapping, save_mapping

    try:
        m = load_mapping(mapping)
    except Dos2hlError as exc:
        _fail(exc)
    if not by:
        if not sys.stdin.isatty():
            typer.echo("error: --by NAME is required when not on a terminal", err=True)
            raise typer.Exit(2)
        by = typer.prompt("Your name (recorded as the person who confirmed this map)")
    skipped = sum(e.target == "skip" for e in m.fields)
    done = m.confirm(by.strip())
    save_mapping(done, mapping)
    assert done.confirmed is not None
    typer.echo(f"confirmed by {done.confirmed.by} at {done.confirmed.at.isoformat(timespec='seconds')} "
               f"(sha256 {done.confirmed.sha256[:12]}): {len(m.fields)} columns, {skipped} not migrated")


@map_app.command()
def check(mapping: Annotated[Path, typer.Argument(help="The mapping.yaml to check.")]) -> None:
    """Exit 0 when the map is confirmed and unchanged since; else say what to do (exit 2)."""
    from ..mapping.model import require_confirmed

    try:
        m = require_confirmed(mapping)
    except Dos2hlError as exc:
        _fail(exc)
    assert m.confirmed is not None
    typer.echo(f"{mapping}: confirmed by {m.confirmed.by} at {m.confirmed.at.isoformat(timespec='seconds')}")



from .review import review as _review  # noqa: E402 - its own module (the review page)

map_app.command("review")(_review)
