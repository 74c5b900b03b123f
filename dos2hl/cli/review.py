"""``dos2hl map review``: a map's review page, served on this machine (``mapping/review_server.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import Dos2hlError

__all__ = ["review"]


def review(
    mapping: Annotated[Path, typer.Argument(help="The mapping.yaml to review (from `dos2hl map propose`).")],
    source: Annotated[Optional[str], typer.Option(
        "--source", help="The export folder, for the columns' masked value shapes (default: the one the map "
                         "was proposed from).")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    idle: Annotated[float, typer.Option("--idle-timeout", help="Stop after this many seconds without a "
                                        "request.")] = 1800.0,
) -> None:
    """Serve the review page on 127.0.0.1 (one-time token in the URL printed): every column's proposal with
    masked value shapes (never a value), change targets, types, PHI policy and value maps, see the fields
    HighLevel will get, and confirm as your name (the same hash and gates as `map confirm`)."""
    from ..mapping.model import load_mapping
    from ..mapping.review import pick_values, read_export
    from ..mapping.review_server import ReviewServer
    from ..provision.impact import schema_impact

    try:
        m = load_mapping(mapping)
        where = source or m.export.source
        if not where:
            raise typer.BadParameter("the map names no export: give --source EXPORT")
        shapes, cells = read_export(where, files=m.files.keys() | {e.file for e in m.fields})
        picks = pick_values(m, cells)
        del cells  # the sample stays in this function; only shapes and pick-list codes reach the page
        server = ReviewServer(mapping, shapes, picks, schema_impact, port=port, idle_s=idle)
    except Dos2hlError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    typer.echo(f"review page (this machine only; the link holds a one-time token): {server.url}")
    typer.echo("confirm on the page, or press Ctrl-C to stop without confirming")
    try:
        done = server.serve()
    except KeyboardInterrupt:
        done = None
    if done is None or done.confirmed is None:
        typer.echo(f"stopped; {mapping} is not confirmed by this session")
        raise typer.Exit(1)
    typer.echo(f"confirmed by {done.confirmed.by} at {done.confirmed.at.isoformat(timespec='seconds')} "
               f"(sha256 {done.confirmed.sha256[:12]}) -> {mapping}")
