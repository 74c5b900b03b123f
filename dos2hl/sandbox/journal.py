"""The request journal: ``<state>/journal.jsonl``, one line per API request.

A line holds when, what operation (method and path *template*), which location, the status, the
latency and the sha256 of the request body; for a request that reached the rate limiter, ``counted``
(when the limiter counted or refused it) and ``queued_ms`` (how long it waited for a handling slot,
fault ``concurrency``). Never the token, never a body value, never a concrete
path (ids in paths can be looked up, but a template cannot leak a name or an email).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["Journal", "JOURNAL_NAME"]

JOURNAL_NAME = "journal.jsonl"


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / JOURNAL_NAME
        self._lock = threading.Lock()

    def write(self, *, time: float, method: str, template: str, location: str | None, status: int,
              latency_ms: float, body: bytes | None, operation: str | None = None,
              fault: str | None = None, counted: float | None = None,
              queued_ms: float | None = None) -> None:
        line: dict[str, Any] = {
            "time": round(time, 6), "method": method, "path": template, "operation": operation,
            "location": location, "status": status, "latency_ms": round(latency_ms, 3),
            "body_sha256": hashlib.sha256(body).hexdigest() if body else None,
        }
        if fault:
            line["fault"] = fault
        if counted is not None:
            line["counted"] = round(counted, 6)
            line["queued_ms"] = round(queued_ms or 0.0, 3)
        text = json.dumps(line, separators=(",", ":")) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(text)
