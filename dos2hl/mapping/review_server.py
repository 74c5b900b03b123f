"""``dos2hl map review``'s local server: the review page on 127.0.0.1 only, one session, one token.

Every request carries the one-time token (``?token=`` on the page's URL, the ``X-Review-Token`` header on
the page's API calls; compared in constant time; 403 without it), and names this server in its ``Host``
header (a DNS-rebinding page cannot). The page's edits travel as JSON; ``/api/preview`` answers what
they do to the HighLevel schema (through ``impact``, given by the caller: provisioning lives in a higher
layer), ``/api/plan`` the request plan before and after them (through ``planner``: the quota planner,
staging the export), ``/api/confirm`` writes the edited map confirmed by the name given, exactly as
``dos2hl map confirm`` does (``Mapping.confirm`` + ``save_mapping``), and the server stops. It also
stops after ``idle_s`` without a request. The page and every answer hold masked shapes, ids and
counts, never a value of the export (pick-list codes aside: ``review.pick_values``).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2

from .model import Mapping, load_mapping, save_mapping
from .review import PHI_POLICIES, TYPES, ReviewError, apply_edits, family_options, review_rows
from .shapes import ColumnShape

__all__ = ["ReviewServer", "render_page"]

Impact = Callable[[Mapping, Mapping], dict[str, Any]]
Planner = Callable[[Mapping], dict[str, Any]]  # a map -> its request plan's totals (quota.plan_quota)
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("dos2hl.mapping", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
MAX_BODY = 2_000_000  # a page's edits; a bigger body is refused


def render_page(state: dict[str, Any]) -> str:
    """The page: one file, inline CSS and JS, the state as JSON (``tojson`` escapes it for a script)."""
    return _ENV.get_template("review.html.j2").render(state=state, title=state["title"])


class ReviewServer:
    """One review session of ``path``; ``serve()`` blocks until confirmed, idle or ``stop()``."""

    def __init__(self, path: str | Path, shapes: dict[str, ColumnShape], picks: dict[str, list[str]],
                 impact: Impact | None = None, *, planner: Planner | None = None, port: int = 0,
                 idle_s: float = 1800.0) -> None:
        self.path = Path(path)
        self.mapping = load_mapping(self.path)
        self.loaded_hash = self.mapping.content_hash()
        self.shapes, self.picks, self.impact, self.planner = shapes, picks, impact, planner
        self._planned: dict[str, Any] | None = None  # the loaded map's plan, computed once
        self.token = secrets.token_urlsafe(24)
        self.idle_s = idle_s
        self.last = time.monotonic()
        self.confirmed: Mapping | None = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def state(self) -> dict[str, Any]:
        rows = review_rows(self.mapping, self.shapes, self.picks)
        families = {r["family"] for r in rows if r["family"]}
        return {"title": f"Review {self.path.name}", "path": self.path.name, "rows": rows,
                "families": {f: [asdict(o) for o in family_options(f)] for f in sorted(families)},
                "types": list(TYPES), "policies": list(PHI_POLICIES),
                "confirmed_by": self.mapping.confirmed.by if self.mapping.confirmed else None,
                "location": self.mapping.export.location,
                "impact": self._impact(self.mapping), "can_plan": self.planner is not None}

    def _impact(self, edited: Mapping) -> dict[str, Any] | None:
        return self.impact(self.mapping, edited) if self.impact is not None else None

    def preview(self, body: dict[str, Any]) -> dict[str, Any]:
        edited = apply_edits(self.mapping, body.get("edits") or [])
        changed = sum(a != b for a, b in zip(self.mapping.fields, edited.fields, strict=True))
        return {"ok": True, "changed": changed, "impact": self._impact(edited),
                "sha256": edited.content_hash()}

    def plan(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request plan before and after the edits (stages the export: seconds to minutes)."""
        if self.planner is None:
            raise ReviewError("this session plans no requests")
        edited = apply_edits(self.mapping, body.get("edits") or [])
        if self._planned is None:
            self._planned = self.planner(self.mapping)
        after = self._planned if edited.content_hash() == self.loaded_hash else self.planner(edited)
        return {"ok": True, "before": self._planned, "after": after}

    def confirm(self, body: dict[str, Any]) -> dict[str, Any]:
        by = str(body.get("by") or "").strip()
        if not by:
            raise ReviewError("a name is required to confirm (recorded with the map's hash)")
        edited = apply_edits(self.mapping, body.get("edits") or [])
        if load_mapping(self.path).content_hash() != self.loaded_hash:
            raise ReviewError(f"{self.path.name} changed on disk since the page opened: reload the page")
        done = edited.confirm(by)
        save_mapping(done, self.path)
        self.confirmed = done
        assert done.confirmed is not None
        return {"ok": True, "by": done.confirmed.by, "sha256": done.confirmed.sha256,
                "at": done.confirmed.at.isoformat(timespec="seconds"), "path": self.path.name}

    def serve(self) -> Mapping | None:
        """Serve until confirmed, idle for ``idle_s``, or stopped; the confirmed map (None otherwise)."""
        watcher = threading.Thread(target=self._watch, name="review-idle", daemon=True)
        watcher.start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            self.httpd.server_close()
        return self.confirmed

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            if self.confirmed is not None or time.monotonic() - self.last > self.idle_s:
                self.stop()
                return

    def stop(self) -> None:
        self._stop.set()
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()  # never from the serving thread

    def allowed(self, host: str | None, token: str | None) -> bool:
        hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        good = token is not None and hmac.compare_digest(token.encode(), self.token.encode())
        return host in hosts and good


def _handler(server: ReviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dos2hl-review"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return  # a request line holds the token: nothing is logged

        def _token(self) -> str | None:
            q = parse_qs(urlsplit(self.path).query).get("token")
            return self.headers.get("X-Review-Token") or (q[0] if q else None)

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                             "script-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
                             "form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

        def _gate(self) -> bool:
            server.last = time.monotonic()
            if not server.allowed(self.headers.get("Host"), self._token()):
                self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": "forbidden"})
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self._gate():
                return
            route = urlsplit(self.path).path
            if route == "/":
                self._send(HTTPStatus.OK, render_page(server.state()).encode(), "text/html; charset=utf-8")
            elif route == "/api/state":
                self._json(HTTPStatus.OK, server.state())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not found"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            if not self._gate():
                return
            route = urlsplit(self.path).path
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY or self.headers.get_content_type() != "application/json":
                self._json(HTTPStatus.BAD_REQUEST, {"ok": False, "error": "a JSON body is expected"})
                return
            try:
                body = json.loads(self.rfile.read(n) or b"{}")
                if not isinstance(body, dict):
                    raise ReviewError("a JSON object is expected")
                if route == "/api/preview":
                    self._json(HTTPStatus.OK, server.preview(body))
                elif route == "/api/plan":
                    self._json(HTTPStatus.OK, server.plan(body))
                elif route == "/api/confirm":
                    self._json(HTTPStatus.OK, server.confirm(body))
                else:
                    self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not found"})
            except ReviewError as exc:
                self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"ok": False, "error": str(exc)})
            except ValueError:
                self._json(HTTPStatus.BAD_REQUEST, {"ok": False, "error": "not valid JSON"})

    return Handler
