"""``dos2hl sandbox serve|dump``: the local HighLevel on the command line. Heavy imports stay inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import require_extra

sandbox_app = typer.Typer(help="A local HighLevel API v2 sandbox (contract, limits, faults).",
                          no_args_is_help=True, add_completion=False)


def parse_burst(text: str) -> tuple[int, float]:
    """``100/10s`` -> (100, 10.0); ``5/500ms`` -> (5, 0.5)."""
    count, _, window = text.partition("/")
    from ..sandbox.faults import _duration

    try:
        return int(count), _duration(window or "10s")
    except ValueError:
        raise typer.BadParameter(f"--burst {text!r}: expected N/WINDOW, e.g. 100/10s") from None


@sandbox_app.command()
def serve(
    state: Annotated[Path,
                     typer.Option("--state", help="State folder (SQLite, journal); reused on restart.")],
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    locations: Annotated[int, typer.Option(help="Sub-accounts to have (existing ones are kept).")] = 1,
    tokens_out: Annotated[Optional[Path],
                          typer.Option("--tokens-out",
                                       help="Write {\"locations\": {id: token}} here.")] = None,
    burst: Annotated[str,
                     typer.Option(help="Burst limit, requests/window (e.g. 100/10s, 100/1s).")] = "100/10s",
    daily: Annotated[int, typer.Option(help="Requests per day per location.")] = 200_000,
    faults: Annotated[Optional[str],
                      typer.Option(help="Fault spec, e.g. 'latency=50ms..200ms,5xx=0.02,seed=7'.")] = None,
    allow_duplicates: Annotated[Optional[bool], typer.Option("--allow-duplicates/--no-allow-duplicates",
                                                             help="Set every location's Allow Duplicate "
                                                                  "Contact.")] = None,
    index_lag: Annotated[float,
                         typer.Option("--index-lag", help="Seconds before writes reach search.")] = 0.0,
    oauth_access_ttl: Annotated[float, typer.Option(
        "--oauth-access-ttl", min=1.0,
        help="Lifetime in seconds of access tokens from POST /oauth/token (HighLevel: 86400).")] = 86_400.0,
    oauth_rotate: Annotated[bool, typer.Option(
        "--oauth-rotate/--no-oauth-rotate",
        help="A refresh token works once and each refresh hands out a new one (HighLevel's behaviour).")
    ] = True,
) -> None:
    """Serve the sandbox until interrupted. OAuth apps are installed with POST /_sandbox/oauth."""
    require_extra("sandbox")
    from ..sandbox.faults import parse_faults
    from ..sandbox.oauth import OAuthSettings
    from ..sandbox.server import serve as run

    try:
        parse_faults(faults)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"sandbox on http://{host}:{port} (state {state})", err=True)
    run(state, host=host, port=port, locations=locations, tokens_out=tokens_out, burst=parse_burst(burst),
        daily=daily, faults=faults, allow_duplicates=allow_duplicates, index_lag_s=index_lag,
        oauth=OAuthSettings(access_ttl_s=oauth_access_ttl, rotate=oauth_rotate))


@sandbox_app.command()
def dump(state: Annotated[Path, typer.Option("--state", help="State folder of a sandbox.")]) -> None:
    """Print the whole state as one JSON object."""
    require_extra("sandbox")
    from ..sandbox.snapshot import dump as run

    if not (state / "sandbox.sqlite3").exists():
        typer.echo(f"error: {state} holds no sandbox state", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(run(state), indent=2, sort_keys=True))
