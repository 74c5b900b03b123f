"""``dos2hl alerts apply|list``: the Prefect automations of dos2hl.alerts on the server at PREFECT_API_URL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Optional

import typer
from pydantic import SecretStr

from ..errors import Dos2hlError
from .common import JsonOpt, _fail

__all__ = ["alerts_app"]

alerts_app = typer.Typer(help="Alerts as code: Prefect automations that notify a webhook when a run pauses, "
                              "fails or stops making progress.", no_args_is_help=True, add_completion=False)


@alerts_app.command()
def apply(
    webhook_url: Annotated[Optional[str], typer.Option(
        "--webhook-url", envvar="DOS2HL_ALERT_WEBHOOK_URL", show_envvar=True,
        help="Where notifications go (POST, JSON subject/body): (re)writes the webhook block with it. "
             "Without it, the block must exist.")] = None,
    block: Annotated[str, typer.Option(
        "--block", envvar="DOS2HL_ALERT_BLOCK", show_envvar=True,
        help="Name of the Prefect notification block the automations send through.")] = "dos2hl-alerts",
    no_progress_hours: Annotated[float, typer.Option(
        "--no-progress-hours", envvar="DOS2HL_ALERT_NO_PROGRESS_HOURS", show_envvar=True,
        help="Alert when a running flow run had no state change (nor dos2hl.progress event) for this "
             "long; above the longest time between two heartbeats (a slow shard, a step other than a "
             "write).")] = 6.0,
    flow: Annotated[Optional[list[str]], typer.Option(
        "--flow", help="A flow name to watch (repeatable; default: migrate, rollback, delta, "
                       "prepare-source).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update dos2hl's automations by name (idempotent: applying twice changes nothing)."""
    from ..alerts import DEFAULT_FLOWS, apply_alerts

    try:
        done = apply_alerts(block=block, webhook_url=SecretStr(webhook_url) if webhook_url else None,
                            no_progress=timedelta(hours=no_progress_hours), flows=flow or DEFAULT_FLOWS)
    except Dos2hlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps([{"name": d.name, "id": str(d.id), "action": d.action,
                                "removed_duplicates": d.removed_duplicates} for d in done]))
        return
    for d in done:
        extra = f" ({d.removed_duplicates} duplicates removed)" if d.removed_duplicates else ""
        typer.echo(f"{d.action}: {d.name} [{d.id}]{extra}")


@alerts_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Show dos2hl's automations on the server (name, id, enabled, trigger)."""
    from ..alerts import list_alerts

    try:
        found = list_alerts()
    except Dos2hlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(found))
        return
    for a in found:
        typer.echo(f"{a['name']} [{a['id']}] {'enabled' if a['enabled'] else 'DISABLED'}")
        typer.echo("  " + a["trigger"].replace("\n", "\n  "))
    typer.echo(f"{len(found)} dos2hl automations")
