"""Helpers of the alerts test (tests/integration/test_deployment.py, on the module's ``prefect server``): a
webhook receiver on 127.0.0.1, ``dos2hl alerts apply``, a flow run's ``dos2hl.progress`` heartbeat."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typer.testing import CliRunner

NAME_LIKE = "Jane Doe"  # stands for PHI in a flow run's name (our flows name runs after the export path)


class Receiver:
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


def apply(receiver_url: str) -> list[dict[str, Any]]:
    from dos2hl.cli.main import app

    result = CliRunner().invoke(app, ["alerts", "apply", "--webhook-url", receiver_url,
                                      "--no-progress-hours", str(12 / 3600), "--json"])
    assert result.exit_code == 0, result.output
    assert receiver_url not in result.output  # the URL is the block's secret
    return json.loads(result.output)  # type: ignore[no-any-return]


def progress_every(seconds: float, flow_run_id: Any, flow_id: Any, stop: threading.Event) -> None:
    """``dos2hl.progress`` for a flow run, as tasks/heartbeat.py emits it inside a run (where Prefect adds the
    related flow itself), until ``stop``."""
    from prefect.events import emit_event

    while not stop.is_set():
        flow = {"prefect.resource.id": f"prefect.flow.{flow_id}", "prefect.resource.role": "flow",
                "prefect.resource.name": "migrate"}
        emit_event("dos2hl.progress", resource={"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"},
                   related=[flow], payload={"step": "write_step"})
        stop.wait(seconds)


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def remove_automations() -> None:
    """Delete dos2hl's automations (the alerts test's, so the module's other runs alert nobody)."""
    from prefect.client.orchestration import get_client

    from dos2hl.alerts import PREFIX

    with get_client(sync_client=True) as api:
        for found in api.read_automations():
            if found.name.startswith(PREFIX):
                api.delete_automation(found.id)
