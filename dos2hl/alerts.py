"""Alerts as code (issue 17): the Prefect automations that tell an operator a migration needs them.

Three automations, each sending a notification through one webhook block:

- ``dos2hl: run paused``: a flow run entered a state named ``Paused`` or ``Suspended``. That is an
  approval gate (``pause_flow_run``: state type PAUSED) and a systemic pause alike (our flows end such a
  run as ``Completed(name="Paused")``: Prefect names a state's event after the state's *name*, so both
  arrive as ``prefect.flow-run.Paused``).
- ``dos2hl: run failed``: a flow run entered ``Failed``, ``Crashed`` or ``TimedOut``.
- ``dos2hl: run without progress``: a proactive trigger per flow run. Each ``Running`` state and each
  ``dos2hl.progress`` event (tasks/heartbeat.py: one per finished pipeline step, and during a write
  phase at most one a minute while shards end, flows/progress.py; the flow run as its resource) opens a
  window of N hours; a window that sees no state change and no progress event alerts. Prefect's own
  liveness heartbeats (``prefect.flow-run.heartbeat``) are left out on purpose: a live process is not
  progress. Choose N above the longest time between two heartbeats (a slow shard, a step other than a
  write phase).

Messages carry ids only: the flow's name, the flow run's id, the state's name and type, the event's name
and time; never the flow run's name (it holds the export's path) nor a state message. The webhook URL is
a secret of the block (``CustomWebhookNotificationBlock.secrets``), never printed.

Prefect is imported inside the functions: the library stays importable without it (tests/test_layering.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import SecretStr

from .errors import ConfigError

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

__all__ = ["DEFAULT_BLOCK", "DEFAULT_FLOWS", "PREFIX", "AlertApplied", "alert_automations", "apply_alerts",
           "list_alerts", "webhook_block"]

#: Every automation dos2hl owns starts with this: ``apply`` updates them by name, ``list`` shows them.
PREFIX = "dos2hl: "
DEFAULT_BLOCK = "dos2hl-alerts"
#: The flows (by their Prefect name) the automations watch: those of flows/.
DEFAULT_FLOWS = ("migrate", "rollback", "delta", "prepare-source")
#: A flow run's state changes (``prefect.flow-run.<state name>``), the heartbeat events excluded.
STATE_EVENTS = tuple(f"prefect.flow-run.{s}" for s in (
    "Scheduled", "Late", "Pending", "Running", "Retrying", "AwaitingRetry", "Paused", "Suspended",
    "Cancelling", "Cancelled", "Completed", "Failed", "Crashed", "TimedOut"))
PROGRESS_EVENT = "dos2hl.progress"
MIN_NO_PROGRESS = timedelta(seconds=10)  # Prefect's floor for a proactive trigger's window

_BODY = ("{what}\n"
         "flow: {{{{ flow.name }}}}\n"
         "flow run id: {{{{ flow_run.id }}}}\n"
         "state: {{{{ flow_run.state.name }}}} ({{{{ flow_run.state.type.value }}}})\n"
         "event: {{{{ event.event }}}} at {{{{ event.occurred }}}}\n"
         "automation: {{{{ automation.name }}}}")
_SUBJECT = "dos2hl: {{{{ flow.name }}}} run {{{{ flow_run.id }}}} {what}"


@dataclass(frozen=True)
class AlertApplied:
    """What ``apply_alerts`` did to one automation: ``created`` or ``updated`` (and duplicates removed)."""

    name: str
    id: UUID
    action: str
    removed_duplicates: int = 0


def _require_api() -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ConfigError("PREFECT_API_URL is not set: point it at the Prefect server the runs report to "
                          "(automations on a temporary server alert nobody)")


def webhook_block(name: str = DEFAULT_BLOCK, url: SecretStr | None = None) -> UUID:
    """The id of the notification block ``name``; with ``url``, (re)write it first as a custom webhook
    that POSTs ``{"subject", "body", "source": "dos2hl"}`` as JSON to that URL (kept as a block secret)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    _require_api()
    if url is not None:
        if not url.get_secret_value().startswith(("http://", "https://")):
            raise ConfigError("--webhook-url: not an http(s) URL")
        block = CustomWebhookNotificationBlock(
            name=name, url="{{webhook_url}}", secrets={"webhook_url": url.get_secret_value()},
            json_data={"subject": "{{subject}}", "body": "{{body}}", "source": "dos2hl"})
        return UUID(str(block.save(name, overwrite=True)))
    try:
        loaded: CustomWebhookNotificationBlock = CustomWebhookNotificationBlock.load(name)  # type: ignore[assignment]
    except ValueError as exc:
        raise ConfigError(f"no webhook block named {name!r}: give --webhook-url (or "
                          "DOS2HL_ALERT_WEBHOOK_URL) once to create it") from exc
    assert loaded._block_document_id is not None
    return UUID(str(loaded._block_document_id))


