"""dos2hl's alert automations on a real ``prefect server`` (SQLite, loopback), with its trigger and action
services: ``dos2hl alerts apply`` twice (the second updates, nothing is duplicated), then flow runs of our
flows fail, pause (as the approval gate and as a systemic pause end them) and sit in Running without
progress (another, whose steps keep finishing, alerts only once they stop); a webhook receiver on
127.0.0.1 gets one notification each, naming the flow run by id only. A failing flow that is not ours
notifies nobody. Marked slow: ``pytest -m slow tests/integration/test_alerts_server.py``
"""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration import _servers

NAME_LIKE = "Jane Doe"  # stands for PHI in a flow run's name (our flows name runs after the export path)


class _Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                data = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with outer.cond:
                    outer.bodies.append(data)
                    outer.cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, run_ids: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        """The bodies naming each of ``run_ids`` (the first for each), waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = {r: b for r in run_ids for b in self.bodies if r in b.get("body", "")}
                left = deadline - time.monotonic()
                if set(found) == run_ids or left <= 0:
                    return found
                self.cond.wait(min(left, 1.0))


@pytest.fixture()
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


@pytest.fixture()
def prefect_api(tmp_path: Path) -> Iterator[str]:
    """A ``prefect server`` on a free loopback port, SQLite in a temp PREFECT_HOME, stopped by PID."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    home = Path(tempfile.mkdtemp(prefix="dos2hl-prefect-alerts-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO",
                # only what alerts need: events in, triggers, actions (the rest costs CPU on 2 cores)
                "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false"})
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        with _servers.prefect_server(f"sqlite+aiosqlite:///{home / 'prefect.db'}", env, logs) as api:
            with temporary_settings(updates={PREFECT_API_URL: api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
                yield api
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _apply(receiver_url: str) -> list[dict[str, Any]]:
    from dos2hl.cli.main import app

    result = CliRunner().invoke(app, ["alerts", "apply", "--webhook-url", receiver_url,
                                      "--no-progress-hours", str(12 / 3600), "--json"])
    assert result.exit_code == 0, result.output
    assert receiver_url not in result.output  # the URL is the block's secret
    return json.loads(result.output)  # type: ignore[no-any-return]


def _progress_every(seconds: float, flow_run_id: Any, flow_id: Any, stop: threading.Event) -> None:
    """``dos2hl.progress`` for a flow run, as tasks/heartbeat.py emits it inside a run (where Prefect adds the
    related flow itself), until ``stop``."""
    from prefect.events import emit_event

    while not stop.is_set():
        flow = {"prefect.resource.id": f"prefect.flow.{flow_id}", "prefect.resource.role": "flow",
                "prefect.resource.name": "migrate"}
        emit_event("dos2hl.progress", resource={"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"},
                   related=[flow], payload={"step": "write_step"})
        stop.wait(seconds)


@pytest.mark.integration
@pytest.mark.slow  # 50-70 s on the loaded 2-core machine (the server starts in 28-38 s)
def test_alerts_apply_idempotently_and_notify_the_webhook(prefect_api, receiver) -> None:  # type: ignore[no-untyped-def]
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore
    from prefect.states import Paused, Running

    from dos2hl.cli.main import app
    from flows.migrate import final_state

    started = time.monotonic()
    no_block = CliRunner().invoke(app, ["alerts", "apply"])  # no URL and no block yet: say how, exit 2
    assert no_block.exit_code == 2 and "--webhook-url" in no_block.output, no_block.output
    first = _apply(receiver.url)
    with get_client(sync_client=True) as api:  # a hand-made copy of one: the next apply keeps one of them
        (failed_alert,) = api.read_automations_by_name("dos2hl: run failed")
        api.create_automation(AutomationCore(**failed_alert.model_dump(exclude={"id"})))
    second = _apply(receiver.url)
    assert [a["action"] for a in first] == ["created"] * 3
    assert [a["action"] for a in second] == ["updated"] * 3
    assert [a["removed_duplicates"] for a in second] == [0, 1, 0]
    assert [a["id"] for a in first if "failed" not in a["name"]] == [
        a["id"] for a in second if "failed" not in a["name"]]
    listed = CliRunner().invoke(app, ["alerts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(a["name"], a["enabled"]) for a in json.loads(listed.output)] == [
        ("dos2hl: run failed", True), ("dos2hl: run paused", True), ("dos2hl: run without progress", True)]
    applied = time.monotonic() - started

    @flow(name="migrate", flow_run_name=f"migrate /exports/{NAME_LIKE}", persist_result=False)
    def failing() -> None:
        raise RuntimeError("boom")

    @flow(name="migrate", flow_run_name=f"migrate /exports/{NAME_LIKE}", persist_result=False)
    def systemic_pause() -> Any:
        return final_state({"status": "paused", "paused": {"loc-1": "token revoked"}, "run_id": "r1"})

    @flow(name="not-ours")
    def other() -> None:
        raise RuntimeError("boom")

    failed = failing(return_state=True)
    paused = systemic_pause(return_state=True)
    other(return_state=True)
    assert failed.is_failed() and paused.name == "Paused" and paused.is_completed()
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(failing)
        gate = client.create_flow_run(failing, name=f"migrate /exports/{NAME_LIKE}")  # the approval gate:
        client.set_flow_run_state(gate.id, Paused(), force=True)  # pause_flow_run's state, set directly
        stuck = client.create_flow_run(failing, name=f"migrate /exports/{NAME_LIKE}")
        alive = client.create_flow_run(failing, name=f"migrate /exports/{NAME_LIKE}")
        client.set_flow_run_state(stuck.id, Running(), force=True)  # and then nothing for 12 s
        client.set_flow_run_state(alive.id, Running(), force=True)  # and then progress every 3 s
    stop = threading.Event()
    # the thread runs in this context: Prefect's settings (PREFECT_API_URL here) live in a context variable
    beats = threading.Thread(target=contextvars.copy_context().run,
                             args=(_progress_every, 3.0, alive.id, flow_id, stop), daemon=True)
    beats.start()
    ids = {"failed": str(failed.state_details.flow_run_id), "systemic": str(paused.state_details.flow_run_id),
           "gate": str(gate.id), "stuck": str(stuck.id)}
    try:
        got = receiver.wait_for(set(ids.values()), timeout=150)  # generous: a loaded 2-core machine
        time.sleep(6)  # a periodic evaluation or more past the stuck run's alert: the alive run has none
        early = [b for b in receiver.bodies if str(alive.id) in b["body"]]
    finally:
        stop.set()
        beats.join(timeout=10)
    # once its steps stop finishing, the alive run alerts too: each progress event opened a new window
    late = receiver.wait_for({str(alive.id)}, timeout=90)
    waited = time.monotonic() - started - applied
    print(f"\nalerts: applied in {applied:.1f} s, notified after {waited:.1f} s more")
    assert set(got) == set(ids.values()), (ids, receiver.bodies)
    assert "run failed" in got[ids["failed"]]["body"] and "failed" in got[ids["failed"]]["subject"]
    assert "run paused" in got[ids["systemic"]]["body"] and "run paused" in got[ids["gate"]]["body"]
    assert "without progress" in got[ids["stuck"]]["body"]
    assert not early, early  # it made progress
    assert "event: dos2hl.progress" in late[str(alive.id)]["body"], late  # its last progress: the window
    for body in receiver.bodies:
        assert body["source"] == "dos2hl" and "flow: migrate" in body["body"]  # not-ours never notified
        assert NAME_LIKE not in json.dumps(body)
    assert len(receiver.bodies) == 5, receiver.bodies  # one each: the failed run made progress, it ended
