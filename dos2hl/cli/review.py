"""``dos2hl map review``: a map's review page, served on this machine (``mapping/review_server.py``)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import Dos2hlError

if TYPE_CHECKING:
    from ..mapping.model import Mapping

__all__ = ["plan_totals", "request_plan", "review"]


def review(
    mapping: Annotated[Path, typer.Argument(help="The mapping.yaml to review (from `dos2hl map propose`).")],
    source: Annotated[Optional[str], typer.Option(
        "--source", help="The export folder, for the columns' masked value shapes (default: the one the map "
                         "was proposed from).")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    plan: Annotated[bool, typer.Option("--plan/--no-plan", help="Offer the request plan before/after the "
                                       "edits on the page (stages the export on each request).")] = True,
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
        if not where or "://" in where or not Path(where).is_dir():
            typer.echo("error: the review page reads a local export folder: give --source EXPORT "
                       "(a folder on this machine)", err=True)
            raise typer.Exit(2)
        shapes, cells = read_export(where, files=m.files.keys() | {e.file for e in m.fields})
        picks = pick_values(m, cells)
        del cells  # the sample stays in this function; only shapes and pick-list codes reach the page
        server = ReviewServer(mapping, shapes, picks, schema_impact, port=port, idle_s=idle,
                              planner=request_plan(where) if plan else None)
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


def plan_totals(out: dict[str, Any]) -> dict[str, Any]:
    """``plan_quota``'s answer summed over locations: records by kind, requests by path (counts only)."""
    kinds: dict[str, int] = {}
    requests = {"api_path": 0, "with_bulk_path": 0}
    for loc in out["locations"].values():
        for row in loc["rows"]:
            kinds[row["object"]] = kinds.get(row["object"], 0) + row["records"]
        for path in requests:
            requests[path] += loc[path]["requests"]
    return {"locations": len(out["locations"]), "objects": dict(sorted(kinds.items())), "requests": requests}


def request_plan(source: str) -> Callable[[Mapping], dict[str, Any]]:
    """A map -> its request plan's totals: the quota planner (``dos2hl plan``) on ``source`` with the map
    written to a temporary folder (what the run would send, by the run's own planning code)."""
    from ..mapping.model import save_mapping
    from ..quota import plan_quota

    def plan(m: Mapping) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="dos2hl-review-") as tmp:
            path = save_mapping(m.model_copy(update={"confirmed": None}), Path(tmp) / "mapping.yaml")
            return plan_totals(plan_quota(source, path))

    return plan
