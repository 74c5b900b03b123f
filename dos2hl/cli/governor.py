"""``dos2hl governor start|status|stop``: the shared rate governor on the command line."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Annotated

import typer

governor_app = typer.Typer(help="The central rate governor (HighLevel's limits per location).",
                           no_args_is_help=True, add_completion=False)

AddressOpt = Annotated[str | None, typer.Option(
    "--address",
    help="Ray address (HOST:PORT, or 'local'); default DOS2HL_GOVERNOR_ADDRESS, else in-process.")]


def _settings(address: str | None):  # type: ignore[no-untyped-def]
    from ..settings import Dos2hlSettings

    s = Dos2hlSettings()
    if address is not None:
        s = s.model_copy(update={"governor": s.governor.model_copy(update={"address": address})})
    return s


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


@governor_app.command()
def start(address: AddressOpt = None) -> None:
    """Create the named, detached governor actor on the Ray cluster (a no-op when it exists)."""
    from ..governor import open_governor

    s = _settings(address)
    if not s.governor.address:
        typer.echo("error: --address (or DOS2HL_GOVERNOR_ADDRESS) must name a Ray cluster: an in-process "
                   "governor lives only as long as its process", err=True)
        raise typer.Exit(2)
    handle = open_governor(s)
    typer.echo(json.dumps({"actor": s.governor.name, "namespace": "dos2hl", "limits": handle.limits()}))


@governor_app.command()
def status(
    locations: Annotated[list[str], typer.Argument(help="HighLevel location ids.")],
    address: AddressOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """State per location: running / paused / waiting for the daily reset, the ETA, today's usage."""
    from ..governor import open_governor

    gov = open_governor(_settings(address))
    out = {}
    for loc in locations:
        st = asdict(gov.status(loc))
        st["eta"] = _iso(st["eta"])
        out[loc] = st
    if as_json:
        typer.echo(json.dumps(out))
        return
    for loc, st in out.items():
        eta = f" until {st['eta']}" if st["eta"] else ""
        typer.echo(f"{loc}: {st['state']}{eta}; today {st['day_used']}/{st['day_limit']}; "
                   f"cap {st['cap']} per window; margin {st['margin_s'] * 1000:.0f} ms")


@governor_app.command()
def stop(address: AddressOpt = None) -> None:
    """End the detached actor (its usage stays in the state store for the next one)."""
    from ..governor import open_governor

    s = _settings(address)
    if not s.governor.address:
        typer.echo("error: no Ray address: nothing to stop", err=True)
        raise typer.Exit(2)
    from ..governor.actor import kill

    handle = open_governor(s)
    handle.save()
    kill(handle)
    typer.echo(f"stopped {s.governor.name}")
