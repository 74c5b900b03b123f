"""A fake OpenAI-compatible chat endpoint on 127.0.0.1: records every request, answers from a script.

``FakeModel.script`` is called with the request's JSON and the column sources the prompt asks about
(``- FILE.COLUMN | ...`` lines) and returns ``(status, body)``; ``delay`` seconds are slept first (a slow
server, for timeouts). Helpers build chat-completion bodies.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeModel", "Recorded", "completion", "fake_model", "sources_of"]

Script = Callable[[dict[str, Any], list[str]], tuple[Any, ...]]  # (status, body[, headers])
_SOURCE = re.compile(r"^- (\S+) \|", re.M)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


def sources_of(request: dict[str, Any]) -> list[str]:
    """The FILE.COLUMN sources a prompt asks about."""
    return _SOURCE.findall(request["messages"][-1]["content"])


def completion(answer: dict[str, Any] | str) -> bytes:
    """A chat-completion body whose message content is ``answer`` (JSON-encoded unless a string)."""
    content = answer if isinstance(answer, str) else json.dumps(answer)
    return json.dumps({"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    ).encode()


@dataclass
class FakeModel:
    url: str = ""
    script: Script = field(default=lambda req, srcs: (500, b"{}"))
    delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)

    def answer_with(self, targets: dict[str, Any], files: dict[str, Any] | None = None) -> None:
        """Answer every asked column from ``targets`` (source -> {table, column} | None; absent: omitted)."""
        def script(req: dict[str, Any], srcs: list[str]) -> tuple[int, bytes]:
            cols = {s: targets[s] for s in srcs if s in targets}
            return 200, completion({"files": files or {}, "columns": cols})
        self.script = script


@contextmanager
def fake_model() -> Iterator[FakeModel]:
    fake = FakeModel()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            fake.requests.append(Recorded(self.path, dict(self.headers.items()), body))
            if fake.delay:
                time.sleep(fake.delay)
            req = json.loads(body)
            status, out, *extra = fake.script(req, sources_of(req))
            try:
                self.send_response(status)
                for k, v in (extra[0] if extra else {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
