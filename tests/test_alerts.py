"""The alert automations' definitions (dos2hl.alerts) without a server: what each watches, what it sends.
The server-side behaviour (apply twice, notifications arrive) is tests/integration/test_deployment.py, on
the Prefect server its deployment test uses (make test runs it)."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import uuid4

import pytest
from typer.testing import CliRunner

from dos2hl.alerts import PREFIX, STATE_EVENTS, alert_automations
from dos2hl.cli.main import app
from dos2hl.errors import ConfigError

BLOCK = uuid4()


def _by_name() -> dict[str, object]:
    return {a.name.removeprefix(PREFIX): a for a in alert_automations(BLOCK, no_progress=timedelta(hours=3))}


def test_three_automations_each_notifying_through_the_block() -> None:
    autos = _by_name()
    assert set(autos) == {"run paused", "run failed", "run without progress"}
    for a in autos.values():
        (action,) = a.actions  # type: ignore[attr-defined]
        assert action.type == "send-notification" and action.block_document_id == BLOCK
        assert a.enabled  # type: ignore[attr-defined]


def test_paused_covers_the_approval_gate_and_the_systemic_pause_of_our_flows_only() -> None:
    t = _by_name()["run paused"].trigger  # type: ignore[attr-defined]
    # pause_flow_run: a state named Paused; final_state: Completed named Paused; both prefect.flow-run.Paused
    assert t.expect == {"prefect.flow-run.Paused", "prefect.flow-run.Suspended"}
    assert t.posture == "Reactive" and t.threshold == 1
    assert t.match_related.model_dump()["prefect.resource.name"] == ["migrate", "rollback", "delta",
                                                                     "prepare-source"]


def test_the_state_the_migrate_flow_ends_a_paused_run_in_is_named_paused() -> None:
    from flows.migrate import final_state

    state = final_state({"status": "paused", "paused": {"loc-1": "token revoked"}, "run_id": "r1"})
    assert state.name == "Paused" and state.is_completed()  # type: ignore[union-attr]


def test_failed_covers_failed_crashed_and_timed_out() -> None:
    t = _by_name()["run failed"].trigger  # type: ignore[attr-defined]
    assert t.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}


def test_no_progress_is_proactive_per_flow_run_and_ignores_prefect_heartbeats() -> None:
    t = _by_name()["run without progress"].trigger  # type: ignore[attr-defined]
    assert t.posture == "Proactive" and t.threshold == 1 and t.within == timedelta(hours=3)
    # Running and progress in after and expect: each starts a new window (a rolling heartbeat)
    assert t.after == {"prefect.flow-run.Running", "dos2hl.progress"}
    assert t.for_each == {"prefect.resource.id"}
    assert t.after <= t.expect and set(STATE_EVENTS) <= t.expect
    assert not any("heartbeat" in e or e.endswith("*") for e in t.expect)


def test_the_progress_event_the_alert_expects_is_the_one_the_flows_emit() -> None:
    from dos2hl.alerts import PROGRESS_EVENT
    from tasks.heartbeat import PROGRESS_EVENT as EMITTED

    assert PROGRESS_EVENT == EMITTED == "dos2hl.progress"


def test_messages_name_ids_only_never_the_run_name_or_a_state_message() -> None:
    for a in _by_name().values():
        (action,) = a.actions  # type: ignore[attr-defined]
        text = action.subject + action.body
        assert "flow_run.id" in text and "flow.name" in text
        assert "flow_run.name" not in text and "message" not in text and "parameters" not in text


def test_a_window_under_prefects_floor_and_no_flow_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 10 s"):
        alert_automations(BLOCK, no_progress=timedelta(seconds=5))
    with pytest.raises(ConfigError, match="no flow"):
        alert_automations(BLOCK, flows=())


def test_the_cli_refuses_without_a_prefect_server(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["alerts", "apply", "--webhook-url", "http://127.0.0.1:9/x"])
        listed = CliRunner().invoke(app, ["alerts", "list"])
    assert result.exit_code == 2 and "PREFECT_API_URL" in result.output
    assert listed.exit_code == 2 and "PREFECT_API_URL" in listed.output


def test_the_cli_applies_with_the_url_as_a_secret_and_prints_ids_only(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dos2hl.alerts as alerts
    from dos2hl.alerts import AlertApplied

    seen: dict[str, object] = {}

    def fake_apply(**kw: object) -> list[AlertApplied]:
        seen.update(kw)
        return [AlertApplied("dos2hl: run failed", BLOCK, "updated", 1)]

    monkeypatch.setattr(alerts, "apply_alerts", fake_apply)
    monkeypatch.setenv("DOS2HL_ALERT_WEBHOOK_URL", "https://hooks.example.com/secret-part")
    result = CliRunner().invoke(app, ["alerts", "apply", "--no-progress-hours", "2", "--flow", "migrate"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"updated: dos2hl: run failed [{BLOCK}] (1 duplicates removed)"
    assert seen["webhook_url"].get_secret_value() == "https://hooks.example.com/secret-part"  # type: ignore[attr-defined]
    assert "secret-part" not in repr(seen["webhook_url"])
    assert seen["no_progress"] == timedelta(hours=2) and seen["flows"] == ["migrate"]
    assert seen["block"] == "dos2hl-alerts"


def test_the_cli_lists_dos2hl_automations(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dos2hl.alerts as alerts

    found = [{"name": "dos2hl: run paused", "id": str(BLOCK), "enabled": False, "trigger": "Reactive: x\ny"}]
    monkeypatch.setattr(alerts, "list_alerts", lambda: found)
    result = CliRunner().invoke(app, ["alerts", "list"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"dos2hl: run paused [{BLOCK}] DISABLED", "  Reactive: x", "  y",
                                          "1 dos2hl automations"]
    as_json = CliRunner().invoke(app, ["alerts", "list", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.output) == found