def alert_automations(block_id: UUID, *, no_progress: timedelta = timedelta(hours=6),
                      flows: Sequence[str] = DEFAULT_FLOWS) -> list[AutomationCore]:
    """The three automations (not yet applied), each notifying through the block ``block_id``."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    if no_progress < MIN_NO_PROGRESS:
        raise ConfigError(f"the no-progress window must be at least {MIN_NO_PROGRESS.seconds} s")
    if not flows:
        raise ConfigError("no flow to watch")
    of_our_flows: dict[str, Any] = {"prefect.resource.role": "flow", "prefect.resource.name": list(flows)}
    run = {"prefect.resource.id": "prefect.flow-run.*"}

    def notify(what: str) -> list[Any]:
        return [SendNotification(block_document_id=block_id, subject=_SUBJECT.format(what=what),
                                 body=_BODY.format(what=f"dos2hl alert: a flow run {what}"))]

    def reactive(events: set[str]) -> EventTrigger:
        return EventTrigger(match=run, match_related=of_our_flows, expect=events, posture=Posture.Reactive,
                            threshold=1, within=timedelta(0))

    hours = no_progress.total_seconds() / 3600
    return [
        AutomationCore(
            enabled=True, name=f"{PREFIX}run paused",
            description="A flow run waits for an approval (Paused) or paused its locations after a systemic "
                        "failure (Completed named Paused): an operator decides how it goes on.",
            trigger=reactive({"prefect.flow-run.Paused", "prefect.flow-run.Suspended"}),
            actions=notify("paused")),
        AutomationCore(
            enabled=True, name=f"{PREFIX}run failed",
            description="A flow run failed, crashed or timed out.",
            trigger=reactive({"prefect.flow-run.Failed", "prefect.flow-run.Crashed",
                              "prefect.flow-run.TimedOut"}),
            actions=notify("failed")),
        AutomationCore(
            enabled=True, name=f"{PREFIX}run without progress",
            description=f"A running flow run had no state change and no {PROGRESS_EVENT} event for "
                        f"{hours:g} h.",
            # an event both in after and expect starts a new window (Prefect's rolling heartbeat); one only
            # in expect (a final state, a pause) closes the watch until the run is Running again
            trigger=EventTrigger(match=run, match_related=of_our_flows,
                                 after={"prefect.flow-run.Running", PROGRESS_EVENT},
                                 expect={*STATE_EVENTS, PROGRESS_EVENT}, for_each={"prefect.resource.id"},
                                 posture=Posture.Proactive, threshold=1, within=no_progress),
            actions=notify(f"made no progress for {hours:g} h")),
    ]


def apply_alerts(*, block: str = DEFAULT_BLOCK, webhook_url: SecretStr | None = None,
                 no_progress: timedelta = timedelta(hours=6),
                 flows: Sequence[str] = DEFAULT_FLOWS) -> list[AlertApplied]:
    """Create or update (by name, never duplicating) the automations on the server at PREFECT_API_URL."""
    from prefect.client.orchestration import get_client

    block_id = webhook_block(block, webhook_url)
    done = []
    with get_client(sync_client=True) as api:
        for automation in alert_automations(block_id, no_progress=no_progress, flows=flows):
            existing = sorted(api.read_automations_by_name(automation.name), key=lambda a: str(a.id))
            if not existing:
                done.append(AlertApplied(automation.name, api.create_automation(automation), "created"))
                continue
            keep, *extra = existing
            api.update_automation(keep.id, automation)
            for dup in extra:  # an earlier hand-made copy, or two applies racing
                api.delete_automation(dup.id)
            done.append(AlertApplied(automation.name, keep.id, "updated", len(extra)))
    return done


def list_alerts() -> list[dict[str, Any]]:
    """dos2hl's automations on the server: name, id, enabled, trigger (Prefect's own summary)."""
    from prefect.client.orchestration import get_client

    _require_api()
    with get_client(sync_client=True) as api:
        found = [a for a in api.read_automations() if a.name.startswith(PREFIX)]
    return [{"name": a.name, "id": str(a.id), "enabled": a.enabled,
             "trigger": a.trigger.describe_for_cli().strip()} for a in sorted(found, key=lambda a: a.name)]
