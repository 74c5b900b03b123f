"""tasks/heartbeat.py: each finished pipeline step of a flow run emits ``dos2hl.progress`` for that run
(the heartbeat of the "run without progress" alert); outside a flow run, nothing."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

import tasks.heartbeat as heartbeat
from tasks.migrate import TASKS, as_task


def _record(monkeypatch) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(heartbeat, "emit_event", lambda event, **kw: sent.append({"event": event, **kw}))
    return sent


def test_outside_a_flow_run_nothing_is_emitted(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sent = _record(monkeypatch)
    heartbeat.progressed("write_step")
    assert sent == []


def test_a_finished_step_emits_progress_for_its_flow_run(prefect_harness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sent = _record(monkeypatch)

    def write_step(n: int) -> int:
        return n + 1

    def failing_step(n: int) -> int:
        raise RuntimeError("no progress")

    monkeypatch.setitem(TASKS, write_step, task(write_step))
    monkeypatch.setitem(TASKS, failing_step, task(failing_step))

    @flow(name="heartbeat-test")
    def run() -> int:
        out: int = as_task(write_step, 1)
        try:
            as_task(failing_step, out)
        except RuntimeError:
            pass
        return out

    state = run(return_state=True)
    assert state.result() == 2
    run_id = state.state_details.flow_run_id
    resource = {"prefect.resource.id": f"prefect.flow-run.{run_id}"}
    # the failed step is no progress
    assert sent == [{"event": "dos2hl.progress", "resource": resource, "payload": {"step": "write_step"}}]
