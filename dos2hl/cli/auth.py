"""``dos2hl auth check``: does each location's credential (PIT or OAuth app) open its sub-account?"""

from __future__ import annotations

import json

import typer

from ..errors import Dos2hlError
from .common import JsonOpt, LocationsOpt, TargetOpt, _fail

auth_app = typer.Typer(help="Credentials of the locations (private integration tokens, OAuth apps).",
                       no_args_is_help=True, add_completion=False)


@auth_app.command()
def check(locations: LocationsOpt, target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Read each location once with its credential: a PIT from its variable or file, an OAuth app's
    access token (refreshed if needed; the rotated refresh token is stored sealed, DOS2HL_TOKEN_STORE).
    Exit 0 when every location opens its own sub-account, 2 otherwise. Prints ids and statuses only."""
    from ..locations import check_credentials, load_locations

    try:
        rows = check_credentials(load_locations(locations, target=target))
    except Dos2hlError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps({"locations": rows}))
    else:
        for r in rows:
            state = "ok" if r["ok"] else (f"FAILED ({r.get('error')} {r.get('status') or ''} "
                                          f"{r.get('cause') or ''})".replace("  ", " ").replace(" )", ")"))
            typer.echo(f"{r['source']} {r['location_id']} auth={r['auth']}: {state}")
            if r.get("message"):
                typer.echo(f"  {r['message']}")
    if not all(r["ok"] for r in rows):
        raise typer.Exit(2)
